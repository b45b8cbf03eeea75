"""2D U(1) flow in plaquette coordinates: link solver, inverse, log-Jacobian, equivariance,
the sink, and what training reaches against the exact sink-limited bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from lqcdml.lattice import U1, gauge_transform
from lqcdml.nn import u1_plaquette_flow
from lqcdml.nn.flow import FlowModel, UniformAnglePrior
from lqcdml.nn.u1_equivariant import circle_map, zero_mixture_head
from lqcdml.nn.u1_plaquette import (
    PlaquetteCoupling,
    PlaquetteFlowModel,
    SinkPartnerCoupling,
    _partner_net,
    partner_chain_forward,
    partner_chain_reverse,
    partner_ess_bound,
    plaquette_change_links,
)
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.gauge import plaquette_field
from lqcdml.train import FlowTrainer, evaluate_flow

DT = torch.float64
SHAPES = [(4, 4), (3, 5), (6, 4)]


def wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def angle_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return wrap(a - b).abs().max().item()


def haar(shape, n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.rand((n, 2, *shape), generator=g, dtype=DT) - 1) * math.pi


def plaq(links):
    return plaquette_field(links, U1())[:, 0]


def randomize(model, seed=0, std=0.3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.to(DT)


def random_model(shape, n_layers=3, n_partners=3, seed=0, std=0.3, merged=True):
    model = u1_plaquette_flow(shape, n_layers, (8,), 3, 3, n_partners=n_partners, partner_hidden=(8,), merged=merged)
    return randomize(model, seed, std)


def twin(model: PlaquetteFlowModel, merged: bool) -> PlaquetteFlowModel:
    """The same layers (shared weights), evaluated merged or layer by layer."""
    return PlaquetteFlowModel(model.prior, list(model.layers), merged=merged)


@pytest.mark.parametrize("shape", SHAPES)
def test_link_solver_has_the_requested_plaquettes(shape):
    g = torch.Generator().manual_seed(0)
    dp = torch.randn((3, *shape), generator=g, dtype=DT)
    dp = dp - dp.mean(dim=(1, 2), keepdim=True)
    delta = plaquette_change_links(dp)
    assert delta.shape == (3, 2, *shape)
    assert (plaq(delta) - dp).abs().max() < 1e-13  # the curl, not only mod 2 pi
    # linear, and only the last column of direction-0 links is used
    assert (plaquette_change_links(2 * dp) - 2 * delta).abs().max() < 1e-13
    assert delta[:, 0, :-1].abs().max() == 0


@pytest.mark.parametrize("merged", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_flow_is_invertible(shape, merged):
    model = random_model(shape, merged=merged)
    z = model.prior.sample(4, torch.Generator().manual_seed(3), dtype=DT)
    x, ld = model(z)
    z_back, ld_back = model.reverse(x)
    assert angle_err(x, z) > 0.5 and ld.abs().max() > 1.0
    assert angle_err(z_back, z) < 1e-10
    assert (ld + ld_back).abs().max() < 1e-10
    assert x.min() >= -math.pi and x.max() < math.pi
    _, log_q = model.push(z)
    assert (model.log_prob(x) - log_q).abs().max() < 1e-10


def autograd_log_det(fn, x):
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x))[0].flatten(), x.flatten())
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign.abs() == 1
    return logabs.item()


@pytest.mark.parametrize("shape", [(4, 4), (3, 5)])
def test_log_det_matches_autograd(shape):
    model = random_model(shape, n_layers=2, n_partners=2, seed=1)
    for layer in [*model.layers, model]:
        xs = haar(shape, n=6, seed=5)
        i = layer(xs)[1].abs().argmax()
        x = xs[i : i + 1]
        y, ld = layer(x)
        assert abs(ld.item()) > 0.01  # non-trivial, far above the tolerance below
        assert abs(autograd_log_det(layer, x) - ld.item()) < 1e-10
        if layer is not model:
            assert abs(autograd_log_det(layer.reverse, y) + ld.item()) < 1e-10


@pytest.mark.parametrize("merged", [True, False])
def test_flow_is_gauge_equivariant(merged):
    shape = (4, 6)
    model = random_model(shape, seed=2, merged=merged)
    links = haar(shape, n=3, seed=7)
    alpha = haar(shape, n=3, seed=8)[:, 0]
    group = U1()
    y, ld = model(links)
    y_t, ld_t = model(gauge_transform(links, alpha, group))
    assert angle_err(y, links) > 0.5
    assert angle_err(y_t, gauge_transform(y, alpha, group)) < 1e-10
    assert (ld_t - ld).abs().max() < 1e-10


def test_coupling_maps_active_plaquettes_and_the_sink_takes_the_rest():
    shape = (4, 6)
    model = random_model(shape, n_layers=1, n_partners=0, seed=3)
    layer: PlaquetteCoupling = model.layers[0]
    x = haar(shape, n=2, seed=9)
    y, _ = layer(x)
    p_x, p_y = plaq(x), plaq(y)
    s, w, t = layer._params(p_x)
    assert angle_err(p_y[:, layer.frozen], p_x[:, layer.frozen]) < 1e-12
    assert angle_err(p_y[:, layer.active], circle_map(p_x, s, w, t)[0][:, layer.active]) < 1e-12
    assert angle_err(p_y[:, -1, -1], p_x[:, -1, -1]) > 0.1
    assert angle_err(p_y.sum(dim=(1, 2)), torch.zeros(2, dtype=DT)) < 1e-12  # sum P = 0 mod 2 pi
    assert not layer.active[-1, -1] and not layer.frozen[-1, -1]


def test_partner_layer_moves_its_plaquette_and_the_sink_only():
    shape = (4, 4)
    model = random_model(shape, n_layers=1, n_partners=3, seed=4)
    layer: SinkPartnerCoupling = model.layers[2]
    assert layer.index == 13
    x = haar(shape, n=2, seed=10)
    p_x, p_y = (plaq(v).flatten(1) for v in (x, layer(x)[0]))
    moved = torch.zeros(16, dtype=torch.bool)
    moved[[13, 15]] = True
    assert angle_err(p_y[:, ~moved], p_x[:, ~moved]) < 1e-12
    assert angle_err(p_y[:, 13], p_x[:, 13]) > 0.05
    # the conditioning sum of the plaquettes before the partner is unchanged
    assert angle_err(p_y[:, :13].sum(1), p_x[:, :13].sum(1)) < 1e-12


def mixed_model(shape=(4, 6), seed=6):
    """Couplings and partners interleaved; partner runs with gaps, a decreasing index and two n_mix."""

    def coupling(parity):
        net = torch.nn.Conv2d(2, 8, 3, padding=1, padding_mode="circular")
        return PlaquetteCoupling(shape, parity, net, 3)

    def partner(index, n_mix=3):
        return SinkPartnerCoupling(shape, index, _partner_net((8,), n_mix, "tanh"), n_mix)

    layers = [
        coupling(0),
        partner(3),
        partner(4),
        partner(9),
        partner(2),
        coupling(1),
        partner(20),
        partner(21, n_mix=2),
        partner(22, n_mix=2),
        coupling(0),
        partner(1),
    ]
    model = randomize(PlaquetteFlowModel(UniformAnglePrior((2, *shape)), layers), seed, 0.4)
    runs = [[p.index for p in run] if isinstance(run, list) else "c" for run in model._runs()]
    assert runs == ["c", [3, 4, 9], [2], "c", [20], [21, 22], "c", [1]]
    return model


@pytest.mark.parametrize(("shape", "build"), [*((shape, "standard") for shape in SHAPES), ((4, 6), "mixed")])
def test_merged_equals_layer_by_layer(shape, build):
    """Plaquettes computed once and links moved once: the same bijection, log-Jacobian and
    gradients as the layer-by-layer reference, on random links and non-trivial weights."""
    merged = (
        random_model(shape, n_layers=3, n_partners=shape[0] * shape[1] - 2, seed=11)
        if build == "standard"
        else mixed_model()
    )
    ref = twin(merged, merged=False)
    assert merged.merged and not ref.merged
    x = haar(shape, n=6, seed=12)
    y, ld = merged(x)
    y_ref, ld_ref = ref(x)
    assert angle_err(y, x) > 0.5 and ld.abs().max() > 1.0  # non-trivial
    assert angle_err(y, y_ref) < 1e-12 and (ld - ld_ref).abs().max() < 1e-12
    assert y.min() >= -math.pi and y.max() < math.pi
    z, lz = merged.reverse(x)
    z_ref, lz_ref = ref.reverse(x)
    assert angle_err(z, z_ref) < 1e-12 and (lz - lz_ref).abs().max() < 1e-12
    back, l_back = merged.reverse(y)
    assert angle_err(back, x) < 1e-10 and (l_back + ld).abs().max() < 1e-10
    # gradients of a reverse-KL-like loss through either path
    action = WilsonGaugeAction(2.0, U1()).action
    grads = []
    for model in (merged, ref):
        model.zero_grad()
        out, log_det = model(x)
        (action(out) - log_det).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert grads[0].abs().max() > 0.1
    assert (grads[0] - grads[1]).abs().max() < 1e-10 * grads[1].abs().max()


def test_checkpoints_load_into_either_path():
    """``state_dict`` keys as for a plain ``FlowModel`` of the same layers; a saved state loads
    into a merged or layer-by-layer model and gives the same output."""
    shape = (4, 4)
    trained = random_model(shape, n_layers=2, n_partners=4, seed=13)
    plain = FlowModel(trained.prior, list(trained.layers))
    assert list(trained.state_dict()) == list(plain.state_dict())
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    x = haar(shape, n=4, seed=14)
    y_ref, ld_ref = plain(x)
    for merged in (True, False):
        fresh = u1_plaquette_flow(shape, 2, (8,), 3, 3, n_partners=4, partner_hidden=(8,), merged=merged).to(DT)
        fresh.load_state_dict(state)  # strict
        y, ld = fresh(x)
        assert angle_err(y, y_ref) < 1e-12 and (ld - ld_ref).abs().max() < 1e-12


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"u1 plaquette flow: layers \['Identity'\]"):
        PlaquetteFlowModel(UniformAnglePrior((2, 4, 4)), [torch.nn.Identity()])
    with pytest.raises(ValueError, match=r"on lattices \[\(4, 4\), \(4, 6\)\]"):
        PlaquetteFlowModel(
            UniformAnglePrior((2, 4, 4)),
            [
                PlaquetteCoupling((4, 4), 0, torch.nn.Identity(), 1),
                PlaquetteCoupling((4, 6), 1, torch.nn.Identity(), 1),
            ],
        )
    partners = [SinkPartnerCoupling((4, 4), i, torch.nn.Identity(), 1) for i in (3, 2)]
    for chain in (partner_chain_forward, partner_chain_reverse):
        with pytest.raises(ValueError, match=r"plaquette indices \[3, 2\]; allowed: one or more, strictly"):
            chain(torch.zeros(1, 16, dtype=DT), partners)
    with pytest.raises(ValueError, match=r"n_partners = 15; allowed: 0 .. 14"):
        u1_plaquette_flow((4, 4), n_partners=15)
    with pytest.raises(ValueError, match=r"lattice shape \(4,\); allowed: two extents"):
        u1_plaquette_flow((4,))
    with pytest.raises(ValueError, match=r"n_layers = 0; allowed: >= 1"):
        u1_plaquette_flow((4, 4), n_layers=0)
    with pytest.raises(ValueError, match=r"plaquette index 15; allowed: 1 .. 14"):
        SinkPartnerCoupling((4, 4), 15, torch.nn.Identity(), 1)
    with pytest.raises(ValueError, match=r"links of shape \(1, 2, 4, 8\)"):
        u1_plaquette_flow((4, 4))(haar((4, 8), n=1))
    partner = u1_plaquette_flow((4, 4), n_layers=1, n_partners=1).layers[1]
    with pytest.raises(ValueError, match=r"u1 sink partner: links of shape \(1, 2, 4, 8\)"):
        partner(haar((4, 8), n=1).float())


def test_partner_ess_bound():
    """Exact limits: no partner gives I_0(beta)^2 / I_0(2 beta); many partners give 1."""
    for beta in (1.0, 3.0, 6.0):
        no_partner = special.ive(0, beta) ** 2 / special.ive(0, 2 * beta)
        assert partner_ess_bound(beta, 0) == pytest.approx(no_partner, rel=1e-12)
    assert partner_ess_bound(6.0, 16) == pytest.approx(0.9186, abs=1e-3)
    assert partner_ess_bound(6.0, 200) == pytest.approx(1.0, abs=1e-9)
    assert partner_ess_bound(6.0, 4) < partner_ess_bound(6.0, 8) < partner_ess_bound(6.0, 16)


def log_z(beta: float, volume: int) -> float:
    """``log int dtheta exp(-S)`` on a 2D torus (Lebesgue measure on the 2V link angles)."""
    n = np.arange(-40, 41)
    return 2 * volume * math.log(2 * math.pi) + math.log(np.sum(special.ive(n, beta) ** volume))


def train(shape, beta, steps, n_partners=0, spread=0.5, seed=0):
    torch.manual_seed(seed)
    model = u1_plaquette_flow(shape, 2, (8,), 3, 4, n_partners=n_partners, partner_hidden=(16,))
    for layer in model.layers:
        zero_mixture_head(layer.net, 4, spread)
    action = WilsonGaugeAction(beta, U1()).action
    trainer = FlowTrainer(model, action, steps, batch=64, lr=1e-2, seed=1, grad_clip=1.0)
    for _ in range(steps):
        trainer.step()
    kl = float(np.mean(trainer.history["loss"][-30:])) + log_z(beta, shape[0] * shape[1])
    return model, action, kl


def test_training_reaches_the_sink_limit_and_distinct_components_matter():
    """4 x 4, beta = 3, 300 steps. With exact one-plaquette maps the reverse KL is the sink's,
    ``log I_0(beta) - beta E[cos P_sink] ~ 1.46``; the flow gets there (the checkerboard
    conditioners may correlate plaquettes and go a little below). With
    identical mixture components at the start (spread 0) they never separate, the map stays a
    single projection and the KL stays above 3."""
    beta, volume = 3.0, 16
    rho1 = special.ive(1, beta) / special.ive(0, beta)
    sink_kl = math.log(special.iv(0, beta)) - beta * rho1 ** (volume - 1)
    _, _, kl = train((4, 4), beta, 300)
    assert kl < sink_kl + 0.25, (kl, sink_kl)
    _, _, kl_collapsed = train((4, 4), beta, 300, spread=0.0)
    assert kl_collapsed > 3.0, kl_collapsed


@pytest.mark.slow
def test_sink_partners_lift_the_ess_above_the_sink_limit():
    """4 x 4, beta = 3: with 8 partners the fresh-sample ESS exceeds the no-partner limit
    I_0^2 / I_0(2 beta) = 0.354 (bound with 8 partners: 0.957)."""
    model, action, kl = train((4, 4), 3.0, 600, n_partners=8)
    ess = evaluate_flow(model, action, 4000, seed=3)["ess"]
    assert ess > partner_ess_bound(3.0, 0) + 0.1, (ess, kl)
