import pytest
import torch

from lqcdml.lattice import SU, U1, make_generators, randn, volume
from lqcdml.theories import Phi4Action, WilsonGaugeAction, autograd_force, plaquette_field

from ..conftest import GAUGE_CASES
from ..helpers import random_gauge_transform, random_links


@pytest.mark.parametrize("group,shape", GAUGE_CASES)
def test_wilson_action_is_gauge_invariant(group, shape):
    links = random_links(group, shape)
    action = WilsonGaugeAction(2.1, group)
    density = action.action(links) / volume(shape[1:])
    density_t = action.action(random_gauge_transform(links, group)) / volume(shape[1:])
    assert (density - density_t).abs().max() < 1e-12


@pytest.mark.parametrize("group,shape", GAUGE_CASES)
def test_wilson_force_is_gauge_covariant(group, shape):
    """F(U^Omega) = Omega F(U) Omega^dag (U(1): F invariant)."""
    from lqcdml.lattice import gauge_transform

    links = random_links(group, shape, seed=3)
    n_int = group.internal_ndim
    omega = group.haar(make_generators(5, links.shape[0]), links.shape[2 : links.ndim - n_int])
    action = WilsonGaugeAction(1.7, group)
    f_t = action.force(gauge_transform(links, omega, group))
    f = action.force(links)
    if isinstance(group, SU):
        expected = torch.stack([omega @ f[:, mu] @ omega.mH for mu in range(shape[0])], dim=1)
    else:
        expected = f
    assert (f_t - expected).abs().max() < 1e-12


@pytest.mark.parametrize("group,shape", GAUGE_CASES)
def test_wilson_force_equals_autograd_lie_gradient(group, shape):
    links = random_links(group, shape, seed=1)
    action = WilsonGaugeAction(2.3, group)
    assert (action.force(links) - autograd_force(action, links)).abs().max() < 1e-10


@pytest.mark.parametrize("convention", ["flow", "standard"])
@pytest.mark.parametrize("shape", [(8,), (6, 5), (4, 3, 5)])
def test_phi4_force_equals_autograd_gradient(convention, shape):
    phi = 1.3 * randn(make_generators(2, 3), shape)
    action = Phi4Action(m2=-1.2, lam=0.7, convention=convention)
    assert (action.force(phi) - autograd_force(action, phi)).abs().max() < 1e-10


def test_phi4_conventions_are_the_stated_formulas():
    phi = randn(make_generators(4, 2), (5, 6))
    m2, lam = 0.8, 1.1
    grad2 = sum((torch.roll(phi, -1, dims=mu) - phi).square() for mu in (1, 2))
    flow = (grad2 + m2 * phi**2 + lam * phi**4).sum(dim=(1, 2))
    standard = (0.5 * grad2 + 0.5 * m2 * phi**2 + lam / 24 * phi**4).sum(dim=(1, 2))
    assert torch.allclose(Phi4Action(m2, lam, "flow").action(phi), flow, rtol=1e-13)
    assert torch.allclose(Phi4Action(m2, lam, "standard").action(phi), standard, rtol=1e-13)


def test_phi4_rejects_bad_parameters():
    with pytest.raises(ValueError, match="convention = 'lattice'"):
        Phi4Action(1.0, 1.0, "lattice")
    with pytest.raises(ValueError, match="lam = -1"):
        Phi4Action(1.0, -1.0)


def test_u1_action_is_the_cosine_formula():
    links = random_links(U1(), (2, 3, 4), seed=8)
    theta = links[:, 0] + torch.roll(links[:, 1], -1, dims=1) - torch.roll(links[:, 0], -1, dims=2) - links[:, 1]
    expected = 1.4 * (1 - torch.cos(theta)).sum(dim=(1, 2))
    assert torch.allclose(WilsonGaugeAction(1.4, U1()).action(links), expected, rtol=1e-13)


def test_su3_plaquette_of_identity_and_action_zero():
    g = SU(3)
    links = g.identity((1, 4, 2, 2, 2, 2))
    assert torch.allclose(WilsonGaugeAction(6.0, g).action(links), torch.zeros(1, dtype=torch.float64))
    assert plaquette_field(links, g).shape == (1, 6, 2, 2, 2, 2, 3, 3)


def test_links_of_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        WilsonGaugeAction(1.0, SU(2)).action(torch.zeros(1, 4, 2, 2, 2, dtype=torch.complex128))
