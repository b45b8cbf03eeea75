"""Training the effective action of self-learning HMC: the loss falls, the gradient is the
loss's, training resumes bit for bit."""

import pytest
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.nn import cask_net, stout_net
from lqcdml.samplers import ChainState, SmearedPseudofermion, slhmc
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.staggered import StaggeredOperator, StaggeredPseudofermion, _dense_action
from lqcdml.train import OfflineSLHMCTrainer, OnlineSLHMCTrainer, action_mismatch, equilibrium_acceptance

from ..helpers import smooth_links

GROUP = SU(2)
SHAPE = (4, 4, 2, 2, 2)


def _pf(mass):
    return StaggeredPseudofermion(StaggeredOperator(mass, GROUP), 4, tol=1e-12)


EXACT, EFFECTIVE = [_pf(0.3)], [_pf(0.6)]


def _eval_loss(net, links, phis, centred=True):
    diff, _ = action_mismatch(net, EXACT, EFFECTIVE, links, phis, centred)
    return float(diff.square().mean())


def _eval_set(n=6, seed=40):
    links = smooth_links(GROUP, SHAPE, eps=0.6, seed=seed, n_chains=n)
    return links, [EXACT[0].heat_bath(links, make_generators(seed, n))]


@pytest.mark.parametrize("centred", [False, True])
def test_mismatch_gradient_is_the_gradient_of_the_loss(centred):
    """The VJP gradient (no solver differentiated) equals autograd through dense solves; for
    the centred loss that of the batch variance of the mismatch."""
    torch.manual_seed(0)
    net = stout_net(GROUP, 4, 2, ("plaquette", "rectangle", "polyakov"))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.03 * torch.randn_like(p))
    links, phis = _eval_set(n=3)
    _, backward = action_mismatch(net, EXACT, EFFECTIVE, links, phis, centred)
    backward()
    mine = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    s_f = EXACT[0].action(links, phis[0])
    diff = s_f - _dense_action(EFFECTIVE[0], net(links), phis[0])
    loss = ((diff - diff.mean()) if centred else diff).square().mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert torch.allclose(mine[name], p.grad, rtol=1e-8, atol=1e-10), name


def test_offline_training_lowers_the_loss_of_held_out_configurations():
    """The published loss (S_f - S_eff)^2 on configurations the training never saw."""
    configs = smooth_links(GROUP, SHAPE, eps=0.6, seed=1, n_chains=16)
    held_out = _eval_set()
    for net in (stout_net(GROUP, 4, 2, ("plaquette", "polyakov")), cask_net(GROUP, 4, 1, ("plaquette",), extent=1)):
        before = _eval_loss(net, *held_out, centred=False)
        trainer = OfflineSLHMCTrainer(net, configs, EXACT, EFFECTIVE, batch=4, lr=0.01, seed=3, centred=False)
        for _ in range(25):
            trainer.step()
        after = _eval_loss(net, *held_out, centred=False)
        assert after < 0.5 * before, (type(net.layers[0]).__name__, before, after)
        assert len(trainer.history["loss"]) == 25


def _online(net, seed=5, centred=True):
    gauge = WilsonGaugeAction(2.0, GROUP)

    def make(model):
        return slhmc(gauge, EXACT, [SmearedPseudofermion(EFFECTIVE[0], model)], n_steps=3, trajectory_length=0.3)

    fields = smooth_links(GROUP, SHAPE, eps=0.6, seed=seed, n_chains=4)
    start = ChainState.initial(fields, make_generators(seed, 4))
    return OnlineSLHMCTrainer(net, make, EXACT, EFFECTIVE, start, lr=0.01, centred=centred), make


def test_online_training_lowers_the_loss_and_keeps_the_chain():
    net = stout_net(GROUP, 4, 1, ("plaquette", "polyakov"))
    trainer, _ = _online(net, centred=False)
    held_out = _eval_set()
    before = _eval_loss(net, *held_out, centred=False)
    for _ in range(15):
        trainer.step()
    assert _eval_loss(net, *held_out, centred=False) < 0.5 * before
    assert trainer.state.trajectory == 15 and len(trainer.history["acceptance"]) == 15
    assert all(0 <= a <= 1 for a in trainer.history["acceptance"])


