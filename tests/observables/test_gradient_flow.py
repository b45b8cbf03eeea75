import numpy as np
import pytest
import torch

from lqcdml.lattice import SU, U1, abelian_flux_links, make_generators
from lqcdml.observables import (
    flow_action,
    flow_step_euler,
    flow_step_rk3,
    gradient_flow,
    scale_t0,
    topological_charge_u1_2d,
)
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.theories import WilsonGaugeAction


def _thermalised(group, shape, beta, n_traj=15, seed=0):
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), 6), 1.0)
    start = group.haar(make_generators(seed, 1), shape)
    state, _ = run_chain(hmc, hmc.init(start, seed), n_traj)
    return state.fields


@pytest.mark.parametrize(
    "group,shape,beta", [(SU(2), (4, 4, 4, 4, 4), 2.3), (SU(3), (4, 4, 4, 4, 4), 5.7), (U1(), (2, 8, 8), 2.0)], ids=str
)
def test_wilson_action_never_increases_along_the_flow(group, shape, beta):
    links = _thermalised(group, shape, beta)
    action = flow_action(group)
    values = [action.action(links).item()]
    for _ in range(40):
        links = flow_step_rk3(links, group, 0.02)
        values.append(action.action(links).item())
    diffs = np.diff(values)
    assert np.all(diffs <= 1e-9 * abs(values[0])), diffs.max()
    assert values[-1] < 0.5 * values[0]


def _flow_to(links, group, t, eps, step):
    n = round(t / eps)
    for _ in range(n):
        links = step(links, group, eps)
    return links


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_rk3_global_error_is_third_order_and_euler_first(group):
    links = _thermalised(group, (4, 4, 4, 4, 4), 2.3 if group.n == 2 else 5.7, n_traj=5)
    t = 0.4
    ref = _flow_to(links, group, t, 0.0025, flow_step_rk3)
    err = {}
    for name, step in (("rk3", flow_step_rk3), ("euler", flow_step_euler)):
        err[name] = [(_flow_to(links, group, t, eps, step) - ref).abs().max().item() for eps in (0.1, 0.05, 0.025)]
    order = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(err["rk3"]), 1)[0]
    assert abs(order - 3) < 0.3, err["rk3"]
    order_euler = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(err["euler"]), 1)[0]
    assert abs(order_euler - 1) < 0.2, err["euler"]


def test_constant_abelian_field_is_a_fixed_point_and_keeps_its_charge():
    group = SU(3)
    links = abelian_flux_links((6, 6, 6, 6), {(0, 1): [1, -1, 0], (2, 3): [1, 0, -1]}, group)
    result = gradient_flow(links, group, t_max=0.5, eps=0.05)
    assert np.allclose(result.energy, result.energy[0], rtol=1e-10)
    assert np.all(np.abs(result.charge - 1) < 0.05)
    assert (result.links - links).abs().max() < 1e-10


def test_flow_keeps_u1_2d_geometric_charge_and_smooths():
    group = U1()
    links = _thermalised(group, (2, 8, 8), 3.0, n_traj=10, seed=3)
    q0 = topological_charge_u1_2d(links)
    result = gradient_flow(links, group, t_max=1.0, eps=0.05)
    q1 = topological_charge_u1_2d(result.links)
    assert torch.allclose(q1, q0, atol=1e-10) and torch.allclose(q0, torch.round(q0), atol=1e-10)
    assert result.energy[-1, 0] < result.energy[0, 0]


def test_t0_interpolation_and_error():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    t2e = np.array([0.0, 0.1, 0.2, 0.4])
    assert abs(scale_t0(times, t2e) - 2.5) < 1e-14
    with pytest.raises(ValueError, match="never crosses 0.3"):
        scale_t0(times[:3], t2e[:3])


def test_gradient_flow_rejects_bad_step():
    with pytest.raises(ValueError, match="eps = 0"):
        gradient_flow(torch.zeros(1, 2, 2, 2, dtype=torch.float64), U1(), 1.0, eps=0)
