"""Conjugate gradients for batched hermitian positive-definite systems.

Vectors are ``[B, ...]`` tensors (one system per chain); inner products and
convergence are per chain. Stopping rule: relative residual ``|b - A x| / |b| <= tol``
for every chain (recursively updated residual, checked against the true residual at
the end). A solve that does not reach ``tol`` within ``maxiter`` iterations raises
``SolverError`` with the residual reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from ..errors import LqcdmlError

__all__ = ["SolverError", "SolveInfo", "IterationCount", "count_iterations", "cg", "multishift_cg", "inner", "norm2"]

LinearOperator = Callable[[torch.Tensor], torch.Tensor]


class SolverError(LqcdmlError, RuntimeError):
    """A linear solve that did not converge; ``residual`` is the relative residual reached."""

    exit_code = 3

    def __init__(self, message: str, residual: float, iterations: int):
        super().__init__(message)
        self.residual = residual
        self.iterations = iterations


@dataclass(frozen=True)
class SolveInfo:
    iterations: int
    residual: torch.Tensor  # [B] (or [n_shift, B]) true relative residuals


@dataclass
class IterationCount:
    """Krylov iterations (operator applications of the iteration) of the solves run
    inside one ``count_iterations`` block."""

    total: int = 0


_ACTIVE: ContextVar[tuple[IterationCount, ...]] = ContextVar("lqcdml_iteration_counts", default=())


@contextmanager
def count_iterations() -> Iterator[IterationCount]:
    """Count the CG iterations of every solve in the block (blocks nest; each counts its own).

    A measurement of cost only: no solver result depends on it. A multi-shift solve
    counts its shared iterations once, plus those of any per-shift refinement.
    """
    counter = IterationCount()
    token = _ACTIVE.set(_ACTIVE.get() + (counter,))
    try:
        yield counter
    finally:
        _ACTIVE.reset(token)


def _count(n: int) -> None:
    for counter in _ACTIVE.get():
        counter.total += int(n)


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``<a, b> = sum conj(a) b`` per chain, ``[B]``."""
    return (a.conj() * b).reshape(a.shape[0], -1).sum(dim=1)


def norm2(a: torch.Tensor) -> torch.Tensor:
    """``|a|^2`` per chain (real), ``[B]``."""
    flat = torch.view_as_real(a) if a.is_complex() else a
    return flat.square().reshape(a.shape[0], -1).sum(dim=1)


