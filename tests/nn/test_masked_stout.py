"""Masked stout layers (``nn.masked_stout``): inverse, group membership, gauge covariance with an
invariant log-Jacobian, the log-Jacobian against the full Jacobian of all links by autograd
(U(1) in angles, SU(2) and SU(3) in left-invariant coordinates), and the masks' coverage."""

from __future__ import annotations

import pytest
import torch

from lqcdml.lattice import SU, U1, make_generators
from lqcdml.nn.masked_stout import MaskedStout, masked_stout_flow, masked_stout_mask, masked_stout_stack
from lqcdml.nn.transform import Compose, PullbackForce
from lqcdml.samplers import PulledBackAction
from lqcdml.theories import WilsonGaugeAction

from ..helpers import assert_log_det_is_the_full_jacobians, assert_masked_steps_invert_and_are_covariant

CASES = [(U1(), (4, 4)), (SU(2), (4, 4)), (SU(3), (4, 2)), (U1(), (2, 2, 2, 2)), (SU(2), (2, 2, 2, 2))]


def _random_stack(group, shape, seed: int) -> list[MaskedStout]:
    """A full cycle of layers with step sizes spread over ``(-rho_max, rho_max)``, some near it."""
    torch.manual_seed(seed)
    layers = masked_stout_stack(shape, group, 2 * len(shape))
    for layer in layers:
        with torch.no_grad():
            layer.a.fill_(1.5 * float(torch.randn(())))
    return layers


@pytest.mark.parametrize(("group", "shape"), CASES, ids=lambda c: str(c))
def test_layers_invert_stay_in_the_group_and_are_gauge_covariant(group, shape):
    assert_masked_steps_invert_and_are_covariant(_random_stack(group, shape, 3), group, shape)


@pytest.mark.parametrize(("group", "shape"), [(U1(), (4, 4)), (SU(2), (2, 2)), (SU(3), (2, 2))], ids=str)
def test_log_det_is_the_determinant_of_the_full_jacobian(group, shape):
    assert_log_det_is_the_full_jacobians(_random_stack(group, shape, 5), group, shape)


def test_a_cycle_of_masks_moves_every_link_exactly_once_and_no_staple_holds_a_moved_link():
    for shape in [(4, 4), (2, 4, 2, 2)]:
        d = len(shape)
        count = torch.zeros(d, *shape, dtype=torch.long)
        for layer in masked_stout_stack(shape, U1(), 2 * d):
            mask = layer.mask
            count[layer.mu] += mask.long()
            for nu in range(d):  # the mu-links at x +- nu (in the staples) are never moved
                if nu != layer.mu:
                    assert not (mask & torch.roll(mask, 1, nu)).any()
        assert (count == 1).all()


def test_bad_extents_and_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="L_1 = 3"):
        masked_stout_mask((4, 3), 0, 0)
    with pytest.raises(ValueError, match="parity = 2"):
        masked_stout_mask((4, 4), 0, 2)
    with pytest.raises(ValueError, match="n_layers = 0"):
        masked_stout_stack((4, 4), U1(), 0)


@pytest.mark.parametrize("shape", [(4, 4), (8, 4), (2, 4, 2, 2)], ids=str)
def test_the_written_out_u1_pullback_force_is_autograds(shape):
    """``U1MaskedStoutFlow.pullback_force`` (layers' ``u1_vjp`` in reverse) against the autograd
    vector-Jacobian product of the same layers, and against a central difference of the action."""
    group = U1()
    flow = masked_stout_flow(shape, group, 3 * len(shape))
    assert isinstance(flow, PullbackForce) and not isinstance(masked_stout_flow(shape, SU(2), 2), PullbackForce)
    torch.manual_seed(4)
    for layer in flow.layers:
        with torch.no_grad():
            layer.a.fill_(float(torch.randn(())))
    target = WilsonGaugeAction(2.0, group)
    x = group.haar(make_generators(6, 3), (len(shape), *shape))
    fast = PulledBackAction(target, flow).force(x)
    slow = PulledBackAction(target, Compose(list(flow.layers))).force(x)
    assert (fast - slow).abs().max() < 1e-12 * slow.abs().max()
    direction = torch.randn(x.shape, dtype=torch.float64)
    action = PulledBackAction(target, flow).action
    eps = 1e-5
    numeric = (action(x + eps * direction) - action(x - eps * direction)) / (2 * eps)
    assert torch.allclose((fast * direction).flatten(1).sum(1), numeric, rtol=1e-7, atol=1e-7)
