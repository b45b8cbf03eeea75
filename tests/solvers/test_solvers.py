import numpy as np
import pytest
import torch

from lqcdml.solvers import (
    RemezError,
    SolverError,
    cg,
    multishift_cg,
    rational_power,
    rational_ratio,
    remez_power,
    zolotarev_inverse_sqrt,
)


def _spd(n=30, batch=2, cond=50.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(batch, n, n, dtype=torch.complex128, generator=g))
    evals = torch.from_numpy(np.geomspace(1.0, cond, n)).to(torch.complex128)
    a = q @ torch.diag_embed(evals.expand(batch, n)) @ q.mH
    b = torch.randn(batch, n, dtype=torch.complex128, generator=g)
    return a, b, evals.real


def _op(a):
    return lambda v: (a @ v.unsqueeze(-1)).squeeze(-1)


def test_cg_agrees_with_dense_solve():
    a, b, _ = _spd()
    x, info = cg(_op(a), b, tol=1e-12)
    assert (x - torch.linalg.solve(a, b)).abs().max() < 1e-10
    assert info.residual.max() < 1e-11 and info.iterations <= 60


def test_multishift_cg_agrees_with_dense_solves():
    a, b, _ = _spd()
    shifts = [0.0, 0.05, 0.7, 3.0, 100.0]
    xs, info = multishift_cg(_op(a), b, shifts, tol=1e-12)
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    for k, s in enumerate(shifts):
        assert (xs[k] - torch.linalg.solve(a + s * eye, b)).abs().max() < 1e-9, s
    assert info.residual.max() < 1e-11


def test_non_converging_solves_raise_with_the_residual():
    a, b, _ = _spd(cond=1e4)
    with pytest.raises(SolverError, match="CG did not converge: relative residual") as err:
        cg(_op(a), b, tol=1e-12, maxiter=5)
    assert err.value.residual > 1e-6 and err.value.iterations == 5
    with pytest.raises(SolverError, match="multi-shift CG did not converge"):
        multishift_cg(_op(a), b, [0.0, 1.0], tol=1e-12, maxiter=5)
    with pytest.raises(ValueError, match="allowed: all >= 0"):
        multishift_cg(_op(a), b, [-1.0])


@pytest.mark.parametrize("lo,hi,n_poles", [(0.09, 16.09, 12), (1e-3, 10.0, 16)])
def test_zolotarev_meets_its_stated_error_on_operators(lo, hi, n_poles):
    r = zolotarev_inverse_sqrt(lo, hi, n_poles)
    assert r.max_relative_error < 1e-8
    grid = np.geomspace(lo, hi, 5001)
    assert np.max(np.abs(r.relative_error(grid))) <= r.max_relative_error * (1 + 1e-6)
    # applied to a matrix with spectrum in [lo, hi] by multi-shift CG
    a, b, evals = _spd(n=24, cond=hi / lo)
    a = a * lo
    xs, _ = multishift_cg(_op(a), b, r.shifts, tol=1e-11)
    approx = r.c0 * b + sum(c * x for c, x in zip(r.residues, xs))
    w, v = torch.linalg.eigh(a)
    exact = (v * w.pow(-0.5).to(v.dtype).unsqueeze(-2)) @ v.mH @ b.unsqueeze(-1)
    rel = (approx - exact.squeeze(-1)).norm(dim=-1) / exact.squeeze(-1).norm(dim=-1)
    assert rel.max() < 10 * r.max_relative_error + 1e-11


def test_zolotarev_error_falls_exponentially_with_poles():
    errs = [zolotarev_inverse_sqrt(0.01, 10.0, n).max_relative_error for n in (4, 6, 8)]
    assert errs[0] > 30 * errs[1] > 900 * errs[2]


def _dense_power(a, b, power):
    w, v = torch.linalg.eigh(a)
    return ((v * w.pow(power).to(v.dtype).unsqueeze(-2)) @ v.mH @ b.unsqueeze(-1)).squeeze(-1)


def test_remez_reproduces_zolotarevs_optimal_inverse_square_root():
    """The minimax approximation is unique: Remez for x^-1/2 must find Zolotarev's."""
    for lo, hi, n in [(0.09, 16.09, 8), (1e-3, 10.0, 12)]:
        zolo, remez = zolotarev_inverse_sqrt(lo, hi, n), remez_power(-0.5, lo, hi, n)
        assert abs(remez.max_relative_error / zolo.max_relative_error - 1) < 1e-2
        assert np.allclose(sorted(remez.shifts), sorted(zolo.shifts), rtol=1e-3)


