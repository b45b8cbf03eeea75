"""Gauge-equivariant U(1) coupling layers: inverse, log-Jacobian, equivariance, circle map."""

from __future__ import annotations

import math

import pytest
import torch

from lqcdml.lattice import U1, gauge_transform
from lqcdml.nn.conv import conv_net
from lqcdml.nn.u1_equivariant import (
    U1EquivariantCoupling,
    circle_map,
    circle_map_inverse,
    projection_mixture,
    u1_flow,
    u1_link_masks,
)
from lqcdml.theories.gauge import plaquette_field

DT = torch.float64
LAYERS = [(mu, off) for off in range(4) for mu in range(2)]


def wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def angle_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest distance of two angle fields on the circle."""
    return wrap(a - b).abs().max().item()


def randomize(module: torch.nn.Module, seed: int, std: float = 0.2) -> torch.nn.Module:
    """Random normal weights everywhere (the zero-initialised last layers included).

    ``std = 0.2`` gives log-scales ``|s| <~ 4``: far from the identity, yet the inverse of a
    16-layer flow stays well conditioned (``std = 0.5`` gives ``|s| ~ 16`` and a forward map
    that contracts plaquettes by ``e^-16``, which no float64 inverse can undo)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def random_model(shape, n_layers, seed=0, std=0.2, n_mix=3):
    return randomize(u1_flow(shape, n_layers=n_layers, hidden=(8,), n_mix=n_mix), seed, std).to(DT)


def random_layer(shape, mu, offset, seed=0, std=0.4, n_mix=3, loop_context=True):
    net = conv_net(2, 4 if loop_context else 2, 2 * n_mix + 2, [8], 3, "leaky_relu", final=None)
    layer = U1EquivariantCoupling(shape, mu, offset, net, n_mix, loop_context)
    return randomize(layer, seed, std).to(DT)


def haar(shape, n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.rand((n, 2, *shape), generator=g, dtype=DT) - 1) * math.pi


@pytest.mark.parametrize("shape", [(4, 4), (8, 4), (4, 8)])
def test_flow_is_invertible(shape):
    model = random_model(shape, n_layers=16)
    z = model.prior.sample(4, torch.Generator().manual_seed(3), dtype=DT)
    x, ld = model(z)
    z_back, ld_back = model.reverse(x)
    assert angle_err(x, z) > 0.5  # far from the identity
    assert ld.abs().max() > 1.0
    assert angle_err(z_back, z) < 1e-10
    assert (ld + ld_back).abs().max() < 1e-10
    assert x.min() >= -math.pi and x.max() < math.pi
    # log q through the inverse equals the pushed density
    _, log_q = model.push(z)
    assert (model.log_prob(x) - log_q).abs().max() < 1e-10


