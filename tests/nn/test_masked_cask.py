"""Masked CASK layers (``nn.masked_cask``): attention weights from fixed links only, the inverse,
group membership, gauge covariance with an invariant log-Jacobian, the log-Jacobian against the
full Jacobian of all links by autograd, the identity at the start and the masked stout step at
zero inverse temperature."""

from __future__ import annotations

import pytest
import torch

from lqcdml.lattice import SU, U1, make_generators
from lqcdml.lattice.gauge_transform import gauge_transform
from lqcdml.nn.masked_cask import MaskedCASK, masked_cask_flow, masked_cask_stack
from lqcdml.nn.masked_stout import masked_stout_stack

from ..helpers import assert_log_det_is_the_full_jacobians, assert_masked_steps_invert_and_are_covariant

CASES = [(U1(), (4, 4)), (SU(2), (4, 4)), (SU(3), (4, 2)), (U1(), (2, 2, 2, 2)), (SU(2), (2, 2, 2, 2))]


def _random_stack(group, shape, seed: int, heads: int = 2) -> list[MaskedCASK]:
    """A full cycle of layers with output weights near their bound and inverse temperatures of
    either sign up to ~4 (attention far from uniform)."""
    torch.manual_seed(seed)
    layers = masked_cask_stack(shape, group, 2 * len(shape), heads)
    for layer in layers:
        with torch.no_grad():
            layer.c.copy_(2 * torch.randn(layer.c.shape, dtype=torch.float64))
            layer.beta.copy_(2 * torch.randn(layer.beta.shape, dtype=torch.float64))
    return layers


def _staple_weights(layer: MaskedCASK, x: torch.Tensor) -> torch.Tensor:
    """The attention weights ``a_k`` of ``layer`` at links ``x`` on the links it moves, ``[n, B,
    moved links]``."""
    return layer.weights(x)[:, :, layer.mask]


@pytest.mark.parametrize(("group", "shape"), CASES, ids=lambda c: str(c))
def test_layers_invert_stay_in_the_group_and_are_gauge_covariant(group, shape):
    assert_masked_steps_invert_and_are_covariant(_random_stack(group, shape, 3), group, shape)


@pytest.mark.parametrize(("group", "shape"), CASES, ids=lambda c: str(c))
def test_attention_weights_are_gauge_invariant_bounded_and_blind_to_the_moved_links(group, shape):
    """The premise of the exact Jacobian: ``a_k`` does not change when the links the layer moves
    change (nor under a gauge transformation), and ``sum_k |a_k| < 1``."""
    x = group.haar(make_generators(4, 2), (len(shape), *shape))
    other = group.haar(make_generators(5, 2), (len(shape), *shape))
    omega = group.haar(make_generators(6, 2), shape)
    for layer in _random_stack(group, shape, 7):
        with torch.no_grad():
            a = _staple_weights(layer, x)
            scrambled = layer._replace(x, other[:, layer.mu])  # every moved link replaced
            assert (_staple_weights(layer, scrambled) - a).abs().max() < 1e-14
            assert (_staple_weights(layer, gauge_transform(x, omega, group)) - a).abs().max() < 1e-12
            assert float(a.abs().sum(0).max()) < float(layer.w.abs().sum()) + 1e-15 < 1
            assert float(a.std()) > 1e-3  # the attention depends on the field
        x = layer(x)[0].detach()


@pytest.mark.parametrize(("group", "shape"), [(U1(), (4, 4)), (SU(2), (2, 2)), (SU(3), (2, 2))], ids=str)
def test_log_det_is_the_determinant_of_the_full_jacobian(group, shape):
    assert_log_det_is_the_full_jacobians(_random_stack(group, shape, 5), group, shape)


@pytest.mark.parametrize(("group", "shape"), [(U1(), (4, 4)), (SU(2), (2, 4, 2, 2))], ids=str)
def test_a_fresh_flow_is_the_identity_and_zero_temperature_is_the_masked_stout_step(group, shape):
    x = group.haar(make_generators(8, 2), (len(shape), *shape))
    flow = masked_cask_flow(shape, group, 2 * len(shape), heads=3)
    with torch.no_grad():
        y, log_det = flow(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros_like(log_det))
    torch.manual_seed(9)
    for cask, stout in zip(
        masked_cask_stack(shape, group, 2 * len(shape), 3), masked_stout_stack(shape, group, 2 * len(shape))
    ):
        with torch.no_grad():
            cask.c.copy_(torch.randn(cask.c.shape, dtype=torch.float64))
            cask.beta.zero_()
            stout.a.copy_(torch.atanh(cask.w.sum()))  # rho = rho_max tanh(a) = sum w / n
            (y_c, ld_c), (y_s, ld_s) = cask(x), stout(x)
        assert (y_c - y_s).abs().max() < 1e-13 and (ld_c - ld_s).abs().max() < 1e-12
        x = y_s


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="heads = 0"):
        MaskedCASK((4, 4), U1(), 0, 0, heads=0)
    with pytest.raises(ValueError, match="L_1 = 3"):
        masked_cask_stack((4, 3), U1(), 2)
    with pytest.raises(ValueError, match="n_layers = 0"):
        masked_cask_stack((4, 4), SU(2), 0)
