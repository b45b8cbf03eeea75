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
    """16 couplings, Conv(1->8)-Conv(8->8)-Conv(8->2), 3x3: 12,960 parameters (docs/reference.md#flow-tutorial)."""
    assert sum(p.numel() for p in phi4_flow((8, 8)).parameters()) == 12960


# --- the site-list evaluation (fast path) against the masked formulation ---------------------
def _twins(shape, hidden=(4,), n_layers=4, seed=0, scale=3.0):
    """The same flow twice: on site lists (the default) and masked (``fast=False``)."""
    fast = _random_flow(shape, n_layers=n_layers, seed=seed, scale=scale) if hidden == (4,) else None
    if fast is None:
        torch.manual_seed(seed)
        fast = phi4_flow(shape, n_layers=n_layers, hidden=hidden).double()
        with torch.no_grad():
            for p in fast.parameters():
                p.mul_(scale)
    masked = phi4_flow(shape, n_layers=n_layers, hidden=hidden, fast=False).double()
    masked.load_state_dict(fast.state_dict())
    return fast, masked


def _close(a, b, tol=1e-12):
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("shape,hidden", [((8, 8), (8, 8)), ((4, 2, 6), (4,)), ((2, 2, 4), (4, 3)), ((4, 4), ())])
def test_site_list_flow_equals_the_masked_flow_with_gradients(shape, hidden):
    fast, masked = _twins(shape, hidden)
    assert all(layer.conditioner is not None for layer in fast.layers)
    assert all(layer.conditioner is None for layer in masked.layers)
    z = torch.randn(5, *shape, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(5, *shape, dtype=torch.float64)
    for direction in ("forward", "reverse"):
        (x, ld), (x_ref, ld_ref) = getattr(fast, direction)(z), getattr(masked, direction)(z)
        assert _close(x, x_ref) and _close(ld, ld_ref)
        loss = (x * probe).sum() + (x**3).sum() + (ld**2).sum()
        loss_ref = (x_ref * probe).sum() + (x_ref**3).sum() + (ld_ref**2).sum()
        grads = torch.autograd.grad(loss, [z, *fast.parameters()])
        expected = torch.autograd.grad(loss_ref, [z, *masked.parameters()])
        assert all(_close(g, e) for g, e in zip(grads, expected))


def test_site_list_coupling_alone_equals_the_masked_one_for_any_mask():
    torch.manual_seed(4)
    mask = (torch.rand(4, 6) < 0.4).double()
    net = conv_net(2, 1, 2, [4, 3], 3, "tanh", "tanh").double()
    fast, masked = AffineCoupling(mask, net), AffineCoupling(mask, net, fast=False)
    assert fast.conditioner is not None and fast.parity is None
    x = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    for direction in ("forward", "reverse"):
        (y, ld), (y_ref, ld_ref) = getattr(fast, direction)(x), getattr(masked, direction)(x)
        assert _close(y, y_ref) and _close(ld, ld_ref)
        g = torch.autograd.grad((y**2).sum() + ld.sum(), [x, *net.parameters()])
        e = torch.autograd.grad((y_ref**2).sum() + ld_ref.sum(), [x, *net.parameters()])
        assert all(_close(a, b) for a, b in zip(g, e))


@pytest.mark.parametrize("shape", [(4, 4), (4, 2, 6)])
def test_site_list_flow_is_invertible_to_rounding(shape):
    model = _random_flow(shape)
    z = torch.randn(3, *shape, dtype=torch.float64)
    x, log_det = model(z)
    z_back, log_det_back = model.reverse(x)
    assert (z_back - z).abs().max() < 1e-12
    assert (log_det + log_det_back).abs().max() < 1e-12


@pytest.mark.parametrize("fast", [None, False])
def test_log_jacobian_equals_the_brute_force_determinant(fast):
    shape = (4, 4)
    torch.manual_seed(2)
    model = phi4_flow(shape, n_layers=3, hidden=(4,), fast=fast).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    z = torch.randn(16, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    jac = torch.autograd.functional.jacobian(lambda v: model(v.reshape(1, *shape))[0].reshape(-1), z)
    expected = torch.linalg.slogdet(jac)[1]
    assert abs(model(z.reshape(1, *shape))[1].item() - expected.item()) < 1e-12


def test_masked_checkpoints_load_into_the_site_list_flow_unchanged():
    torch.manual_seed(5)
    masked = phi4_flow((4, 4), n_layers=4, hidden=(4,), fast=False).double()
    fast = phi4_flow((4, 4), n_layers=4, hidden=(4,)).double()
    state = masked.state_dict()
    assert list(state) == list(fast.state_dict())
    assert all(state[k].shape == v.shape for k, v in fast.state_dict().items())
    fast.load_state_dict(state)
    z = torch.randn(6, 4, 4, dtype=torch.float64)
    assert _close(fast(z)[0], masked(z)[0]) and _close(fast(z)[1], masked(z)[1])


def test_a_loaded_mask_rebuilds_the_site_tables():
    torch.manual_seed(6)
    even, odd = checkerboard_masks((4, 4))
    net = conv_net(2, 1, 2, [4]).double()
    layer = AffineCoupling(even.double(), net)
    assert layer.parity == 0
    layer.load_state_dict({**layer.state_dict(), "frozen": odd.double()})
    assert layer.parity == 1
    x = torch.randn(2, 4, 4, dtype=torch.float64)
    y, ld = layer(x)
    y_ref, ld_ref = AffineCoupling(odd.double(), net, fast=False)(x)
    assert _close(y, y_ref) and _close(ld, ld_ref)


def test_a_flow_with_a_non_checkerboard_layer_runs_layer_by_layer():
    model = _random_flow((4, 4))
    torch.manual_seed(8)
    z = torch.randn(3, 4, 4, dtype=torch.float64)
    odd_one = AffineCoupling((torch.rand(4, 4) < 0.5).double(), conv_net(2, 1, 2, [4]).double())
    model.layers.append(odd_one)
    assert model._parities() is None
    x, ld = model(z)
    x_ref, ld_ref = z, torch.zeros(3, dtype=torch.float64)
    for layer in model.layers:
        x_ref, step = layer(x_ref)
        ld_ref = ld_ref + step
    assert _close(x, x_ref) and _close(ld, ld_ref)
    assert (model.reverse(x)[0] - z).abs().max() < 1e-12


def test_site_list_path_refusals_and_first_derivatives_only():
    even, _ = checkerboard_masks((4, 4))
    with pytest.raises(ValueError, match="fast = True, but the network"):
        AffineCoupling(even, torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1)), fast=True)
    with pytest.raises(ValueError, match="fast = True, but the mask is not 0/1"):
        AffineCoupling(0.5 * even, conv_net(2, 1, 2, [4]), fast=True)
    fast, masked = _twins((4, 4))
    z = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(masked(z)[1].sum(), z, create_graph=True)
    torch.autograd.grad(g.sum(), z)  # the masked formulation has second derivatives
    torch.autograd.grad(fast(z)[1].sum(), z)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(fast(z)[1].sum(), z, create_graph=True)