def _bcast(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.reshape(s.shape + (1,) * (like.ndim - s.ndim))


def _require_converged(name: str, residuals: torch.Tensor, tol: float, it: int, maxiter: int) -> None:
    """Raise ``SolverError`` unless every true relative residual is within ``10 tol``."""
    if not torch.all(residuals <= 10 * tol):
        worst = float(residuals.max())
        raise SolverError(
            f"{name} did not converge: relative residual {worst:.3e} after {it} "
            f"iterations (tol {tol:g}, maxiter {maxiter})",
            worst,
            it,
        )


def cg(
    apply_a: LinearOperator,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    tol: float = 1e-10,
    maxiter: int = 10_000,
    require_convergence: bool = True,
) -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``A x = b`` for hermitian positive-definite ``A``.

    ``require_convergence = False`` makes a truncated solve: the iterate after at most
    ``maxiter`` iterations, whatever its residual (reported in the info), never an error.
    """
    b_norm = norm2(b).sqrt()
    b_norm = torch.where(b_norm > 0, b_norm, torch.ones_like(b_norm))
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply_a(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = norm2(r)
    it = 0
    while it < maxiter:
        if torch.all(rr.sqrt() <= tol * b_norm):
            break
        ap = apply_a(p)
        pap = inner(p, ap).real
        active = rr.sqrt() > tol * b_norm
        alpha = torch.where(active, rr / torch.where(pap != 0, pap, torch.ones_like(pap)), torch.zeros_like(rr))
        x = x + _bcast(alpha, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * ap
        rr_new = norm2(r)
        beta = torch.where(active, rr_new / torch.where(rr > 0, rr, torch.ones_like(rr)), torch.zeros_like(rr))
        p = r + _bcast(beta, p).to(p.dtype) * p
        rr = rr_new
        it += 1
    _count(it)
    true_res = norm2(b - apply_a(x)).sqrt() / b_norm
    if require_convergence:
        _require_converged("CG", true_res, tol, it, maxiter)
    return x, SolveInfo(it, true_res)


def multishift_cg(
    apply_a: LinearOperator,
    b: torch.Tensor,
    shifts: Sequence[float],
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``(A + s_k) x_k = b`` for all shifts ``s_k >= 0`` at the cost of one CG.

    Returns ``[n_shift, B, ...]``. The Krylov space of the smallest shift drives the
    iteration (Jegerlehner's recursion, hep-lat/9612014); each shifted residual is
    ``zeta_k r``. Every returned solution meets ``tol`` in its true residual: a shift
    whose recurrence drifted is refined by plain CG from its iterate (``iterations``
    then counts those steps too).
    """
    shifts_t = torch.as_tensor(list(shifts), dtype=torch.float64)
    if shifts_t.numel() == 0:
        raise ValueError("multishift_cg: shifts is empty")
    if torch.any(shifts_t < 0):
        raise ValueError(f"multishift_cg: shifts {list(shifts)}; allowed: all >= 0")
    s0 = float(shifts_t.min())
    sig = (shifts_t - s0).to(b.device)  # relative shifts, >= 0
    n = sig.numel()
    nb = b.shape[0]

    def base(v):
        return apply_a(v) + s0 * v if s0 else apply_a(v)

    b_norm = norm2(b).sqrt()
    b_norm = torch.where(b_norm > 0, b_norm, torch.ones_like(b_norm))
    real = b.real.dtype
    x = torch.zeros((n, *b.shape), dtype=b.dtype, device=b.device)
    r = b.clone()
    p = b.unsqueeze(0).repeat((n,) + (1,) * b.ndim)
    zeta_old = torch.ones(n, nb, dtype=real, device=b.device)
    zeta = torch.ones(n, nb, dtype=real, device=b.device)
    alpha_old = torch.ones(nb, dtype=real, device=b.device)
    beta_old = torch.zeros(nb, dtype=real, device=b.device)
    p_base = b.clone()  # search direction of the smallest-shift system
    rr = norm2(r)
    it = 0
    sig_b = sig[:, None].to(real)
    while it < maxiter:
        done = zeta.abs() * rr.sqrt()[None] / b_norm[None] <= tol
        if torch.all(done):
            break
        ap = base(p_base)
        pap = inner(p_base, ap).real
        alpha = rr / pap
        denom = alpha[None] * beta_old[None] * (zeta_old - zeta) + zeta_old * alpha_old[None] * (
            1 + sig_b * alpha[None]
        )
        zeta_new = zeta * zeta_old * alpha_old[None] / denom
        # converged shifts stop (their zeta may underflow to 0: avoid 0/0)
        ratio = torch.where(done | (zeta == 0), torch.zeros_like(zeta), zeta_new / torch.where(zeta == 0, 1.0, zeta))
        zeta_new = torch.where(done, zeta, zeta_new)
        alpha_k = alpha[None] * ratio
        x = x + _bcast(alpha_k, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * ap
        rr_new = norm2(r)
        beta = rr_new / rr
        p_base = r + _bcast(beta, p_base).to(p_base.dtype) * p_base
        beta_k = beta[None] * ratio**2
        p_new = _bcast(zeta_new, p).to(p.dtype) * r.unsqueeze(0) + _bcast(beta_k, p).to(p.dtype) * p
        p = torch.where(_bcast(done, p), p, p_new)
        zeta_old, zeta = torch.where(done, zeta_old, zeta), zeta_new
        alpha_old, beta_old = alpha, beta
        rr = rr_new
        it += 1
    _count(it)
    # The shifted residuals zeta_k r are recurrences that drift from the true ones (by
    # about eps * cond); a shift whose true residual misses tol is finished by plain CG
    # on its own system, starting from its multi-shift iterate (a few iterations).
    per_shift = []
    for k in range(n):
        shift = float(shifts_t[k])

        def shifted(v, shift=shift):
            return apply_a(v) + shift * v if shift else apply_a(v)

        res_k = norm2(b - shifted(x[k])).sqrt() / b_norm
        while not torch.all(res_k <= tol) and it < maxiter:  # restarts until the true residual meets tol
            try:
                xk, info = cg(shifted, b, x0=x[k], tol=tol, maxiter=maxiter - it)
            except SolverError as exc:
                it += exc.iterations
                break
            x[k] = xk
            it += max(info.iterations, 1)
            res_k = info.residual
        per_shift.append(res_k)
    residuals = torch.stack(per_shift)
    _require_converged("multi-shift CG", residuals, tol, it, maxiter)
    return x, SolveInfo(it, residuals)
