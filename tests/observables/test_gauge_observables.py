import math

import pytest
import torch

from lqcdml.lattice import SU, U1, abelian_flux_links, make_generators
from lqcdml.observables import (
    clover_field_strength,
    energy_density,
    plaquette,
    polyakov_loop,
    topological_charge,
    topological_charge_u1_2d,
    wilson_loop,
)

from ..conftest import GAUGE_CASES
from ..helpers import random_gauge_transform, random_links


def _all_observables(links, group):
    dim = links.shape[1]
    out = {
        "plaquette": plaquette(links, group),
        "polyakov": polyakov_loop(links, group),
        "wilson_1x1": wilson_loop(links, group, 1, 1),
        "wilson_2x1": wilson_loop(links, group, 2, 1),
        "wilson_1x3": wilson_loop(links, group, 1, 3),
        "energy": energy_density(links, group),
    }
    if dim == 2 and isinstance(group, U1):
        out["q_geometric"] = topological_charge_u1_2d(links)
    if dim == 4:
        out["q_clover"] = topological_charge(links, group) if isinstance(group, SU) else None
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize("group,shape", GAUGE_CASES)
def test_gauge_observables_are_gauge_invariant(group, shape):
    links = random_links(group, shape, seed=4)
    before = _all_observables(links, group)
    after = _all_observables(random_gauge_transform(links, group), group)
    for key in before:
        assert (before[key] - after[key]).abs().max() < 1e-12, key


def test_wilson_loop_1x1_is_the_temporal_plaquette():
    group = SU(3)
    links = random_links(group, (4, 3, 3, 3, 3))
    from lqcdml.theories import plaquette_field

    temporal = group.re_trace(plaquette_field(links, group)[:, :3]).mean(dim=(1, 2, 3, 4, 5))
    assert torch.allclose(wilson_loop(links, group, 1, 1), temporal, atol=1e-14)


@pytest.mark.parametrize("r,t", [(1, 1), (2, 3), (3, 2)])
def test_wilson_loops_of_constant_abelian_field_obey_the_area_law_exactly(r, t):
    """Flux n through the (0, 1) plane of a U(1) field: W = cos(2 pi n r t / (L0 L1)) there."""
    shape = (6, 5, 4)
    links = abelian_flux_links(shape, {(0, 1): 2}, U1())
    flux = 2 * math.pi * 2 / (6 * 5)
    expected = (math.cos(flux * r * t) + 1.0) / 2  # averaged over spatial directions 1 and 2
    assert abs(wilson_loop(links, U1(), r, t).item() - expected) < 1e-12


def test_polyakov_loop_of_a_center_twisted_field():
    """U_0 = z on one time slice: P = z, with z = exp(2 pi i / N) a centre element."""
    for group in (SU(2), SU(3)):
        links = group.identity((1, 4, 4, 2, 2, 2))
        z = complex(math.cos(2 * math.pi / group.n), math.sin(2 * math.pi / group.n))
        links[:, 0, 2] = links[:, 0, 2] * z
        p = polyakov_loop(links, group)
        assert p.is_complex() and abs(p.item() - z) < 1e-14
        assert abs(plaquette(links, group).item() - 1) < 1e-14  # centre twist costs no action


def test_polyakov_loop_u1_is_the_mean_phase():
    links = torch.zeros(1, 2, 4, 3, dtype=torch.float64)
    links[0, 0, :, 1] = 0.25  # winding angle 1.0 along one spatial column
    expected = (2 + complex(math.cos(1.0), math.sin(1.0))) / 3
    assert abs(polyakov_loop(links, U1()).item() - expected) < 1e-14


def test_geometric_charge_counts_flux_quanta():
    for n in (-2, 0, 1, 3):
        links = abelian_flux_links((6, 8), {(0, 1): n}, U1())
        assert abs(topological_charge_u1_2d(links).item() - n) < 1e-12
    q = topological_charge_u1_2d(random_links(U1(), (2, 6, 6), n_chains=8))
    assert torch.allclose(q, torch.round(q), atol=1e-10)


@pytest.mark.parametrize(
    "group,fluxes,charge",
    [
        (SU(2), {(0, 1): [1, -1], (2, 3): [1, -1]}, 2),
        (SU(2), {(0, 1): [1, -1], (2, 3): [-1, 1]}, -2),
        (SU(3), {(0, 1): [1, -1, 0], (2, 3): [1, 0, -1]}, 1),
        (SU(3), {(0, 1): [2, -1, -1], (2, 3): [-1, 1, 0]}, -3),
        (SU(3), {(0, 2): [1, -1, 0], (1, 3): [1, 0, -1]}, -1),  # odd permutation of axes
    ],
)
def test_clover_charge_of_constant_abelian_fields(group, fluxes, charge):
    links = abelian_flux_links((8, 8, 8, 8), fluxes, group)
    assert abs(topological_charge(links, group).item() - charge) < 0.05


def test_clover_field_strength_of_constant_field():
    """U(1) flux n in plane (0,1): F_01 = sin(2 pi n / A) everywhere, other planes zero."""
    links = abelian_flux_links((6, 4, 2, 2), {(0, 1): 1}, U1())
    f = clover_field_strength(links, U1())[..., 0, 0].real
    assert torch.allclose(f[:, 0], torch.full_like(f[:, 0], math.sin(2 * math.pi / 24)), atol=1e-14)
    assert f[:, 1:].abs().max() < 1e-14
    assert abs(energy_density(links, U1()).item() - math.sin(2 * math.pi / 24) ** 2) < 1e-14


def test_field_strength_is_hermitian_and_traceless():
    group = SU(3)
    f = clover_field_strength(random_links(group, (4, 2, 2, 2, 2)), group)
    assert (f - f.mH).abs().max() < 1e-14
    assert torch.diagonal(f, dim1=-2, dim2=-1).sum(-1).abs().max() < 1e-14


def test_observables_refuse_wrong_dimension():
    with pytest.raises(ValueError, match="d = 3; allowed: 4"):
        topological_charge(random_links(SU(2), (3, 2, 2, 2)), SU(2))
    with pytest.raises(ValueError, match="d = 4; allowed: 2"):
        topological_charge_u1_2d(random_links(U1(), (4, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match="r = 0"):
        wilson_loop(random_links(U1(), (2, 4, 4)), U1(), 0, 1)
    assert make_generators(0, 1)
