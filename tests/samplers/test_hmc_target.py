"""HMC with the molecular-dynamics action and the target action apart, and the sampler
contract: stateless terms, pseudofermion fields in the chain state, one info type."""

import dataclasses

import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import u1_2d_plaquette
from lqcdml.lattice import SU, U1, make_generators
from lqcdml.observables import plaquette
from lqcdml.samplers import HMC, ChainState, Integrator, Level, StepInfo, run_chain
from lqcdml.theories import StaggeredOperator, StaggeredPseudofermion, WilsonGaugeAction


def test_md_on_another_action_still_samples_the_target_exactly():
    """Molecular dynamics at beta 1.4, Metropolis with beta 2: the chain samples beta 2
    (the integrator is reversible and area-preserving; the test uses the true H)."""
    group, beta, length = U1(), 2.0, 4
    target = WilsonGaugeAction(beta, group)
    md = Integrator.single(WilsonGaugeAction(1.4, group), 8)
    hmc = HMC(md, 1.0, target=(target,))
    start = group.haar(make_generators(0, 16), (2, length, length))
    state, rec = run_chain(hmc, hmc.init(start, 1), 300, lambda u: plaquette(u, group), n_skip=50)
    acc = rec["accepted"].double().mean()
    assert 0.05 < acc < 0.95  # the mismatch costs acceptance, not exactness
    est = estimate(rec["value"].numpy())
    exact = u1_2d_plaquette(beta, length * length)
    assert abs(est.pull(exact)) < 3, (est, exact)
    # and it differs resolvably from what the MD action alone would sample
    assert abs(est.value - u1_2d_plaquette(1.4, length * length)) > 5 * est.error


def test_the_same_md_and_target_is_plain_hmc_bit_for_bit():
    group = SU(2)
    action = WilsonGaugeAction(2.3, group)
    start = group.haar(make_generators(3, 2), (4, 2, 2, 2, 2))
    a = HMC(Integrator.single(action, 5), 0.8)
    b = HMC(Integrator.single(action, 5), 0.8, target=(action,))
    sa, ia = a.step(a.init(start, 4))
    sb, ib = b.step(b.init(start, 4))
    assert torch.equal(sa.fields, sb.fields) and torch.equal(ia.delta_H, ib.delta_H)
    # omelyan: 2 n + 1 force evaluations; no fermions, no CG
    assert isinstance(ia, StepInfo) and ia.counters == {"force_evaluations_0": 11, "cg_md": 0, "cg_metropolis": 0}


def _staggered_hmc():
    group = SU(2)
    gauge = WilsonGaugeAction(2.0, group)
    pf = StaggeredPseudofermion(StaggeredOperator(0.5, group), 4)
    return HMC(Integrator(group, [Level((pf,), 3), Level((gauge,), 2)]), 1.0), pf


def test_pseudofermions_live_in_the_chain_state_and_terms_hold_no_state():
    hmc, pf = _staggered_hmc()
    assert dataclasses.is_dataclass(pf) and pf.__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        pf.phi = None  # no mutable field to put one in
    links = SU(2).near_identity(make_generators(1, 2), (4, 2, 2, 2, 4), 0.3)
    state, info = hmc.step(hmc.init(links, 2))
    assert len(state.pseudofermions) == 1
    phi = state.pseudofermions[0]
    assert phi.shape == (2, 2, 2, 2, 4, 2) and phi.abs().max() > 0
    # the state's field is the heat-bath draw of that trajectory: redo it by hand
    gens = hmc.init(links, 2).generators()
    assert torch.equal(pf.heat_bath(links, gens), phi)
    # serialised and restored, the state continues bit for bit
    again = ChainState.from_dict(state.to_dict())
    s1, i1 = hmc.step(state)
    s2, i2 = hmc.step(again)
    assert torch.equal(s1.fields, s2.fields) and torch.equal(i1.delta_H, i2.delta_H)
    assert torch.equal(again.pseudofermions[0], phi)


def test_md_and_target_must_share_their_pseudofermion_fields():
    hmc, pf = _staggered_hmc()
    gauge = WilsonGaugeAction(2.0, SU(2))
    with pytest.raises(ValueError, match="1 pseudofermion terms, the target 0"):
        HMC(hmc.integrator, 1.0, target=(gauge,))
    with pytest.raises(ValueError, match="unbound; call bind"):
        hmc.integrator.integrate(torch.zeros(1), torch.zeros(1), 1.0)
