import torch

from lqcdml.lattice import make_generators, randn
from lqcdml.observables import (
    abs_magnetization,
    magnetization,
    two_point_function,
    two_point_susceptibility,
    zero_momentum_correlator,
)


def test_two_point_function_equals_direct_translation_average():
    phi = randn(make_generators(0, 2), (4, 6))
    g = two_point_function(phi)
    for x0, x1 in [(0, 0), (1, 0), (2, 3), (3, 5)]:
        direct = (phi * torch.roll(phi, shifts=(-x0, -x1), dims=(1, 2))).mean(dim=(1, 2))
        assert torch.allclose(g[:, x0, x1], direct, atol=1e-14)
    assert torch.allclose(g.sum(dim=(1, 2)), two_point_susceptibility(phi), atol=1e-13)
    assert torch.allclose(zero_momentum_correlator(phi).sum(dim=1), two_point_susceptibility(phi), atol=1e-13)


def test_magnetisation():
    phi = torch.full((2, 3, 3), -0.5, dtype=torch.float64)
    assert torch.allclose(magnetization(phi), torch.tensor([-4.5, -4.5], dtype=torch.float64))
    assert torch.allclose(abs_magnetization(phi), torch.tensor([0.5, 0.5], dtype=torch.float64))
