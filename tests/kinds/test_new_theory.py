"""A new theory needs one module and one registration, nothing else.

The Euclidean lattice harmonic oscillator (one real coordinate per time slice, periodic,
``S = sum_t [(x_{t+1} - x_t)^2 / 2 + m2 x_t^2 / 2]``) is defined here alone: its config
dataclass, action with analytic force, start and per-configuration observable. An
experiment file composes it, HMC samples it through the driver into a store, and the chain
reproduces the exact ``<x^2> = (1/N) sum_k 1 / (4 sin^2(pi k / N) + m2)``.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.config import ConfigError, TheoryConfig, compose_experiment
from lqcdml.config.errors import fail
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.specs import chain_spec
from lqcdml.identity import ensemble_hash
from lqcdml.kinds import THEORIES, TheoryKind
from lqcdml.lattice import Real
from lqcdml.store import EnsembleStore

NAME = "oscillator_test"


@dataclass
class OscillatorTheory(TheoryConfig):
    """``m2``: the squared frequency in lattice units."""

    name: str = NAME
    m2: float = 0.5


class OscillatorAction:
    """``S = sum_t [(x_{t+1} - x_t)^2 + m2 x_t^2] / 2`` on fields ``[B, N]``."""

    group = Real()

    def __init__(self, m2: float) -> None:
        self.m2 = m2

    def action(self, x: torch.Tensor) -> torch.Tensor:
        kinetic = (torch.roll(x, -1, dims=1) - x).square().sum(dim=1)
        return 0.5 * (kinetic + self.m2 * x.square().sum(dim=1))

    def force(self, x: torch.Tensor) -> torch.Tensor:
        return (2 + self.m2) * x - torch.roll(x, -1, dims=1) - torch.roll(x, 1, dims=1)


def _validate(ens, p: str) -> None:
    if len(ens.theory.lattice) != 1:
        fail(p + "theory.lattice", list(ens.theory.lattice), "one extent (the time slices)")
    if not ens.theory.m2 > 0:
        fail(p + "theory.m2", ens.theory.m2, "m2 > 0")


if NAME not in THEORIES:
    THEORIES.register(
        TheoryKind(
            name=NAME,
            config=OscillatorTheory,
            validate=_validate,
            links=False,
            group=lambda th: Real(),
            action=lambda th: OscillatorAction(th.m2),
            cheap_observable=lambda th: ("x2", lambda x: x.square().mean(dim=1)),
            hot_start=lambda th, gens, shape, dtype, device: torch.zeros(
                (len(gens), *shape), dtype=dtype, device=device
            ),
            doc="Euclidean lattice harmonic oscillator (test)",
        )
    )

N, M2 = 16, 0.5
EXPERIMENT = f"""# @package _global_
defaults:
  - /sampler@ensembles.osc.sampler: hmc
  - /chain@ensembles.osc.chain: default
  - /measure@ensembles.osc.measure: default
experiment: oscillator
ensembles:
  osc:
    theory: {{name: {NAME}, lattice: [{N}], m2: {M2}}}
    sampler: {{n_steps: 10, trajectory_length: 1.0}}
    chain: {{n_configs: 600, n_therm: 50, n_chains: 16, seed: 5}}
"""


def exact_x2(n: int, m2: float) -> float:
    return float(np.mean([1.0 / (4 * math.sin(math.pi * k / n) ** 2 + m2) for k in range(n)]))


@pytest.fixture
def conf(tmp_path):
    from lqcdml.config import config_dir

    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "experiment" / "oscillator.yaml").write_text(EXPERIMENT)
    return conf


def test_the_theory_composes_validates_and_hashes_like_a_built_in_one(conf):
    cfg = compose_experiment("oscillator", conf_dir=conf)
    theory = cfg.ensembles["osc"].theory
    assert isinstance(theory, OscillatorTheory) and theory.m2 == M2
    other = compose_experiment("oscillator", ["ensembles.osc.theory.m2=0.6"], conf)
    assert ensemble_hash(other.ensembles["osc"], "float64") != ensemble_hash(cfg.ensembles["osc"], "float64")
    with pytest.raises(ConfigError, match=r"^ensembles.osc.theory.m2 = -1.0; allowed: m2 > 0$"):
        compose_experiment("oscillator", ["ensembles.osc.theory.m2=-1"], conf)
    with pytest.raises(
        ConfigError,
        match=rf"^ensembles.osc.theory.beta: unknown key 'beta' of theory.name = "
        rf"'{NAME}'; allowed: name, lattice, m2$",
    ):
        compose_experiment("oscillator", ["+ensembles.osc.theory.beta=1"], conf)


def test_the_force_is_the_gradient_of_the_action():
    x = torch.randn(3, N, dtype=torch.float64)
    x.requires_grad_(True)
    action = OscillatorAction(M2)
    (grad,) = torch.autograd.grad(action.action(x).sum(), x)
    assert torch.allclose(action.force(x.detach()), grad, atol=1e-13, rtol=0)


def test_hmc_samples_the_exact_second_moment(conf, tmp_path):
    cfg = compose_experiment("oscillator", conf_dir=conf)
    ens = cfg.ensembles["osc"]
    store = tmp_path / "osc.zarr"
    run_chain_into_store(chain_spec(cfg, "osc", 1, store_path=store), store, ens.chain.n_configs)
    x2 = EnsembleStore.open(store).read_records("x2")[ens.chain.n_therm :]  # [configs, chains]
    est = estimate(x2)
    exact = exact_x2(N, M2)
    assert abs(est.value - exact) < 4 * est.error, (est.value, est.error, exact)
    assert est.error < 0.02 * exact  # a test that can fail: the chain resolves <x^2> to 2 %