@pytest.mark.parametrize("power", [-0.75, -0.25, 0.125, 0.375])
def test_remez_equioscillates_and_meets_its_error_on_operators(power):
    lo, hi, n = 0.0025, 16.0025, 12
    r = remez_power(power, lo, hi, n)
    assert 1e-12 < r.max_relative_error < 1e-7
    assert all(b > 0 for b in r.shifts)
    # minimax: 2n + 2 alternating extrema of equal height
    grid = np.geomspace(lo, hi, 300007)
    err = r.relative_error(grid)
    # near its zeros the error is rounding noise (~1e-16 of the terms) and may flip sign
    # more than once: the alternation is read where it is above 1e-3 of its maximum
    err = err[np.abs(err) > 1e-3 * r.max_relative_error]
    assert np.count_nonzero(np.diff(np.sign(err))) == 2 * n + 1
    bounds = np.concatenate([[0], np.nonzero(np.diff(np.sign(err)))[0] + 1, [err.size]])
    heights = [np.abs(err[a:b]).max() for a, b in zip(bounds[:-1], bounds[1:])]
    assert max(heights) <= r.max_relative_error * (1 + 1e-5)
    assert min(heights) > 0.99 * max(heights)
    # applied to a matrix with spectrum in [lo, hi] by multi-shift CG
    a, b, _ = _spd(n=24, cond=hi / lo)
    a = a * lo
    xs, _ = multishift_cg(_op(a), b, r.shifts, tol=1e-11)
    approx = r.c0 * b + sum(c * x for c, x in zip(r.residues, xs))
    exact = _dense_power(a, b, power)
    rel = (approx - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert rel.max() < r.max_relative_error + 1e-9


@pytest.mark.parametrize("power", [-0.25, 0.125, -0.5])
def test_rational_power_takes_the_fewest_poles_for_the_tolerance(power):
    r = rational_power(power, 0.01, 50.0, 1e-10)
    n = len(r.shifts)
    assert r.max_relative_error <= 1e-10
    fewer = zolotarev_inverse_sqrt(0.01, 50.0, n - 1) if power == -0.5 else remez_power(power, 0.01, 50.0, n - 1)
    assert fewer.max_relative_error > 1e-10


def test_rational_approximations_refuse_bad_input():
    with pytest.raises(ValueError, match="power = 1.0; allowed: 0 < |power| < 1"):
        remez_power(1.0, 0.1, 1.0, 4)
    with pytest.raises(ValueError, match=r"range \[1.0, 0.1\]; allowed: 0 < lo < hi"):
        remez_power(0.5, 1.0, 0.1, 4)
    with pytest.raises(ValueError, match="tol = 1e-16; allowed: 1e-14 <= tol < 1"):
        rational_power(0.25, 0.1, 1.0, 1e-16)
    with pytest.raises(RemezError, match="below what float64 can resolve"):
        remez_power(0.25, 0.1, 1.0, 30)


@pytest.mark.parametrize("exponent", [0.25, 0.5, 0.75, -0.125, -0.375, 1.0])
def test_rational_ratio_meets_its_error_on_operators(exponent):
    """((x + d) / x)^a on the spectrum of a staggered M at m = 0.02 with m_h = 0.3."""
    lo, hi, d = 0.02**2, 0.02**2 + 16, 0.3**2 - 0.02**2
    r = rational_ratio(exponent, d, lo, hi, 1e-12)
    assert r.max_relative_error <= 1e-12 and all(b >= 0 for b in r.shifts)
    grid = np.geomspace(lo, hi, 100003)
    exact = ((grid + d) / grid) ** exponent
    assert np.max(np.abs(r(grid) / exact - 1)) <= r.max_relative_error * (1 + 1e-6) + 1e-15
    # far fewer poles than x^a over the same range: the ratio varies only below ~d
    if exponent != 1.0:
        assert len(r.shifts) < len(rational_power(-exponent, lo, hi, 1e-12).shifts)
    else:
        assert (r.c0, r.residues, r.shifts) == (1.0, (d,), (0.0,))
    a, b, _ = _spd(n=24, cond=hi / lo)
    a = a * lo
    xs, _ = multishift_cg(_op(a), b, r.shifts, tol=1e-12)
    approx = r.c0 * b + sum(c * x for c, x in zip(r.residues, xs))
    w, v = torch.linalg.eigh(a)
    f = ((w + d) / w) ** exponent
    dense = ((v * f.to(v.dtype).unsqueeze(-2)) @ v.mH @ b.unsqueeze(-1)).squeeze(-1)
    assert ((approx - dense).norm(dim=-1) / dense.norm(dim=-1)).max() < 1e-10


def test_rational_ratio_refuses_bad_input():
    with pytest.raises(ValueError, match="exponent = 1.5; allowed: 0 < |exponent| <= 1"):
        rational_ratio(1.5, 0.1, 0.1, 1.0)
    with pytest.raises(ValueError, match="shift = 0.0; allowed: > 0"):
        rational_ratio(0.5, 0.0, 0.1, 1.0)
    with pytest.raises(ValueError, match=r"range \[1.0, 0.1\]; allowed: 0 < lo < hi"):
        rational_ratio(0.5, 0.1, 1.0, 0.1)


@pytest.mark.parametrize("cond,tol", [(1e4, 1e-12), (1e5, 1e-11), (1e6, 1e-10)])
def test_multishift_cg_meets_the_tolerance_in_every_true_residual(cond, tol):
    """The shifted recurrences drift from the true residuals by about eps * cond; every
    returned solution must still meet ``tol`` in its true residual (drifted shifts are
    finished by plain CG), on systems of condition 1e4 to 1e6."""
    a, b, _ = _spd(n=160, cond=cond, seed=3)
    shifts = [0.0, 1e-3, 0.1, 1.0, 30.0, 1e3]
    xs, info = multishift_cg(_op(a), b, shifts, tol=tol)
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    for k, s in enumerate(shifts):
        shifted = a + s * eye
        res = (b - (shifted @ xs[k].unsqueeze(-1)).squeeze(-1)).norm(dim=-1) / b.norm(dim=-1)
        assert res.max() <= tol, (s, float(res.max()))
        assert float(info.residual[k].max()) <= tol
