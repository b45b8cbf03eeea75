"""Hasenbusch HMC: its levels, reversibility, <exp(-dH)> = 1 and the distribution of plain HMC."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.lattice import SU, make_generators
from lqcdml.observables import plaquette
from lqcdml.samplers import HMC, Integrator, Level, hasenbusch_hmc, hasenbusch_levels, run_chain
from lqcdml.theories import (
    StaggeredOperator,
    StaggeredPseudofermion,
    StaggeredRatio,
    WilsonGaugeAction,
    WilsonOperator,
    WilsonPseudofermion,
    WilsonRatio,
)

GROUP = SU(2)
SHAPE = (4, 4, 2, 2, 2)
TINY = (4, 2, 2, 2, 2)


def _staggered(n_flavours: int, mass: float = 0.1) -> StaggeredPseudofermion:
    return StaggeredPseudofermion(StaggeredOperator(mass, GROUP), n_flavours, tol=1e-12)


def test_levels_put_each_factor_on_its_own_time_scale():
    gauge = WilsonGaugeAction(2.0, GROUP)
    light = [_staggered(4), _staggered(2)]  # Nf = 6: two fields, each split
    levels = hasenbusch_levels(gauge, light, [0.3, 0.7], 3, [2, 4], gauge_steps=5)
    assert [lv.n_steps for lv in levels] == [3, 2, 4, 5]
    assert [type(t).__name__ for t in levels[0].terms] == ["StaggeredRatio", "StaggeredRatio"]
    assert [(t.operator.mass, t.heavy_mass, t.n_flavours) for t in levels[1].terms] == [(0.3, 0.7, 4), (0.3, 0.7, 2)]
    assert [(t.operator.mass, t.n_flavours) for t in levels[2].terms] == [(0.7, 4), (0.7, 2)]
    assert levels[3].terms == (gauge,)
    with pytest.raises(ValueError, match=r"hasenbusch steps = \[2\]; allowed: one per Hasenbusch mass \(2"):
        hasenbusch_levels(gauge, light, [0.3, 0.7], 3, [2])


@pytest.mark.parametrize(("n_flavours", "force_tol"), [(4, None), (2, None), (4, 1e-5), (2, 1e-5)])
def test_md_is_reversible(n_flavours, force_tol):
    """Also with the forces solved to a loose residual: every solve starts from zero, so the
    force is a function of the links and the integrator is reversible in exact arithmetic. In
    floating point a truncated Krylov solve amplifies rounding more than a converged one
    (measured: 3e-10 at force_tol 1e-8 to 1e-4, 3e-14 converged), far below any dH that
    the Metropolis test resolves."""
    light = replace(_staggered(n_flavours), force_tol=force_tol)
    hmc = hasenbusch_hmc(WilsonGaugeAction(2.0, GROUP), [light], [0.3, 0.6], 2, [2, 2], 2)
    links = GROUP.near_identity(make_generators(1, 2), SHAPE, 0.4)
    terms = [t for t in hmc.integrator.terms if not isinstance(t, WilsonGaugeAction)]
    md = hmc.integrator.bind([t.heat_bath(links, make_generators(2 + i, 2)) for i, t in enumerate(terms)])
    p0 = GROUP.random_momentum(make_generators(3, 2), SHAPE)
    q1, p1 = md(links, p0, 1.0)
    q2, p2 = md(q1, -p1, 1.0)
    bound = 1e-10 if force_tol is None else 1e-8
    assert (q2 - links).abs().max() < bound and (p2 + p0).abs().max() < bound


def test_step_info_counts_solver_iterations_per_level():
    hmc = hasenbusch_hmc(WilsonGaugeAction(2.0, GROUP), [_staggered(4, 0.05)], [0.5], 2, [3], 2)
    links = GROUP.near_identity(make_generators(1, 1), (4, 4, 4, 4, 4), 0.4)
    _, info = hmc.step(hmc.init(links, 4))
    c = info.counters
    # Omelyan: a level of n steps costs 2 n + 1 evaluations per integration, and has 2 n position
    # updates, each a full integration of the level inside
    assert [c[f"force_evaluations_{k}"] for k in range(3)] == [5, 4 * 7, 4 * 6 * 5]
    assert c["cg_md"] == c["cg_md_0"] + c["cg_md_1"] + c["cg_md_2"] and c["cg_md_2"] == 0
    # a force at the light mass costs more CG iterations than one at the heavy mass
    assert c["cg_md_0"] / c["force_evaluations_0"] > 1.5 * c["cg_md_1"] / c["force_evaluations_1"]


@pytest.mark.slow
@pytest.mark.parametrize("fermion", ["staggered2", "wilson", "staggered2_loose_md"])
def test_exp_minus_delta_h_averages_to_one(fermion):
    """``<exp(-dH)> = 1``; also with the molecular dynamics' forces solved to 1e-5 only (the
    Metropolis test's actions at 1e-12): the chain stays exact."""
    gauge = WilsonGaugeAction(2.0, GROUP)
    if fermion == "wilson":
        light = [WilsonPseudofermion(WilsonOperator(0.2, GROUP), tol=1e-12)]
    else:
        light = [replace(_staggered(2), force_tol=1e-5 if fermion.endswith("loose_md") else None)]
    hmc = hasenbusch_hmc(gauge, light, [0.6], 1, [1], 1, trajectory_length=2.0)  # coarse: dH of order 1
    start = GROUP.near_identity(make_generators(1, 8), TINY, 0.5)
    _, rec = run_chain(hmc, hmc.init(start, 5), 40, n_skip=8)
    assert 0.2 < rec["accepted"].double().mean() < 0.9
    est = estimate(torch.exp(-rec["delta_H"]).numpy())
    assert abs(est.pull(1.0)) < 3, est


