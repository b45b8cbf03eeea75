"""Wilson fermions: the Dirac operator (mass and kappa forms) and the Nf = 2 pseudofermion.

``D psi(x) = (m + d) psi(x)
  - 1/2 sum_mu [(1 - gamma_mu) U_mu(x) psi(x+mu) + (1 + gamma_mu) U_mu(x-mu)^dag psi(x-mu)]``,
antiperiodic in time (direction 0). Kappa form: ``D_kappa = 2 kappa D``,
``kappa = 1 / (2 m + 2 d)``. ``gamma5 D gamma5 = D^dag``.

Gamma basis (Euclidean, chiral): with Pauli matrices ``s_k``,
``gamma_0 = [[0, 1], [1, 0]]`` (time), ``gamma_k = [[0, -i s_k], [i s_k, 0]]``
(k = 1, 2, 3), all hermitian, ``{gamma_mu, gamma_nu} = 2 delta``, and
``gamma5 = gamma_1 gamma_2 gamma_3 gamma_0 = diag(1, 1, -1, -1)``.

Fermions ``[B, L..., 4, N]`` complex (spin, then colour); links ``[B, 4, L..., N, N]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .. import kernels
from ..lattice import SU, algebra_gradient, shift
from ..solvers import cg, inner
from .base import PseudofermionAction, force_solver_tol, gaussian_fermion

__all__ = ["gamma_matrices", "gamma5", "WilsonOperator", "WilsonPseudofermion", "dense_normal"]


def gamma_matrices(dtype=torch.complex128, device=None) -> torch.Tensor:
    """``[4, 4, 4]``: gamma_0 (time), gamma_1, gamma_2, gamma_3 in the chiral basis."""
    s = [
        torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
        torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
        torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
    ]
    zero, one = torch.zeros(2, 2, dtype=torch.complex128), torch.eye(2, dtype=torch.complex128)
    g0 = torch.cat([torch.cat([zero, one], 1), torch.cat([one, zero], 1)], 0)
    gk = [torch.cat([torch.cat([zero, -1j * sk], 1), torch.cat([1j * sk, zero], 1)], 0) for sk in s]
    return torch.stack([g0, *gk]).to(dtype=dtype, device=device)


def gamma5(dtype=torch.complex128, device=None) -> torch.Tensor:
    g = gamma_matrices(dtype, device)
    return g[1] @ g[2] @ g[3] @ g[0]


def _spin(mat: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Spin matrix on ``[..., 4, N]``."""
    return torch.einsum("st,...tc->...sc", mat, psi)


