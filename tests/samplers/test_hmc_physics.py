"""HMC reproduces exact results, identities and strong-coupling expansions.

Each comparison allows 3 standard deviations of a Gamma-method (autocorrelation-aware)
error, chains of a batch treated as replicas.
"""

import numpy as np
import pytest

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import (
    free_scalar_propagator,
    free_scalar_zero_momentum_correlator,
    strong_coupling_plaquette,
    u1_2d_plaquette,
    u1_2d_topological_susceptibility,
)
from lqcdml.lattice import SU, U1, make_generators, randn
from lqcdml.observables import (
    plaquette,
    topological_charge_u1_2d,
    two_point_function,
    zero_momentum_correlator,
)
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.theories import Phi4Action, WilsonGaugeAction


def _run(action, start, n_steps, n_traj, n_therm, measure, seed, tau=1.0, scheme="omelyan"):
    hmc = HMC(Integrator.single(action, n_steps, scheme), tau)
    state, rec = run_chain(hmc, hmc.init(start, seed), n_traj, measure, n_skip=n_therm)
    assert rec["accepted"].double().mean() > 0.6
    return rec


@pytest.mark.parametrize("length,beta", [(4, 2.0), (6, 1.0)])
def test_u1_2d_plaquette_and_charge_match_exact_bessel_formulas(length, beta):
    group = U1()
    links = group.haar(make_generators(0, 16), (2, length, length))
    rec = _run(
        WilsonGaugeAction(beta, group),
        links,
        n_steps=8,
        n_traj=600,
        n_therm=50,
        measure=lambda u: {"plaq": plaquette(u, group), "q": topological_charge_u1_2d(u)},
        seed=11,
    )
    n_p = length * length
    q = rec["q"].numpy()
    assert np.allclose(q, np.round(q), atol=1e-9)  # geometric charge is an integer
    plaq = estimate(rec["plaq"].numpy())
    assert abs(plaq.pull(u1_2d_plaquette(beta, n_p))) < 3, plaq
    chi = estimate(q**2 / n_p)
    assert abs(chi.pull(u1_2d_topological_susceptibility(beta, n_p))) < 3, chi


def test_free_scalar_two_point_function_matches_exact_propagator():
    shape, m2 = (8, 8), 1.0
    action = Phi4Action(m2=m2, lam=0.0)
    rec = _run(
        action,
        randn(make_generators(1, 16), shape),
        n_steps=4,
        n_traj=600,
        n_therm=100,
        measure=lambda phi: {"g": two_point_function(phi), "c": zero_momentum_correlator(phi)},
        seed=3,
        tau=0.5,  # free-field HMC: omega tau must stay below pi for every mode (ergodicity)
    )
    exact = free_scalar_propagator(shape, m2)
    assert abs(exact[0, 0] - 0.1270869988) < 1e-10 and abs(exact[4, 4] - 0.0005507229) < 1e-10
    g = rec["g"].numpy()
    for x in [(0, 0), (1, 0), (0, 1), (2, 1), (4, 4)]:
        est = estimate(g[:, :, x[0], x[1]])
        assert abs(est.pull(exact[x])) < 3, (x, est, exact[x])
    c_exact = free_scalar_zero_momentum_correlator(shape, m2)
    c = rec["c"].numpy()
    for t in range(shape[0] // 2 + 1):
        est = estimate(c[:, :, t])
        assert abs(est.pull(c_exact[t])) < 3, (t, est, c_exact[t])


@pytest.mark.parametrize(
    "shape,m2,lam,convention",
    [((8, 8), -4.0, 8.0, "flow"), ((4, 4, 4), 0.5, 1.0, "flow"), ((6, 6), 0.3, 2.0, "standard")],
)
def test_phi4_schwinger_dyson_identity(shape, m2, lam, convention):
    """< (1/V) sum_x phi_x dS/dphi_x > = 1 at lambda > 0."""
    action = Phi4Action(m2=m2, lam=lam, convention=convention)
    rec = _run(
        action,
        0.5 * randn(make_generators(2, 16), shape),
        n_steps=6,
        n_traj=500,
        n_therm=150,
        measure=lambda phi: {
            "sd": (phi * action.force(phi)).reshape(phi.shape[0], -1).mean(dim=1),
            "phi2": phi.square().reshape(phi.shape[0], -1).mean(dim=1),
        },
        seed=5,
        tau=0.5,
    )
    est = estimate(rec["sd"].numpy())
    assert abs(est.pull(1.0)) < 3, est
    assert est.error < 0.01  # the test has power: a 3 % violation would fail
    if (shape, m2, lam) == ((8, 8), -4.0, 8.0):  # the flow-tutorial point of docs/reference.md#flow-tutorial
        phi2 = estimate(rec["phi2"].numpy())
        assert abs(phi2.value - 0.1434576) < 3 * np.hypot(phi2.error, 8.5e-6), phi2


@pytest.mark.slow
@pytest.mark.parametrize("n,beta,n_traj", [(2, 1.0, 500), (3, 3.0, 250)])
def test_4d_plaquette_agrees_with_strong_coupling_expansion(n, beta, n_traj):
    group = SU(n)
    rec = _run(
        WilsonGaugeAction(beta, group),
        group.haar(make_generators(4, 8), (4, 4, 4, 4, 4)),
        n_steps=4,
        n_traj=n_traj,
        n_therm=20,
        measure=lambda u: plaquette(u, group),
        seed=17,
    )
    est = estimate(rec["value"].numpy())
    expected = strong_coupling_plaquette(beta, n)
    assert abs(est.pull(expected)) < 3, (est, expected)
    # the closed-surface correction is resolved: leading order alone is further away
    assert est.error < 1e-3