@pytest.mark.slow
def test_chain_samples_what_plain_hmc_samples():
    """Plaquette of Hasenbusch HMC and plain HMC at beta 1.6, Nf = 4, m = 0.05 on
    2^4: the same within 3.5 combined Gamma-method errors, and both away from the quenched value."""
    gauge = WilsonGaugeAction(1.6, GROUP)
    light = [_staggered(4, 0.05)]
    start = GROUP.near_identity(make_generators(1, 16), TINY, 0.5)
    measure = lambda u: {"plaq": plaquette(u, GROUP)}  # noqa: E731
    plain = HMC(Integrator(GROUP, (Level(tuple(light), 6), Level((gauge,), 2))), 1.0)
    split = hasenbusch_hmc(gauge, light, [0.4], 3, [1], 2)
    ests = []
    for hmc, seed in ((plain, 7), (split, 8)):
        _, rec = run_chain(hmc, hmc.init(start, seed), 60, measure, n_skip=15)
        assert rec["accepted"].double().mean() > 0.6
        ests.append(estimate(rec["plaq"].numpy()))
    a, b = ests
    assert abs(a.value - b.value) < 3.5 * math.hypot(a.error, b.error), (a, b)
    # quenched plaquette at beta 1.6 is lower; the fermions' pull is resolved
    _, rec = run_chain(
        HMC(Integrator.single(gauge, 6), 1.0), HMC(Integrator.single(gauge, 6)).init(start, 9), 60, measure, n_skip=15
    )
    quenched = estimate(rec["plaq"].numpy())
    assert np.sign(b.value - quenched.value) == np.sign(a.value - quenched.value)
    assert abs(b.value - quenched.value) > 4 * math.hypot(b.error, quenched.error), (b, quenched)


def test_ratio_terms_are_the_terms_of_the_levels():
    hmc = hasenbusch_hmc(
        WilsonGaugeAction(2.0, GROUP), [WilsonPseudofermion(WilsonOperator(0.1, GROUP))], [0.4, 0.9], 2, [2, 2]
    )
    kinds = [type(t) for t in hmc.integrator.terms]
    assert kinds == [WilsonRatio, WilsonRatio, WilsonPseudofermion, WilsonGaugeAction]
    assert hmc.integrator.n_pseudofermions == 3
    assert StaggeredRatio not in kinds
