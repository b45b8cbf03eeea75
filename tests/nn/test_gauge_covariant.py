"""Gauge-covariant layers: trainable stout smearing and CASK attention."""

import pytest
import torch

from lqcdml.lattice import SU
from lqcdml.nn import CASKBlock, StoutLayer, cask_net, stout_net
from lqcdml.nn.gauge_loops import (
    closing_paths,
    loop_staple,
    path_product,
    polyakov_staple,
    polyakov_staples,
    rectangle_staple,
)
from lqcdml.observables import plaquette
from lqcdml.theories.gauge import staple_sum

from ..helpers import random_gauge_transform, random_links

ALL = ("plaquette", "rectangle", "polyakov")
CASES = [(2, (4, 4, 4, 2, 2)), (3, (4, 2, 4, 2, 2))]


def _networks(group, init):
    torch.manual_seed(5)
    nets = {
        "stout": stout_net(group, 4, 2, ALL, init=0.0),
        "cask": cask_net(group, 4, 1, ALL, extent=2, init=0.0),
    }
    with torch.no_grad():
        for net in nets.values():
            for p in net.parameters():
                p.copy_(init * torch.randn_like(p))  # random, not only equal weights
    return nets


def test_closing_paths_count_every_loop_through_a_link_once():
    assert len(closing_paths("plaquette", 1, 4)) == 2 * 3
    assert len(closing_paths("rectangle", 0, 4)) == 6 * 3  # 2x1 (link first or second) and 1x2, both sides
    for path in closing_paths("rectangle", 2, 4):
        disp = [0] * 4
        for mu, s in ((2, 1),) + path:
            disp[mu] += s
        assert disp == [0, 0, 0, 0] and len(path) == 5


@pytest.mark.parametrize("n, shape", CASES)
def test_staples_close_the_loops_they_name(n, shape):
    group = SU(n)
    u = random_links(group, shape, seed=1)
    # plaquette staples are the Wilson force's staple sum
    assert torch.allclose(loop_staple(u, "plaquette"), staple_sum(u, group), atol=1e-13)
    # sum over links of Re tr U S counts each loop once per link: 4 links per plaquette, 6 per rectangle
    re_tr = lambda x: torch.diagonal(x, dim1=-2, dim2=-1).sum(-1).real  # noqa: E731
    n_planes, volume = 6, u[0, 0, ..., 0, 0].numel()
    plaq_sum = plaquette(u, group) * n * n_planes * volume
    assert torch.allclose(re_tr(u @ loop_staple(u, "plaquette")).sum(dim=(1, 2, 3, 4, 5)), 4 * plaq_sum, atol=1e-10)
    rect = sum(
        re_tr(path_product(u, ((mu, 1), (mu, 1), (nu, 1), (mu, -1), (mu, -1), (nu, -1))))
        for mu in range(4)
        for nu in range(4)
        if mu != nu
    ).sum(dim=(1, 2, 3, 4))
    assert torch.allclose(re_tr(u @ loop_staple(u, "rectangle")).sum(dim=(1, 2, 3, 4, 5)), 6 * rect, atol=1e-10)
    # the 1 x 1 rectangle staple on the +nu side is the upper plaquette staple
    upper = path_product(u, ((1, 1), (0, -1), (1, -1)), start=(1, 0, 0, 0))
    assert torch.allclose(rectangle_staple(u, 0, 1, 1), upper, atol=1e-14)
    # Polyakov staples: U_mu(x) S_mu(x) is the Polyakov line through x, the same trace along the line
    line = re_tr(u[:, 0] @ polyakov_staple(u, 0))
    assert torch.allclose(line, line.roll(1, dims=1), atol=1e-12)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("lattice", [(4, 4, 4, 4), (4, 3, 2, 1), (2, 5), (3,)])
def test_polyakov_staples_of_all_directions_at_once_equal_the_line_of_each(n, lattice):
    """The gathered lines (shorter directions padded with the identity) equal each direction's
    product of shifted links, forward and vector-Jacobian product, to rounding."""
    u = random_links(SU(n), (len(lattice), *lattice), seed=4).requires_grad_(True)
    gathered = polyakov_staples(u)
    by_direction = torch.stack([polyakov_staple(u, mu) for mu in range(len(lattice))], dim=1)
    assert torch.allclose(gathered, by_direction, rtol=0, atol=1e-14)
    cotangent = torch.randn_like(gathered)
    (a,) = torch.autograd.grad(gathered, u, cotangent)
    (b,) = torch.autograd.grad(by_direction, u, cotangent)
    assert torch.allclose(a, b, rtol=0, atol=1e-13)
    # a direction of extent 1 is its own line: the identity staple
    if 1 in lattice:
        eye = torch.eye(n, dtype=u.dtype).expand_as(gathered[:, lattice.index(1)])
        assert torch.equal(gathered[:, lattice.index(1)].detach(), eye)