def autograd_log_det(fn, x: torch.Tensor) -> torch.Tensor:
    """``log|det J|`` of ``fn`` on a single configuration ``x`` ``[1, 2, L0, L1]``."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x))[0].flatten(), x.flatten())
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign.abs() == 1
    return logabs


@pytest.mark.parametrize("loop_context", [True, False])
@pytest.mark.parametrize("mu,offset", LAYERS)
def test_layer_log_det_matches_autograd(mu, offset, loop_context):
    layer = random_layer((4, 4), mu, offset, seed=10 + offset, loop_context=loop_context)
    xs = haar((4, 4), n=8, seed=5)
    i = layer(xs)[1].abs().argmax()
    x = xs[i : i + 1]  # the draw farthest from volume preservation
    y, ld = layer(x)
    assert angle_err(y, x) > 0.1  # a real change, far above the 1e-10 tolerance below
    assert abs(ld.item()) > 0.05
    assert abs(autograd_log_det(layer, x) - ld.item()) < 1e-10
    x_back, ld_back = layer.reverse(y)
    assert abs(autograd_log_det(layer.reverse, y) - ld_back.item()) < 1e-10
    assert angle_err(x_back, x) < 1e-10


def test_model_log_det_matches_autograd():
    model = random_model((4, 4), n_layers=3, seed=2, std=0.3)
    x = haar((4, 4), n=1, seed=6)
    y, ld = model(x)
    assert abs(ld.item()) > 0.5
    assert abs(autograd_log_det(model, x) - ld.item()) < 1e-10


def test_flow_is_gauge_equivariant():
    shape = (8, 4)
    model = random_model(shape, n_layers=8, seed=4, std=0.3)
    links = haar(shape, n=3, seed=7)
    alpha = haar(shape, n=3, seed=8)[:, 0]
    group = U1()
    y, ld = model(links)
    y_t, ld_t = model(gauge_transform(links, alpha, group))
    assert angle_err(y, links) > 0.5
    assert angle_err(gauge_transform(links, alpha, group), links) > 1.0
    assert angle_err(y_t, gauge_transform(y, alpha, group)) < 1e-10
    assert (ld_t - ld).abs().max() < 1e-10
    # plaquettes of the output do not depend on the gauge
    p, p_t = (plaquette_field(v, group) for v in (y, y_t))
    assert angle_err(p, p_t) < 1e-10


def circle_params(n: int = 2000, k: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    s = 2 * torch.randn((1, k, n), generator=g, dtype=DT)
    w = torch.softmax(2 * torch.randn((1, k, n), generator=g, dtype=DT), dim=1)
    t = wrap(4 * torch.randn((1, n), generator=g, dtype=DT))
    return s, w, t


def test_projection_mixture_is_monotone_and_fixes_pi():
    s, w, _ = circle_params(n=1, k=4)
    u = torch.linspace(-math.pi, math.pi, 20001, dtype=DT).view(1, -1)
    g, dg = projection_mixture(u, s.expand(1, 4, u.shape[1]), w.expand(1, 4, u.shape[1]))
    assert (g.diff(dim=1) > 0).all()
    assert (dg > 0).all()
    assert abs(g[0, 0].item() + math.pi) < 1e-14 and abs(g[0, -1].item() - math.pi) < 1e-14
    assert (g - u).abs().max() > 0.3  # not the identity


def test_circle_map_derivative_and_inverse():
    s, w, t = circle_params()
    g = torch.Generator().manual_seed(1)
    p = wrap(4 * torch.randn(t.shape, generator=g, dtype=DT))
    h, dh = circle_map(p, s, w, t)
    eps = 1e-6
    fd = wrap(circle_map(p + eps, s, w, t)[0] - circle_map(p - eps, s, w, t)[0]) / (2 * eps)
    assert ((fd - dh).abs() / dh).max() < 1e-6
    assert (dh.log().abs().max()) > 1.0
    p_back, dh_back = circle_map_inverse(h, s, w, t)
    assert angle_err(p_back, p) < 1e-12
    assert ((dh_back - dh).abs() / dh).max() < 1e-10
    # the rotation keeps the map a bijection of the circle: h(t + pi) = t + pi
    assert angle_err(circle_map(t + math.pi, s, w, t)[0], t + math.pi) < 1e-10


@pytest.mark.parametrize("mu,offset", LAYERS)
def test_masks_follow_the_convention(mu, offset):
    shape = (8, 4) if mu == 1 else (4, 8)
    links, active, passive, frozen = u1_link_masks(shape, mu, offset)
    nu = 1 - mu
    x = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    assert torch.equal(links, (x[mu] % 2 == offset % 2) & (x[nu] % 4 == offset))
    assert int(active.sum()) == int(passive.sum()) == int(links.sum()) == shape[0] * shape[1] // 8
    total = active.int() + passive.int() + frozen.int()
    assert torch.equal(total, torch.ones(shape, dtype=torch.int))

    layer = random_layer(shape, mu, offset, seed=offset)
    theta = haar(shape, n=2, seed=9)
    y, _ = layer(theta)
    changed = wrap(y - theta).abs() > 1e-12
    expect = torch.zeros_like(changed)
    expect[:, mu] = links
    assert torch.equal(changed, expect)
    p, p_new = (plaquette_field(v, U1())[:, 0] for v in (theta, y))
    assert angle_err(p_new[:, frozen], p[:, frozen]) < 1e-12
    assert (wrap(p_new - p).abs()[:, passive] > 1e-12).all()
    s, w, t = layer._params(p)
    assert angle_err(p_new[:, active], circle_map(p, s, w, t)[0][:, active]) < 1e-12


def test_every_plaquette_is_active_once_per_cycle():
    count = sum(u1_link_masks((8, 8), mu, off)[1].int() for mu, off in LAYERS)
    assert torch.equal(count, torch.ones((8, 8), dtype=torch.int))


def test_loop_context_is_invariant_under_the_layer():
    """The 1 x 2 loop of an active plaquette and its passive partner holds the updated link
    twice with opposite signs: the layer leaves it unchanged, so conditioning on it keeps
    the layer invertible."""
    for mu, offset in LAYERS:
        layer = random_layer((8, 8), mu, offset, seed=offset)
        x = haar((8, 8), n=2, seed=offset)
        y, _ = layer(x)
        p_x, p_y = (plaquette_field(v, U1())[:, 0] for v in (x, y))
        active = layer.active
        assert angle_err(p_y[:, active], p_x[:, active]) > 0.1
        assert angle_err(layer.loop_angle(p_y)[:, active], layer.loop_angle(p_x)[:, active]) < 1e-12


def test_default_flow_has_distinct_mixture_components_and_float32_works():
    """Untrained layers have distinct log-scales (identical components would get identical
    gradients and never separate) and stay near the identity."""
    model = u1_flow((4, 4), n_layers=8)
    for layer in model.layers:
        s, w, t = layer._params(torch.zeros(1, 4, 4))
        assert torch.allclose(s[0, :, 0, 0], torch.linspace(-0.5, 0.5, 6))
        assert torch.allclose(w, torch.full_like(w, 1 / 6)) and t.abs().max() == 0
    z = model.prior.sample(2, torch.Generator().manual_seed(0))
    x, ld = model(z)
    assert x.dtype == torch.float32
    assert 0.01 < angle_err(x, z) < 0.5
    model32 = randomize(model, seed=3)
    x, ld = model32(z)
    z_back, ld_back = model32.reverse(x)
    assert x.dtype == ld.dtype == z_back.dtype == torch.float32
    assert angle_err(x, z) > 0.5
    assert angle_err(z_back, z) < 1e-4
    assert (ld + ld_back).abs().max() < 1e-4
    # the inverse is differentiable in the parameters (training on data through reverse)
    model32.log_prob(x).sum().backward()
    grads = [p.grad for p in model32.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert max(g.abs().max().item() for g in grads) > 0


@pytest.mark.parametrize(
    "shape,mu,match",
    [
        ((3, 4), 0, r"L_0 = 3; allowed: an even extent"),
        ((4, 6), 0, r"L_1 = 6; allowed: a multiple of 4"),
        ((4, 5), 1, r"L_1 = 5; allowed: an even extent"),
        ((2, 4), 1, r"L_0 = 2; allowed: a multiple of 4"),
    ],
)
def test_bad_extents_raise(shape, mu, match):
    net = conv_net(2, 2, 4, [4], 3, "leaky_relu", final=None)
    with pytest.raises(ValueError, match=match):
        U1EquivariantCoupling(shape, mu, 0, net, 1)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"L_0 = 6; allowed: a multiple of 4"):
        u1_flow((6, 4), n_layers=2)
    with pytest.raises(ValueError, match=r"offset = 4; allowed"):
        u1_link_masks((4, 4), 0, 4)
    with pytest.raises(ValueError, match=r"mu = 2; allowed"):
        u1_link_masks((4, 4), 2, 0)
    layer = U1EquivariantCoupling((4, 4), 0, 0, conv_net(2, 4, 5, [4], 3, "tanh", None), 2).to(DT)
    with pytest.raises(ValueError, match=r"net gives 5 channels; allowed: 2 n_mix \+ 2 = 6"):
        layer(haar((4, 4), n=1))
    with pytest.raises(ValueError, match=r"links of shape \(1, 2, 4, 8\)"):
        layer(haar((4, 8), n=1))