def test_training_resumes_bit_for_bit_from_its_state_dict():
    straight, _ = _online(stout_net(GROUP, 4, 1, ("plaquette", "polyakov")))
    for _ in range(4):
        straight.step()
    first, _ = _online(stout_net(GROUP, 4, 1, ("plaquette", "polyakov")))
    for _ in range(2):
        first.step()
    saved = first.state_dict()
    resumed, _ = _online(stout_net(GROUP, 4, 1, ("plaquette", "polyakov")), seed=99)  # other start: overwritten
    resumed.load_state_dict(saved)
    for _ in range(2):
        resumed.step()
    assert resumed.history == straight.history
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(resumed.state.fields, straight.state.fields)

    configs = smooth_links(GROUP, SHAPE, eps=0.6, seed=1, n_chains=8)
    runs = []
    for split in (None, 2):
        net = stout_net(GROUP, 4, 1, ("plaquette",))
        tr = OfflineSLHMCTrainer(net, configs, EXACT, EFFECTIVE, batch=2, lr=0.01, seed=3)
        for k in range(4):
            if k == split:
                state = tr.state_dict()
                tr = OfflineSLHMCTrainer(
                    stout_net(GROUP, 4, 1, ("plaquette",)), configs, EXACT, EFFECTIVE, batch=2, lr=0.01, seed=3
                )
                tr.load_state_dict(state)
            tr.step()
        runs.append((tr.history["loss"], tr.net.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1].values(), runs[1][1].values()))


def test_equilibrium_acceptance_probe_of_an_exact_md_is_one():
    """MD on the exact action with tiny steps: the probe's acceptance is 1 to the energy error."""
    gauge = WilsonGaugeAction(2.0, GROUP)
    sampler = slhmc(gauge, EXACT, [SmearedPseudofermion(EXACT[0], None)], n_steps=20, trajectory_length=0.1)
    configs = smooth_links(GROUP, SHAPE, eps=0.6, seed=7, n_chains=4)
    probe = equilibrium_acceptance(sampler, configs, seed=1)
    assert probe["n_configs"] == 4 and probe["acceptance"] > 0.999
    assert probe["cg_md"] > 0 and probe["cg_metropolis"] > 0


def test_online_training_on_the_ratio_regresses_the_ratio_with_its_own_field():
    """SLHMC on the lightest Hasenbusch ratio: the chain state holds the ratio's field and the
    heavy one; the loss is the ratio's mismatch at the ratio's field (the first of the state)."""
    from lqcdml.samplers import slhmc_hasenbusch
    from lqcdml.theories import hasenbusch_split, ratio_at_mass

    gauge = WilsonGaugeAction(2.0, GROUP)
    light = _pf(0.1)
    ratio = hasenbusch_split(light, [0.5])[0]
    exact, effective = [ratio], [ratio_at_mass(ratio, 0.3)]

    def make(model):
        return slhmc_hasenbusch(
            gauge,
            [light],
            [0.5],
            lambda r: SmearedPseudofermion(ratio_at_mass(r, 0.3), model),
            3,
            [1],
            1,
            "omelyan",
            0.3,
        )

    net = stout_net(GROUP, 4, 1, ("plaquette", "polyakov"))
    fields = smooth_links(GROUP, SHAPE, eps=0.6, seed=6, n_chains=4)
    trainer = OnlineSLHMCTrainer(net, make, exact, effective, ChainState.initial(fields, make_generators(6, 4)), 0.0)
    loss = trainer.step()  # lr 0: the loss is that of the current weights at the end configuration
    phis = trainer.state.pseudofermions
    assert len(phis) == 2  # the ratio's and the heavy determinant's
    links = trainer.state.fields
    diff = ratio.action(links, phis[0]) - effective[0].action(net(links).detach(), phis[0])
    assert abs(loss - float((diff - diff.mean()).square().mean())) < 1e-9 * max(1.0, loss)
    other = ratio.action(links, phis[1]) - effective[0].action(net(links).detach(), phis[1])
    assert abs(loss - float((other - other.mean()).square().mean())) > 1e-6  # the fields differ
