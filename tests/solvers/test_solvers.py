import numpy as np
import pytest
import torch

from lqcdml.solvers import (
    SolverError,
    cg,
    chebyshev_power,
    multishift_cg,
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
    xs, _ = multishift_cg(_op(a), b, r.shifts, tol=1e-13)
    approx = r.c0 * b + sum(c * x for c, x in zip(r.residues, xs))
    w, v = torch.linalg.eigh(a)
    exact = (v * w.pow(-0.5).to(v.dtype).unsqueeze(-2)) @ v.mH @ b.unsqueeze(-1)
    rel = (approx - exact.squeeze(-1)).norm(dim=-1) / exact.squeeze(-1).norm(dim=-1)
    assert rel.max() < 10 * r.max_relative_error + 1e-11


def test_zolotarev_error_falls_exponentially_with_poles():
    errs = [zolotarev_inverse_sqrt(0.01, 10.0, n).max_relative_error for n in (4, 6, 8)]
    assert errs[0] > 30 * errs[1] > 900 * errs[2]


@pytest.mark.parametrize("power", [0.25, -0.5, 0.125])
def test_chebyshev_power_matches_eigendecomposition(power):
    a, b, _ = _spd(n=20, cond=100.0)
    a = 0.1 * a
    y = chebyshev_power(_op(a), b, power, 0.1, 10.0)
    w, v = torch.linalg.eigh(a)
    exact = ((v * w.pow(power).to(v.dtype).unsqueeze(-2)) @ v.mH @ b.unsqueeze(-1)).squeeze(-1)
    assert ((y - exact).norm(dim=-1) / exact.norm(dim=-1)).max() < 1e-9
