import pytest
import torch

from lqcdml.lattice import checkerboard, coordinates, parity, shift, volume


def test_shift_moves_by_one_site_and_inverts():
    f = torch.arange(2 * 4 * 5, dtype=torch.float64).reshape(2, 4, 5)
    g = shift(f, 1, 1)
    assert g[0, 2, 4] == f[0, 2, 0]  # periodic wrap
    assert g[1, 3, 1] == f[1, 3, 2]
    assert torch.equal(shift(shift(f, 0, 3), 0, -3), f)
    assert torch.equal(shift(f, 1, 5), f)


def test_antiperiodic_shift_flips_sign_across_the_boundary_only():
    f = torch.ones(1, 4, 3, dtype=torch.complex128)
    g = shift(f, 0, 1, phase=-1)
    assert torch.equal(g[0, :3], f[0, :3]) and torch.equal(g[0, 3], -f[0, 3])
    h = shift(f, 0, -1, phase=-1)
    assert torch.equal(h[0, 0], -f[0, 0]) and torch.equal(h[0, 1:], f[0, 1:])
    # going once around the lattice picks up the phase exactly once
    assert torch.equal(shift(f, 0, 4, phase=-1), -f)


def test_twisted_shift_uses_conjugate_phase_backwards():
    phase = complex(0.6, 0.8)
    f = torch.randn(1, 3, 2, dtype=torch.complex128)
    back = shift(shift(f, 0, 1, phase=phase), 0, -1, phase=phase)
    assert torch.allclose(back, f, atol=1e-15)


def test_complex_phase_on_real_field_is_refused():
    with pytest.raises(ValueError, match="complex boundary phase"):
        shift(torch.ones(1, 3), 0, 1, phase=1j)


def test_checkerboard_masks_partition_the_lattice_in_any_dimension():
    for shape in [(4,), (4, 6), (2, 4, 2), (4, 2, 2, 6)]:
        even, odd = checkerboard(shape, 0), checkerboard(shape, 1)
        assert int(even.sum()) == int(odd.sum()) == volume(shape) // 2
        assert not torch.any(even & odd)
        for mu in range(len(shape)):  # every neighbour of an even site is odd
            assert torch.equal(torch.roll(even, 1, dims=mu), odd)


def test_checkerboard_rejects_odd_extent_with_the_axis_named():
    with pytest.raises(ValueError, match="L_1 = 5 is odd"):
        checkerboard((4, 5))


def test_coordinates_and_parity():
    x = coordinates((2, 3))
    assert x[0][1, 2] == 1 and x[1][1, 2] == 2
    assert parity((2, 3))[1, 2] == 1