@pytest.mark.parametrize("n, shape", CASES)
@pytest.mark.parametrize("kind", ["stout", "cask"])
def test_layers_are_gauge_covariant_and_stay_in_su_n(n, shape, kind):
    group = SU(n)
    u = random_links(group, shape, seed=2)
    net = _networks(group, 0.05)[kind]
    omega_seed = 17
    with torch.no_grad():
        v = net(u)
        v_of_transformed = net(random_gauge_transform(u, group, seed=omega_seed))
    assert (v - u).abs().max() > 1e-2  # the layer does something
    assert float((v_of_transformed - random_gauge_transform(v, group, seed=omega_seed)).abs().max()) < 1e-12
    assert float(group.deviation(v)) < 1e-12


@pytest.mark.parametrize("n, shape", CASES)
@pytest.mark.parametrize("kind", ["stout", "cask"])
def test_zero_weights_are_the_identity(n, shape, kind):
    group = SU(n)
    u = random_links(group, shape, seed=3)
    net = _networks(group, 0.0)[kind]
    with torch.no_grad():
        assert torch.equal(net(u), u)


def test_positive_plaquette_weight_smooths_the_field():
    group = SU(2)
    u = random_links(group, (4, 4, 4, 4, 4), seed=4)
    layer = StoutLayer(group, 4, ("plaquette",), init=0.05)
    with torch.no_grad():
        assert torch.all(plaquette(layer(u), group) > plaquette(u, group) + 0.05)


def test_every_weight_gets_a_gradient_from_zero():
    group = SU(2)
    u = random_links(group, (4, 4, 2, 2, 2), seed=6)
    block = CASKBlock(group, 4, ALL, extent=2)
    with torch.no_grad():
        block.value.plaquette.fill_(0.1)  # the value path acts only through a nonzero attention
    loss = plaquette(block(u), group).sum()
    loss.backward()
    grads = {name: p.grad for name, p in block.named_parameters()}
    for name in ("query.plaquette", "key.plaquette", "final.plaquette", "final.polyakov"):
        assert torch.isfinite(grads[name]).all() and grads[name].abs().max() > 0, name


def test_bad_loop_types_and_extents_are_refused():
    with pytest.raises(ValueError, match="allowed"):
        StoutLayer(SU(2), 4, ("hexagon",))
    with pytest.raises(ValueError, match="extent"):
        CASKBlock(SU(2), 4, extent=0)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("shape", [(4, 4, 2, 3, 2), (2, 4, 2), (3, 2, 4, 6)])
@pytest.mark.parametrize("loop", ["plaquette", "rectangle"])
def test_staples_by_gathers_equal_the_path_by_path_sum(n, shape, loop):
    from lqcdml.nn.gauge_loops import loop_staple, loop_staple_by_paths

    u = random_links(SU(n), shape, seed=4)
    assert float((loop_staple(u, loop) - loop_staple_by_paths(u, loop)).abs().max()) < 1e-13


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kind", ["stout", "cask"])
def test_networks_on_the_kernels_equal_the_torch_path(n, kind, monkeypatch):
    """Forward pass and vector-Jacobian product (links and weights) with the compiled products
    (``kernels.matmul``) against ``LQCDML_KERNELS=torch``, to 1e-12."""
    group = SU(n)
    u = random_links(group, (4, 4, 2, 2, 2), seed=5)
    net = _networks(group, 0.05)[kind]
    cotangent = random_links(group, (4, 4, 2, 2, 2), seed=6)

    def run():
        x = u.clone().requires_grad_(True)
        v = net(x)
        params = list(net.parameters())
        grads = torch.autograd.grad(v, [x, *params], grad_outputs=cotangent)
        return v.detach(), grads

    v_kernel, g_kernel = run()
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    v_torch, g_torch = run()
    assert float((v_kernel - v_torch).abs().max()) < 1e-12
    for a, b in zip(g_kernel, g_torch):
        assert float((a - b).abs().max()) < 1e-12 * max(1.0, float(b.abs().max()))