def _colour(u: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Colour matrix ``[..., N, N]`` on ``[..., 4, N]``."""
    return torch.einsum("...ij,...sj->...si", u, psi)


@dataclass(frozen=True)
class WilsonOperator:
    """Wilson-Dirac operator in mass form (``kappa`` and ``from_kappa`` convert)."""

    mass: float
    group: SU
    antiperiodic: bool = True
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    #: per-site spin axes of a fermion field before the colour axis (four Dirac components)
    spin_shape: ClassVar[tuple[int, ...]] = (4,)

    @classmethod
    def from_kappa(cls, kappa: float, group: SU, dim: int = 4, antiperiodic: bool = True) -> WilsonOperator:
        return cls(1.0 / (2.0 * kappa) - dim, group, antiperiodic)

    def kappa(self, dim: int = 4) -> float:
        return 1.0 / (2.0 * self.mass + 2.0 * dim)

    def _phase(self, mu: int) -> float | None:
        return -1.0 if (mu == 0 and self.antiperiodic) else None

    def _projectors(self, dtype, device):
        key = (dtype, device)
        if key not in self._cache:
            g = gamma_matrices(dtype, device)
            eye = torch.eye(4, dtype=dtype, device=device)
            self._cache[key] = (eye - g, eye + g)
        return self._cache[key]

    def hop(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``sum_mu [(1 - g_mu) U psi(x+mu) + (1 + g_mu) U^dag(x-mu) psi(x-mu)]``.

        The compiled kernel (spin-projected) where it applies, else ``hop_torch``.
        """
        if links.shape[1] == 4 and kernels.enabled(links, psi, n=self.group.n):
            return kernels.wilson_hop(links, psi, self.antiperiodic)
        return self.hop_torch(links, psi)

    def hop_torch(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """The hopping term in torch (full spin matrices): the reference."""
        minus, plus = self._projectors(psi.dtype, psi.device)
        out = torch.zeros_like(psi)
        for mu in range(links.shape[1]):
            u = links[:, mu]
            fwd = _colour(u, shift(psi, mu, 1, phase=self._phase(mu)))
            bwd = shift(_colour(u.mH, psi), mu, -1, phase=self._phase(mu))
            out = out + _spin(minus[mu], fwd) + _spin(plus[mu], bwd)
        return out

    def apply(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return (self.mass + links.shape[1]) * psi - 0.5 * self.hop(links, psi)

    def apply_dagger(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D^dag = gamma5 D gamma5``."""
        g5 = gamma5(psi.dtype, psi.device)
        return _spin(g5, self.apply(links, _spin(g5, psi)))

    def normal(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return self.apply_dagger(links, self.apply(links, psi))

    def solve_normal(self, links, b, tol=1e-12, maxiter=10_000):
        return cg(lambda v: self.normal(links, v), b, tol=tol, maxiter=maxiter)[0]

    def hop_force(self, links: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Lie-algebra gradient of ``-2 Re <y, D(U) x>`` with ``x``, ``y`` fixed.

        With ``P1 = sum_s x_s(x+mu) [(1 - g_mu) y(x)]_s^dag`` and
        ``P2 = sum_s x_s(x) [(1 + g_mu) y(x+mu)]_s^dag``: ``-TA(U P1 - P2 U^dag) / 2``.
        """
        minus, plus = self._projectors(x.dtype, x.device)
        forces = []
        for mu in range(links.shape[1]):
            u = links[:, mu]
            x_fwd = shift(x, mu, 1, phase=self._phase(mu))
            y_fwd = shift(y, mu, 1, phase=self._phase(mu))
            p1 = torch.einsum("...si,...sj->...ij", x_fwd, _spin(minus[mu], y).conj())
            p2 = torch.einsum("...si,...sj->...ij", x, _spin(plus[mu], y_fwd).conj())
            forces.append(-0.5 * self.group.traceless_hermitian(u @ p1 - p2 @ u.mH))
        return torch.stack(forces, dim=1)


@dataclass(frozen=True)
class WilsonPseudofermion(PseudofermionAction):
    """Two degenerate Wilson flavours: ``S = phi^dag (D^dag D)^{-1} phi``, ``phi = D^dag eta``;
    solves to ``tol``, the force's to ``force_tol`` (``None``: ``tol``; ``base.force_solver_tol``)."""

    operator: WilsonOperator
    tol: float = 1e-12
    maxiter: int = 10_000
    force_tol: float | None = None

    @property
    def group(self) -> SU:
        return self.operator.group

    def heat_bath(self, links: torch.Tensor, gens) -> torch.Tensor:
        return self.operator.apply_dagger(links, gaussian_fermion(links, gens, (4,), self.group.n))

    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        x = self.operator.solve_normal(links, phi, self.tol, self.maxiter)
        return inner(phi, x).real

    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``dS = -x^dag d(D^dag D) x = -2 Re <D x, dD x>``."""
        x = self.operator.solve_normal(links, phi, force_solver_tol(self.tol, self.force_tol), self.maxiter)
        return self.operator.hop_force(links, x, self.operator.apply(links, x))

    def autograd_force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Reference force by automatic differentiation through a dense solve (tiny lattices)."""

        def dense(u):
            vals = []
            for b in range(u.shape[0]):
                v = phi[b].reshape(-1)
                vals.append((v.conj() @ torch.linalg.solve(dense_normal(self.operator, u[b : b + 1]), v)).real)
            return torch.stack(vals)

        return algebra_gradient(dense, links, self.group)


def dense_normal(op: WilsonOperator, links: torch.Tensor) -> torch.Tensor:
    """The matrix of ``D^dag D`` on the links of one chain ``[1, d, L..., N, N]`` (tiny lattices,
    differentiable)."""
    shape = tuple(links.shape[2 : 2 + links.shape[1]]) + (4, op.group.n)
    n = math.prod(shape)
    basis = torch.eye(n, dtype=links.dtype, device=links.device).reshape(n, *shape)
    return op.normal(links.expand(n, *links.shape[1:]), basis).reshape(n, n).T
