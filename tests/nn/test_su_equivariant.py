"""Gauge-equivariant SU(2) and SU(3) coupling layers (``nn.su_equivariant``). 2D: inverse, group
membership, gauge equivariance, the log-Jacobian against the full Jacobian of all links by
autograd, a small flow that reweights to the exact finite-volume plaquette, and the layers bit for
bit those of the original 2D module (a committed reference). 4D: the masks and what a cycle of
the stack covers, inverse, group membership, gauge equivariance, a conditioner that reads frozen
plaquettes only, and the log-Jacobian against the full Jacobian on the smallest lattice."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from lqcdml.analysis.exact_sun_2d import su_n_2d_plaquette
from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.gauge_transform import gauge_transform
from lqcdml.nn.conv import conv_net
from lqcdml.nn.su_equivariant import (
    SUEquivariantCoupling,
    su_coupling_stack,
    su_flow,
    su_layer_cycle,
    su_link_masks,
)
from lqcdml.nn.su_phase_flows import SU2PhaseFlow, SU3PhaseFlow
from lqcdml.nn.u1_equivariant import u1_link_masks
from lqcdml.observables import plaquette
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.gauge import planes, plaquette_field

L = 4


def _layers(n: int, count: int, seed: int, scale: float = 0.3):
    torch.manual_seed(seed)
    layers = su_coupling_stack((L, L), n, count, hidden=8, bins=6)
    for layer in layers:
        layer.double()
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(scale * torch.randn_like(p))
    return layers


def test_layers_invert_stay_in_the_group_and_are_gauge_equivariant():
    for n in (2, 3):
        group = SU(n)
        x = group.haar(make_generators(0, 3), (2, L, L))
        omega = group.haar(make_generators(1, 3), (L, L))
        for layer in _layers(n, 4, n):
            y, log_det = layer(x)
            back, log_back = layer.reverse(y)
            assert (back - x).abs().max() < 1e-8 and (log_det + log_back).abs().max() < 1e-7, n
            assert (y @ y.mH - torch.eye(n, dtype=y.dtype)).abs().max() < 1e-12
            assert (torch.linalg.det(y) - 1).abs().max() < 1e-12
            assert (y - x).abs().max() > 0.1  # it moves the updated links
            y_g, log_det_g = layer(gauge_transform(x, omega, group))
            assert (y_g - gauge_transform(y, omega, group)).abs().max() < 1e-10, n
            assert (log_det_g - log_det).abs().max() < 1e-9, n
            x = y


def test_log_det_is_the_determinant_of_the_full_jacobian():
    """All 2 L^2 links perturbed as ``U exp(i omega . T)``: the Jacobian in these left-invariant
    coordinates (96 x 96 for SU(2) on 4 x 4) has ``log|det|`` equal to the layer's (Haar is
    invariant, so these coordinates carry the measure)."""
    group = SU(2)
    t = group.generators()
    x = group.haar(make_generators(2, 1), (2, L, L))
    for layer in _layers(2, 2, 7):
        y0 = layer(x)[0][0]

        def coords(omega: torch.Tensor) -> torch.Tensor:
            step = torch.linalg.matrix_exp(1j * torch.einsum("...a,aij->...ij", omega.to(t.dtype), t))
            moved = y0.mH @ layer(x @ step[None])[0][0]
            return (2 * torch.einsum("aij,...ji->...a", t, -1j * moved).real).reshape(-1)

        jac = torch.autograd.functional.jacobian(coords, torch.zeros(2, L, L, 3, dtype=torch.float64))
        expected = torch.linalg.slogdet(jac.reshape(2 * L * L * 3, -1))[1]
        assert abs(expected.item() - layer(x)[1][0].item()) < 1e-8


def test_a_trained_flow_reweights_to_the_exact_plaquette():
    """SU(2), beta = 2, 4 x 4: 8 layers trained briefly by reverse KL from Haar; the reweighted
    plaquette of fresh samples agrees with the exact finite-volume value."""
    group, beta = SU(2), 2.0
    action = WilsonGaugeAction(beta, group)
    layers = _layers(2, 8, 3, scale=0.0)
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=5e-3)
    gens = make_generators(3, 1)

    def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = group.haar(gens, (count, 2, L, L))[0]
        log_det = torch.zeros(count, dtype=torch.float64)
        for layer in layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    for _ in range(60):
        y, log_det = sample(32)
        loss = (-log_det + action.action(y)).mean()  # KL(q || p) up to constants
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        y, log_det = sample(3000)
        log_w = -action.action(y) + log_det
        w = torch.exp(log_w - log_w.max())
        o = plaquette(y, group)
    mean = (w * o).sum() / w.sum()
    error = torch.sqrt(((w * (o - mean)) ** 2).mean() / w.mean() ** 2 / len(w)).item()
    exact = su_n_2d_plaquette(beta, 2, L * L)
    assert abs(mean.item() - exact) < 4 * error, (mean.item(), error, exact)
    # training lifts the ESS from the untrained stack's 0.003 to about 0.2 (measured) in 60 steps
    ess = (w.sum() ** 2 / (len(w) * (w * w).sum())).item()
    assert ess > 0.05, ess


# --- the original 2D layers, bit for bit -----------------------------------------------------

REFERENCE = Path(__file__).parent.parent / "fixtures" / "su_equivariant_2d_reference.pt"


def test_2d_flows_are_bit_for_bit_those_of_the_original_2d_layers():
    """``tests/fixtures/make_su_equivariant_reference.py`` saved 2D flows of the module before
    it went to d dimensions (commit d05a771: seeds, perturbed parameters, inputs, forward and
    reverse outputs; float64 on CPU). The same seed builds the same parameters (shapes, the
    random stream, the cycle), the old state loads strictly, and the outputs are equal to rounding
    (1e-12: the SU(2) angle is now ``atan2`` of sine and cosine, not ``arccos`` of the cosine,
    ``lattice.spectral.su2_angle``, and every updated link is put back onto the group,
    ``SU.reunitarize``)."""
    ref = torch.load(REFERENCE)
    for n, count in ((2, 8), (3, 4)):
        r = ref[f"su{n}"]
        torch.manual_seed(100 + n)
        flow = su_flow((4, 4), n, n_layers=count, hidden=8, bins=6)
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.3 * torch.randn_like(p))
        rebuilt = flow.state_dict()
        for key, value in r["trained"].items():
            if value.dtype != torch.bool:  # the parameters; the masks below
                assert torch.equal(rebuilt[key], value), key
        fresh = su_flow((4, 4), n, n_layers=count, hidden=8, bins=6)
        fresh.load_state_dict(r["trained"])  # strict: the old keys, old 2D frozen masks [L_0, L_1]
        for model in (flow, fresh):
            with torch.no_grad():
                y, log_det = model(r["x"])
                back, log_back = model.reverse(r["x"])
            for got, want in ((y, r["y"]), (log_det, r["log_det"]), (back, r["back"]), (log_back, r["log_back"])):
                torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # a state of another layer refuses to load: layer 0's (mu = 0) as layer 1 (mu = 1)
    state = {k: v for k, v in ref["su2"]["trained"].items() if not k.startswith("layers.1.")}
    state.update({k.replace("layers.0.", "layers.1."): v for k, v in state.items() if k.startswith("layers.0.")})
    flow = su_flow((4, 4), 2, n_layers=2, hidden=8, bins=6)
    with pytest.raises(RuntimeError, match="differs from this layer's mask"):
        flow.load_state_dict(state, strict=False)


# --- masks in d dimensions -------------------------------------------------------------------


def _links_of_plaquette(a: int, b: int, y: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, tuple]]:
    """The four links ``(direction, site)`` of ``P_ab(y)``, in the order of the product."""

    def step(site, axis):
        s = list(site)
        s[axis] = (s[axis] + 1) % shape[axis]
        return tuple(s)

    return [(a, y), (b, step(y, a)), (a, step(y, b)), (b, y)]


def test_masks_in_4d_and_what_a_cycle_covers():
    """Per layer, by explicit lists of links: every active loop holds exactly one updated link (its
    own, first in the loop), frozen plaquettes are exactly those holding none. Per full cycle
    (48 layers in 4D, 8 in 2D): every plaquette of every plane is active once, and ``U_mu(x)`` is
    updated once for each ``nu != mu`` with ``x_nu = x_mu (mod 2)``. In 2D the masks are the U(1)
    layers'."""
    for shape in ((4, 4, 4, 4), (4, 4)):
        d = len(shape)
        sites = list(itertools.product(*[range(s) for s in shape]))
        pairs = su_layer_cycle(d)
        assert len(pairs) == d * (d - 1) and {mu for mu, _ in pairs} == set(range(d))
        assert {(min(p), max(p)) for p in pairs} == set(planes(d))
        updates = torch.zeros(d, *shape, dtype=torch.long)
        active_count = torch.zeros(len(planes(d)), *shape, dtype=torch.long)
        for offset in range(4):
            for mu, nu in pairs:
                links, corners, frozen = su_link_masks(shape, mu, nu, offset)
                updated = {(mu, x) for x in sites if links[x]}
                updates[mu] += links.long()
                plane = planes(d).index((min(mu, nu), max(mu, nu)))
                active_count[plane] += corners.long()
                for p, (a, b) in enumerate(planes(d)):
                    for y in sites:
                        held = [link in updated for link in _links_of_plaquette(a, b, y, shape)]
                        assert bool(frozen[p][y]) == (not any(held))
                        if p == plane and corners[y]:
                            assert held == ([True, False, False, False] if mu < nu else [False, True, False, False])
                if d == 2:
                    u1_links, _, _, u1_frozen = u1_link_masks(shape, mu, offset)
                    assert torch.equal(links, u1_links) and torch.equal(frozen[0], u1_frozen)
        assert (active_count == 1).all()
        for mu in range(d):
            for x in sites:
                assert updates[mu][x] == sum(1 for nu in range(d) if nu != mu and (x[nu] - x[mu]) % 2 == 0)
    # the stack follows the cycle: pairs fastest, then the offset
    stack = su_coupling_stack((4, 4, 4, 4), 2, 14, hidden=2, bins=2)
    assert [(c.mu, c.nu, c.offset) for c in stack] == [(*su_layer_cycle(4)[i % 12], i // 12) for i in range(14)]
    with pytest.raises(ValueError, match="multiple of 4 along nu"):
        su_link_masks((4, 4, 6, 4), 0, 2, 0)
    with pytest.raises(ValueError, match="even extent along the updated direction"):
        su_link_masks((4, 4, 3, 4), 2, 0, 0)
    with pytest.raises(ValueError, match="multiples of 4"):
        su_flow((4, 4, 4, 2), 3, 2)


# --- 4D layers ---------------------------------------------------------------------------------


def _layer(shape, n, mu, nu, offset, seed, scale=0.1, **options) -> SUEquivariantCoupling:
    torch.manual_seed(seed)
    d = len(shape)
    net = conv_net(d, len(planes(d)) * SUEquivariantCoupling.n_features(n), 4, [8], kernel=3, final="tanh")
    flow = SU2PhaseFlow(bins=6, context_dim=4) if n == 2 else SU3PhaseFlow(layers=2, bins=6, context_dim=4)
    layer = SUEquivariantCoupling(shape, n, mu, offset, net, flow, nu=nu, **options).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(scale * torch.randn_like(p))
    return layer


def test_4d_layers_invert_stay_in_the_group_and_are_gauge_equivariant():
    """4^4, SU(2) and SU(3), one layer of every ordered plane (the offsets in turn), on Haar
    links: inverse to 1e-10, group membership to 1e-12, ``f(U^g) = f(U)^g`` to 1e-10 with the
    log-Jacobian invariant; the other links untouched; the context unchanged when the updated
    links are redrawn (it reads frozen plaquettes only); the conditioner on gathered sites
    (``site_conv``) and the loops on gathered links equal to the plain evaluation."""
    shape = (4, 4, 4, 4)
    for n in (2, 3):
        group = SU(n)
        eye = torch.eye(n, dtype=torch.complex128)
        x = group.haar(make_generators(10 + n, 2), (4, *shape))
        omega = group.haar(make_generators(20 + n, 2), shape)
        for i, (mu, nu) in enumerate(su_layer_cycle(4)):
            layer = _layer(shape, n, mu, nu, i % 4, seed=i)
            assert layer.conditioner is not None and layer.gather_links  # the 4D defaults
            y, log_det = layer(x)
            back, log_back = layer.reverse(y)
            assert (back - x).abs().max() < 1e-10 and (log_det + log_back).abs().max() < 1e-10, (n, mu, nu)
            assert (y @ y.mH - eye).abs().max() < 1e-12 and (torch.linalg.det(y) - 1).abs().max() < 1e-12
            mask = layer.link_mask
            assert torch.equal(y[:, mu][:, ~mask], x[:, mu][:, ~mask])
            assert all(torch.equal(y[:, k], x[:, k]) for k in range(4) if k != mu)
            assert (y[:, mu][:, mask] - x[:, mu][:, mask]).abs().amax((-1, -2)).median() > 0.02  # they move
            y_g, log_det_g = layer(gauge_transform(x, omega, group))
            assert (y_g - gauge_transform(y, omega, group)).abs().max() < 1e-10, (n, mu, nu)
            assert (log_det_g - log_det).abs().max() < 1e-10, (n, mu, nu)
            redrawn = x.clone()
            redrawn[:, mu][:, mask] = group.haar(make_generators(30 + i, 2), (int(mask.sum()),))
            context = layer._context(plaquette_field(x, group))
            assert torch.equal(context, layer._context(plaquette_field(redrawn, group)))
            if i % 4 == 0:  # the plain evaluations agree
                plain = _layer(shape, n, mu, nu, i % 4, seed=i, site_conv=False, gather_links=False)
                y_plain, log_det_plain = plain(x)
                assert (y_plain - y).abs().max() < 1e-12 and (log_det_plain - log_det).abs().max() < 1e-10
            x = y


def test_4d_log_det_is_the_determinant_of_the_full_jacobian():
    """SU(2) on 2 x 4 x 2 x 2 (the smallest 4D lattice for a layer with ``nu = 1``: ``L_nu`` a
    multiple of 4, ``L_mu`` even, extents >= 2): all 4 V links perturbed as ``U exp(i omega . T)``;
    the 384 x 384 Jacobian in these left-invariant coordinates has ``log|det|`` equal to the
    layer's, and its block of the updated links is block-diagonal (each ``U'`` depends on no other
    updated link). Layers ``(0, 1)`` (loop at ``x``) and ``(3, 1)`` (loop at ``x - e_1``). The
    Jacobian by one reverse pass: row ``r`` is the gradient of output coordinate ``r`` of batch
    copy ``r`` (the layer treats configurations independently)."""
    shape = (2, 4, 2, 2)
    volume = math.prod(shape)
    rows = 4 * volume * 3
    group = SU(2)
    t = group.generators()
    x = group.haar(make_generators(4, 1), (4, *shape))
    for mu, nu, offset in ((0, 1, 1), (3, 1, 2)):
        layer = _layer(shape, 2, mu, nu, offset, seed=5, scale=0.3)
        y0, log_det = layer(x)
        omega = torch.zeros(rows, 4, *shape, 3, dtype=torch.float64, requires_grad=True)
        step = torch.linalg.matrix_exp(1j * torch.einsum("...a,aij->...ij", omega.to(t.dtype), t))
        moved = y0.mH @ layer(x @ step)[0]
        coords = (2 * torch.einsum("aij,b...ji->b...a", t, -1j * moved).real).reshape(rows, rows)
        coords.diagonal().sum().backward()
        jac = omega.grad.reshape(rows, rows)
        assert abs(torch.linalg.slogdet(jac)[1].item() - log_det[0].item()) < 1e-8, (mu, nu)
        updated = (mu * volume + layer.sites).tolist()
        for a in updated:
            for b in updated:
                if a != b:
                    assert jac[3 * a : 3 * a + 3, 3 * b : 3 * b + 3].abs().max() == 0


def test_flows_build_on_lattices_whose_loop_corners_wrap_around():
    """L = 8 in 2D and 8 x 4 x 4 x 4 in 4D: the corners of a layer's active loops wrap around the
    lattice (``mu > nu``), so their list is not in the order of the updated links' (the masks'
    self-check compares them as sets); one layer of every kind builds and inverts."""
    from lqcdml.nn.su_equivariant import su_flow

    for shape, layers in (((8, 8), 8), ((8, 4, 4, 4), 12)):
        flow = su_flow(shape, 2, layers, hidden=4, bins=4)
        z = flow.prior.sample(2)
        back, _ = flow.reverse(flow(z)[0])
        assert (back - z).abs().max() < 1e-8


def test_deep_float32_flows_stay_on_the_group():
    """96 layers in float32 (12 full 2D cycles): every updated link is put back onto SU(N), so the
    rounding error does not grow with depth (without it, ~20x per 12 layers: an identity SU(2)
    flow's links left the group by layer 60 and its loss was NaN)."""
    for n in (2, 3):
        torch.manual_seed(5)
        flow = su_flow((4, 4), n, n_layers=96, hidden=4, bins=4).to(torch.float32)
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.2 * torch.randn_like(p))
        x, log_q = flow.sample(4, torch.Generator().manual_seed(1))
        assert torch.isfinite(log_q).all() and x.dtype == torch.complex64
        assert SU(n).deviation(x).item() < 2e-6, n
