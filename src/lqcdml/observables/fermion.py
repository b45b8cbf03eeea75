"""Fermionic observables: chiral condensate, tr D^-n by stochastic noise, pion correlators.

Operators are ``StaggeredOperator`` or ``WilsonOperator`` (anything with ``apply``,
``apply_dagger``, ``normal``); fermion fields have the operator's layout. Inverses are
``D^{-1} = (D^dag D)^{-1} D^dag`` by CG. Stochastic traces use noise with
``E[eta eta^dag] = 1``: ``Z2`` (real +-1) or ``U(1)`` (random phases).
"""

from __future__ import annotations

import math

import torch

from ..lattice import rand
from ..solvers import cg, inner

__all__ = [
    "fermion_shape",
    "noise_vectors",
    "apply_inverse",
    "trace_inverse_powers",
    "chiral_condensate",
    "pion_correlator",
    "dense_operator",
    "staggered_even_spectrum",
]

NOISES = ("z2", "u1")


def fermion_shape(op, links: torch.Tensor) -> tuple[int, ...]:
    """Per-chain fermion shape of ``op`` on ``links``: ``[L..., N]`` or ``[L..., 4, N]``."""
    lattice = tuple(links.shape[2 : 2 + links.shape[1]])
    n = links.shape[-1]
    return (*lattice, *op.spin_shape, n)


def noise_vectors(gens, shape, kind: str = "z2", dtype=torch.complex128) -> torch.Tensor:
    """One noise vector per chain, ``[B, *shape]``, ``E[eta eta^dag] = 1``."""
    if kind == "z2":
        return (2.0 * (rand(gens, shape) < 0.5).to(torch.float64) - 1.0).to(dtype)
    if kind == "u1":
        angle = 2 * math.pi * rand(gens, shape)  # on the generators' device
        return torch.polar(torch.ones_like(angle), angle).to(dtype)
    raise ValueError(f"noise = {kind!r}; allowed: {', '.join(NOISES)}")


def apply_inverse(
    op, links: torch.Tensor, b: torch.Tensor, tol: float = 1e-12, maxiter: int = 10_000, truncate: int | None = None
) -> torch.Tensor:
    """``D^{-1} b = (D^dag D)^{-1} D^dag b``; ``truncate = k``: CG stopped after ``k`` iterations
    (a cheap, biased approximation: the truncated solves of ML feature sets)."""
    if truncate is not None:
        x, _ = cg(
            lambda v: op.normal(links, v),
            op.apply_dagger(links, b),
            tol=0.0,
            maxiter=truncate,
            require_convergence=False,
        )
        return x
    x, _ = cg(lambda v: op.normal(links, v), op.apply_dagger(links, b), tol=tol, maxiter=maxiter)
    return x


def trace_inverse_powers(
    op,
    links: torch.Tensor,
    gens,
    n_max: int = 4,
    n_noise: int = 4,
    noise: str = "z2",
    tol: float = 1e-12,
    truncate: int | None = None,
) -> torch.Tensor:
    """Stochastic ``tr D^{-n} / V`` (colour and spin summed), ``n = 1..n_max``.

    Returns complex ``[B, n_noise, n_max]``: one estimate per noise vector (their
    mean is the estimator; their spread its noise). ``V`` is the number of sites.
    ``truncate = k``: every inverse a CG of ``k`` iterations (``apply_inverse``).
    """
    shape = fermion_shape(op, links)
    volume = math.prod(links.shape[2 : 2 + links.shape[1]])
    out = []
    for _ in range(n_noise):
        eta = noise_vectors(gens, shape, noise, links.dtype)
        x, traces = eta, []
        for _ in range(n_max):
            x = apply_inverse(op, links, x, tol, truncate=truncate)
            traces.append(inner(eta, x) / volume)
        out.append(torch.stack(traces, dim=1))
    return torch.stack(out, dim=1)


def chiral_condensate(
    op, links: torch.Tensor, gens, n_noise: int = 4, noise: str = "z2", tol: float = 1e-12
) -> torch.Tensor:
    """``Re tr D^{-1} / V`` per noise vector, ``[B, n_noise]`` (docs/conventions.md#chiral-condensate)."""
    return trace_inverse_powers(op, links, gens, 1, n_noise, noise, tol)[..., 0].real


def pion_correlator(op, links: torch.Tensor, tol: float = 1e-12) -> torch.Tensor:
    """Zero-momentum pion correlator from a point source at the origin, ``[B, L_0]``.

    ``C(t) = sum_{x-vec} sum |G(t, x-vec; 0)|^2`` over source and sink colours (and
    spins for Wilson, where ``gamma5``-hermiticity makes this the pion): for staggered
    fermions the Goldstone pion.
    """
    shape = fermion_shape(op, links)
    n_b = links.shape[0]
    n_int = shape[len(links.shape[2 : 2 + links.shape[1]]) :]
    total = torch.zeros(n_b, shape[0], dtype=torch.float64, device=links.device)
    for idx in torch.cartesian_prod(*[torch.arange(k) for k in n_int]).reshape(-1, len(n_int)):
        src = torch.zeros(n_b, *shape, dtype=links.dtype, device=links.device)
        src[(slice(None),) + (0,) * (len(shape) - len(n_int)) + tuple(int(i) for i in idx)] = 1.0
        g = apply_inverse(op, links, src, tol)
        dens = g.abs().square()
        total = total + dens.reshape(n_b, shape[0], -1).sum(dim=2)
    return total


def dense_operator(op, links: torch.Tensor) -> torch.Tensor:
    """The matrix of ``D`` for chain 0 of ``links`` (tests, tiny lattices)."""
    shape = fermion_shape(op, links)
    n = math.prod(shape)
    basis = torch.eye(n, dtype=links.dtype, device=links.device).reshape(n, *shape)
    u = links[:1].expand(n, *links.shape[1:])
    return op.apply(u, basis).reshape(n, n).T


def staggered_even_spectrum(op, links: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """``mu_i^2`` of every chain, ``[B, n_even]`` ascending: the eigenvalues of ``-H^2`` on even
    sites, so that ``D^dag D = m^2 + mu_i^2`` there and ``+-i mu_i`` are those of ``H``
    (``op`` a ``StaggeredOperator``; its mass plays no role). Dense, ``n_even = V N / 2``:
    the even-to-odd block ``H_oe`` is applied to the even basis vectors ``chunk`` at a time and
    ``-H_eo H_oe = H_oe^dag H_oe`` diagonalised (small lattices)."""
    shape = fermion_shape(op, links)
    even = op.even_mask(links).expand(shape).reshape(-1)
    cols = torch.nonzero(even).squeeze(-1)
    rows = torch.nonzero(~even).squeeze(-1)
    out = []
    for b in range(links.shape[0]):
        u = links[b : b + 1]
        blocks = []
        for start in range(0, len(cols), chunk):
            idx = cols[start : start + chunk]
            basis = torch.zeros(len(idx), math.prod(shape), dtype=links.dtype, device=links.device)
            basis[torch.arange(len(idx), device=links.device), idx] = 1.0
            hop = op.hop(u.expand(len(idx), *u.shape[1:]), basis.reshape(len(idx), *shape))
            blocks.append(hop.reshape(len(idx), -1)[:, rows])
        h_oe = torch.cat(blocks).T  # [n_odd, n_even]
        out.append(torch.linalg.eigvalsh(h_oe.mH @ h_oe).clamp(min=0.0))
    return torch.stack(out)
