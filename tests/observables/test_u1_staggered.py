"""Quenched valence staggered quarks on 2D U(1) links (the staggered Schwinger-model operator):
the free trace, gauge invariance, and the measurements through the config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqcdml.config import compose_experiment
from lqcdml.kinds.observables import measurement_plan
from lqcdml.lattice import U1, make_generators, shift
from lqcdml.observables.fermion import dense_operator
from lqcdml.theories.staggered import StaggeredOperator


def free_trace(shape, m):
    """(1/V) sum_p m / (m^2 + sum_mu sin^2 p_mu), time antiperiodic: Re tr D^-1 / V of U = 1."""
    ps = np.meshgrid(
        *[2 * np.pi * (np.arange(n) + (0.5 if mu == 0 else 0.0)) / n for mu, n in enumerate(shape)], indexing="ij"
    )
    return float(np.mean(m / (m * m + sum(np.sin(p) ** 2 for p in ps))))


def test_free_u1_staggered_trace_and_gauge_invariance():
    m, shape = 0.3, (4, 6)
    op = StaggeredOperator(m, U1())
    theta = torch.zeros(1, 2, *shape, dtype=torch.float64)
    d = dense_operator(op, U1().to_matrix(theta))
    assert float(torch.diagonal(torch.linalg.inv(d)).sum().real) / math.prod(shape) == pytest.approx(
        free_trace(shape, m), rel=1e-12
    )
    gen = torch.Generator().manual_seed(3)
    theta = (2 * torch.rand(1, 2, *shape, generator=gen, dtype=torch.float64) - 1) * math.pi
    alpha = torch.randn(1, *shape, generator=gen, dtype=torch.float64)
    moved = torch.stack([theta[:, mu] + alpha - shift(alpha, mu) for mu in range(2)], dim=1)
    t1 = torch.linalg.inv(dense_operator(op, U1().to_matrix(theta))).diagonal().sum()
    t2 = torch.linalg.inv(dense_operator(op, U1().to_matrix(moved))).diagonal().sum()
    assert abs(complex(t1 - t2)) < 1e-12
    h = d - m * torch.eye(d.shape[0], dtype=d.dtype)
    assert torch.allclose(h, -h.mH, atol=1e-14)  # the hopping term is anti-hermitian


def test_u1_fermion_measurements_from_the_config():
    cfg = compose_experiment(
        "ci_tiny",
        [
            "ensembles.u1.theory.fermion=staggered",
            "ensembles.u1.theory.n_flavours=0",
            "ensembles.u1.theory.fermion_mass=0.3",
            "ensembles.u1.measure.observables=[plaquette,chiral_condensate,trace_inverse]",
            "ensembles.u1.measure.n_noise=400",
        ],
    )
    ens = cfg.ensembles["u1"]
    shape = tuple(ens.theory.lattice)
    plan = measurement_plan(ens)
    out = {}
    for m in plan:
        out.update(m(torch.zeros(2, 2, *shape, dtype=torch.float64), make_generators(5, 2)))
    cond = out["chiral_condensate"][0]
    # Z2 noise: 400 vectors, the error of the trace estimate is below 1 %
    assert np.allclose(cond, free_trace(shape, 0.3), rtol=0.03)
    assert out["trace_inverse_re"][0].shape == (2, 4)


def test_u1_takes_only_quenched_staggered_quarks(capsys):
    from lqcdml.cli.main import main

    code = main(["compose", "+experiment=ci_tiny", "ensembles.u1.theory.fermion=staggered", "--out", "/dev/null"])
    assert code == 2 and "n_flavours = 0" in capsys.readouterr().err
