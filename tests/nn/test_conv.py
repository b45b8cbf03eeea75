import itertools

import pytest
import torch

from lqcdml.nn import PeriodicConv, conv_net


@pytest.mark.parametrize("dim,shape", [(2, (6, 4)), (3, (4, 2, 6))])
def test_rolled_convolution_equals_torchs_circular_convolution(dim, shape):
    torch.manual_seed(0)
    native = PeriodicConv(dim, 3, 5, kernel=3).double()
    rolled = PeriodicConv(dim, 3, 5, kernel=3, native=False).double()
    with torch.no_grad():
        for k, off in enumerate(rolled.offsets):
            rolled.weight[k] = native.conv.weight[(slice(None), slice(None), *[o + 1 for o in off])]
        rolled.bias.copy_(native.conv.bias)
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    assert (native(x) - rolled(x)).abs().max() < 1e-12


def test_four_dimensional_convolution_is_translation_equivariant():
    torch.manual_seed(1)
    conv = PeriodicConv(4, 2, 3, kernel=3).double()
    assert not conv.native and len(conv.offsets) == 81
    x = torch.randn(1, 2, 4, 2, 2, 4, dtype=torch.float64)
    for shift in itertools.islice(itertools.product(range(3), repeat=4), 1, 12, 3):
        dims = (2, 3, 4, 5)
        lhs = conv(torch.roll(x, shift, dims))
        rhs = torch.roll(conv(x), shift, dims)
        assert (lhs - rhs).abs().max() < 1e-12


def test_bad_network_settings_are_refused():
    with pytest.raises(ValueError, match="kernel = 2; allowed: odd >= 1"):
        PeriodicConv(2, 1, 1, kernel=2)
    with pytest.raises(ValueError, match="native convolution for dim = 4"):
        PeriodicConv(4, 1, 1, native=True)
    with pytest.raises(ValueError, match="activation = 'gelu'; allowed"):
        conv_net(2, 1, 2, [8], activation="gelu")
