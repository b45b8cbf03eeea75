import math

import pytest
import torch
from torch import nn

from lqcdml.nn import PeriodicConv, conv_net
from lqcdml.nn.site_conv import SiteConvNet, site_conv_supported

DT = torch.float64
MODES = [None, (True, True), (True, False), (False, True)]


def _reference(net, shape, sites_in, sites_out, x):
    """``net`` on the field that is ``x [C, M_in, B]`` on ``sites_in`` and zero elsewhere, at ``sites_out``."""
    c, _, batch = x.shape
    field = torch.zeros(batch, c, math.prod(shape), dtype=x.dtype)
    field = field.index_copy(2, sites_in, x.permute(2, 0, 1))
    out = net(field.reshape(batch, c, *shape)).flatten(2)
    return out.index_select(2, sites_out).permute(1, 2, 0)


def _sites(n, k, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def _nets():
    torch.manual_seed(0)
    rolled = nn.Sequential(
        PeriodicConv(2, 1, 3, native=False), nn.ReLU(), PeriodicConv(2, 3, 2, native=False), nn.Tanh()
    )
    no_bias = nn.Sequential(PeriodicConv(2, 2, 4, bias=False), nn.LeakyReLU(0.2), PeriodicConv(2, 4, 3, bias=False))
    return [
        ("leaky_tanh_2d", (6, 4), conv_net(2, 1, 2, [5, 3], 3, "leaky_relu", "tanh")),
        ("silu_3d", (4, 2, 6), conv_net(3, 2, 3, [4], 3, "silu", None)),
        ("kernel5", (4, 6), conv_net(2, 1, 2, [3], 5, "tanh", "tanh")),
        ("rolled", (4, 4), rolled),
        ("no_bias", (4, 6), no_bias),
        ("single_conv", (4, 4), conv_net(2, 1, 2, [], 3, "leaky_relu", "tanh")),
        ("rolled_4d", (2, 2, 2, 4), conv_net(4, 1, 2, [3], 3, "leaky_relu", "tanh")),
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,shape,net", _nets(), ids=[n for n, _, _ in _nets()])
def test_site_convolution_equals_the_masked_network_with_its_gradients(name, shape, net, mode):
    net = net.to(DT)
    with torch.no_grad():  # weights of order one: every term matters
        for p in net.parameters():
            p.mul_(2.0)
    n = math.prod(shape)
    sites_in, sites_out = _sites(n, n // 2 + 1, 1), _sites(n, n // 3 + 1, 2)
    site_net = SiteConvNet(net, shape, sites_in, sites_out, gather=mode)
    c_in = next(m for m in net if isinstance(m, PeriodicConv)).c_in
    x = torch.randn(c_in, len(sites_in), 5, dtype=DT, requires_grad=True)
    out = site_net(net, x)
    ref = _reference(net, shape, sites_in, sites_out, x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-12
    probe = torch.randn_like(ref)
    params = list(net.parameters())
    grads = torch.autograd.grad((out * probe).sum(), [x, *params])
    expected = torch.autograd.grad((ref * probe).sum(), [x, *params])
    for g, e in zip(grads, expected):
        assert g.shape == e.shape
        assert (g - e).abs().max() < 1e-12 * max(1.0, e.abs().max().item())
    again = site_net(net, x)  # the reused gather buffers leave results alone
    assert torch.equal(again, out)


def test_site_convolution_tables_stay_out_of_the_state_dict_and_follow_the_dtype():
    net = conv_net(2, 1, 2, [4], 3, "leaky_relu", "tanh")
    site_net = SiteConvNet(net, (4, 4), torch.arange(0, 16, 2), torch.arange(1, 16, 2))
    assert site_net.state_dict() == {}
    assert all(b.dtype == torch.long for b in site_net.buffers())
    x = torch.randn(1, 8, 3)
    out = site_net(net, x)
    assert out.dtype == torch.float32 and out.shape == (2, 8, 3)


def test_networks_the_site_convolution_cannot_evaluate_are_recognised():
    assert site_conv_supported(conv_net(2, 1, 2, [4]), 2)
    assert not site_conv_supported(conv_net(2, 1, 2, [4]), 3)  # a 2D network on a 3D lattice
    assert not site_conv_supported(nn.Sequential(PeriodicConv(2, 1, 2), nn.GELU()), 2)
    assert not site_conv_supported(nn.Sequential(nn.Tanh(), PeriodicConv(2, 1, 2)), 2)
    assert not site_conv_supported(nn.Sequential(PeriodicConv(2, 1, 2), nn.Tanh(), nn.Tanh()), 2)
    assert not site_conv_supported(nn.Sequential(PeriodicConv(2, 1, 2), nn.LeakyReLU(-0.1)), 2)
    assert not site_conv_supported(nn.Sequential(nn.Linear(2, 2)), 2)
    assert not site_conv_supported(PeriodicConv(2, 1, 2), 2)
    with pytest.raises(ValueError, match="empty site list"):
        SiteConvNet(conv_net(2, 1, 2, [4]), (4, 4), torch.arange(0), torch.arange(16))


def test_site_convolution_refuses_second_derivatives():
    net = conv_net(2, 1, 2, [4], 3, "leaky_relu", "tanh").double()
    site_net = SiteConvNet(net, (4, 4), torch.arange(0, 16, 2), torch.arange(1, 16, 2))
    x = torch.randn(1, 8, 3, dtype=DT, requires_grad=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(site_net(net, x).sum(), x, create_graph=True)
