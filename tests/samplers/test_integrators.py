import numpy as np
import pytest
import torch

from lqcdml.lattice import SU, U1, Real, make_generators, randn
from lqcdml.samplers import HMC, SCHEMES, Integrator, Level, run_chain
from lqcdml.theories import Phi4Action, WilsonGaugeAction

from ..helpers import smooth_links


def _theory(name):
    """(action, a typical configuration with 2 chains) for each field type."""
    if name == "phi4":
        action = Phi4Action(m2=-1.0, lam=1.5)
        return action, 0.8 * randn(make_generators(0, 2), (6, 6))
    if name == "u1":
        action = WilsonGaugeAction(2.0, U1())
        return action, smooth_links(U1(), (2, 6, 6), eps=0.4)
    group = SU(2) if name == "su2" else SU(3)
    action = WilsonGaugeAction(2.2 if name == "su2" else 5.5, group)
    return action, smooth_links(group, (4, 2, 2, 2, 4), eps=0.3)


THEORIES = ["phi4", "u1", "su2", "su3"]


def _momenta(group, q, seed=11):
    shape = q.shape[1 : q.ndim - group.internal_ndim]
    return group.random_momentum(make_generators(seed, q.shape[0]), shape, dtype=q.dtype)


def _nested(action):
    # two levels: the same action split in two halves on two time scales
    half = type(action)(**{**action.__dict__, **_half(action)})
    return Integrator(action.group, [Level((half,), 3, "leapfrog"), Level((half,), 2, "omelyan")])


def _half(action):
    if isinstance(action, WilsonGaugeAction):
        return {"beta": action.beta / 2}
    return {}


REVERSIBILITY_CASES = [(n, s) for n in THEORIES for s in ("leapfrog", "omelyan")] + [
    (n, "nested")
    for n in ("u1", "su2", "su3")  # the nested split halves a gauge coupling
]


@pytest.mark.parametrize("name,scheme", REVERSIBILITY_CASES)
def test_forward_then_backward_returns_the_start(name, scheme):
    action, q0 = _theory(name)
    if scheme == "nested":
        integ = _nested(action)
    else:
        integ = Integrator.single(action, 7, scheme)
    p0 = _momenta(action.group, q0)
    q1, p1 = integ(q0, p0, 0.9)
    assert (q1 - q0).abs().max() > 1e-3  # it moved
    q2, p2 = integ(q1, -p1, 0.9)
    assert (q2 - q0).abs().max() < 1e-10
    assert (p2 + p0).abs().max() < 1e-10


def test_nested_integrator_counts_force_evaluations():
    action, q0 = _theory("su2")
    integ = _nested(action)
    result = integ.integrate(q0, _momenta(action.group, q0), 1.0)
    # outer leapfrog, 3 steps: 4 kicks; inner omelyan 2 steps per outer position
    # update (3 of them): 2*2 + 1 = 5 kicks each
    assert result.force_evaluations == (4, 15)


def _energy_violation(integ_factory, action, q0, p0, n_steps):
    out = []
    for n in n_steps:
        integ = integ_factory(n)
        h0 = action.group.kinetic(p0) + action.action(q0)
        q1, p1 = integ(q0, p0, 1.0)
        h1 = action.group.kinetic(p1) + action.action(q1)
        out.append(torch.sqrt(torch.mean((h1 - h0) ** 2)).item())
    return np.array(out)


#: step counts (trajectory length 1) in the asymptotic regime, and the slope tolerance, by order
SLOPE_STEPS = {2: ([8, 16, 32, 64], 0.2), 4: ([10, 14, 20, 28], 0.3)}


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("name", THEORIES)
def test_energy_violation_scales_as_eps_to_the_order(name, scheme):
    """Fitted exponent of sqrt<dH^2> vs eps is the scheme's order (2: within 0.2, 4: within
    0.3; fixed trajectory length), on a straight line (fit error of the slope < 0.1)."""
    action, q0 = _theory(name)
    p0 = _momenta(action.group, q0)
    order = SCHEMES[scheme].order
    n_steps, tolerance = SLOPE_STEPS[order]
    dh = _energy_violation(lambda n: Integrator.single(action, n, scheme), action, q0, p0, n_steps)
    (slope, _), cov = np.polyfit(np.log(1.0 / np.array(n_steps)), np.log(dh), 1, cov=True)
    assert abs(slope - order) < tolerance, (slope, dh)
    assert np.sqrt(cov[0, 0]) < 0.1, (slope, cov, dh)


def test_omelyan_beats_leapfrog_at_equal_force_evaluations():
    action, q0 = _theory("su2")
    p0 = _momenta(action.group, q0)
    leap = _energy_violation(lambda n: Integrator.single(action, n, "leapfrog"), action, q0, p0, [32])
    omel = _energy_violation(lambda n: Integrator.single(action, n, "omelyan"), action, q0, p0, [16])
    assert omel[0] < 0.5 * leap[0]


@pytest.mark.parametrize("name", ["phi4", "u1", "su2"])
def test_exp_minus_delta_h_averages_to_one(name):
    """<exp(-dH)> = 1 within 3 sigma on an equilibrium chain with sizeable dH."""
    from lqcdml.analysis import estimate

    action, q0 = _theory(name)
    batch = q0.repeat((4,) + (1,) * (q0.ndim - 1))
    hmc = HMC(Integrator.single(action, 4, "leapfrog"), 1.0)
    state = hmc.init(batch, seed=21)
    state, rec = run_chain(hmc, state, 300, n_skip=50)
    dh = rec["delta_H"].numpy()
    assert 0.2 < rec["accepted"].double().mean() < 0.97
    est = estimate(np.exp(-dh))
    assert abs(est.pull(1.0)) < 3, est


def test_bad_integrator_settings_are_refused():
    action, _ = _theory("phi4")
    with pytest.raises(ValueError, match="scheme = 'verlet'"):
        Level((action,), 4, "verlet")
    with pytest.raises(ValueError, match="n_steps = 0"):
        Level((action,), 0)
    with pytest.raises(ValueError, match="trajectory_length = -1"):
        HMC(Integrator.single(action, 4), -1.0)
    assert isinstance(action.group, Real)
