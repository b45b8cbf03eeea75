import pytest
import torch

from lqcdml.nn import AffineCoupling, checkerboard_masks, conv_net, phi4_flow


def _random_flow(shape, n_layers=4, seed=0, scale=3.0):
    """A flow far from the identity: conditioner weights scaled up."""
    torch.manual_seed(seed)
    model = phi4_flow(shape, n_layers=n_layers, hidden=(4,)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


@pytest.mark.parametrize("shape", [(4, 4), (4, 2, 6)])
def test_flow_is_invertible(shape):
    model = _random_flow(shape)
    z = torch.randn(3, *shape, dtype=torch.float64)
    x, log_det = model(z)
    z_back, log_det_back = model.reverse(x)
    assert (z_back - z).abs().max() < 1e-10
    assert (log_det + log_det_back).abs().max() < 1e-10
    assert (x - z).abs().max() > 0.1  # far from the identity


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 4)])
def test_log_jacobian_equals_autograd_log_det(shape):
    model = _random_flow(shape, n_layers=3)
    n = 1
    for s in shape:
        n *= s
    for b in range(2):
        z = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(b))
        jac = torch.autograd.functional.jacobian(lambda v: model(v.reshape(1, *shape))[0].reshape(-1), z.reshape(-1))
        expected = torch.linalg.slogdet(jac.reshape(n, n))[1]
        assert abs(model(z.unsqueeze(0))[1].item() - expected.item()) < 1e-10


def test_coupling_leaves_frozen_sites_and_log_density_is_consistent():
    even, _ = checkerboard_masks((4, 4))
    torch.manual_seed(3)
    layer = AffineCoupling(even.double(), conv_net(2, 1, 2, [4]).double())
    x = torch.randn(5, 4, 4, dtype=torch.float64)
    y, _ = layer(x)
    assert torch.equal(y * even, x * even)
    model = _random_flow((4, 4))
    samples, log_q = model.sample(6)
    assert (model.log_prob(samples) - log_q).abs().max() < 1e-10


def test_tutorial_architecture_has_the_published_parameter_count():
    """16 couplings, Conv(1->8)-Conv(8->8)-Conv(8->2), 3x3: 12,960 parameters (REFERENCE.md)."""
    assert sum(p.numel() for p in phi4_flow((8, 8)).parameters()) == 12960
