"""Staggered fermions: the Dirac operator, its even-odd structure and pseudofermion actions.

Convention (docs/conventions.md#staggered-fermions): ``D = m + H`` with the hopping term
``H psi(x) = 1/2 sum_mu eta_mu(x) [U_mu(x) psi(x+mu) - U_mu(x-mu)^dag psi(x-mu)]``,
``eta_mu(x) = (-1)^(x_0 + ... + x_{mu-1})`` (0-based, ``eta_0 = 1``), antiperiodic in
time (direction 0) and periodic in space. ``H`` is anti-hermitian and connects even
and odd sites only, so ``D^dag D = m^2 - H^2`` is block diagonal; on even sites it is
``M_ee = m^2 - H_eo H_oe`` with ``det D = det M_ee``.

Fields: links ``[B, d, L..., N, N]``; fermions ``[B, L..., N]`` complex. Even-site
vectors are full-lattice tensors that vanish on odd sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .. import kernels
from ..lattice import SU, algebra_gradient, checkerboard, coordinates, shift
from ..solvers import RationalApproximation, cg, inner, multishift_cg, rational_power
from .base import PseudofermionAction, force_solver_tol, gaussian_fermion

__all__ = [
    "StaggeredOperator",
    "apply_rational",
    "check_field_flavours",
    "dense_rational_form",
    "field_mask",
    "rational_force",
    "staggered_phases",
    "StaggeredPseudofermion",
]


def staggered_phases(shape, device=None, dtype=torch.float64) -> torch.Tensor:
    """``eta_mu(x)``, shape ``[d, L...]``."""
    x = coordinates(shape, device)
    etas, acc = [], torch.zeros_like(x[0])
    for mu in range(len(shape)):
        etas.append(1.0 - 2.0 * torch.remainder(acc, 2).to(dtype))
        acc = acc + x[mu]
    return torch.stack(etas)


def _mv(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Colour matrix times vector at every site: ``[..., N, N] x [..., N]``."""
    return torch.matmul(u, v.unsqueeze(-1)).squeeze(-1)


@dataclass(frozen=True)
class StaggeredOperator:
    """``D = m + H`` on SU(N) links; ``antiperiodic`` time boundary for the fermions."""

    mass: float
    group: SU
    antiperiodic: bool = True
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    #: per-site spin axes of a fermion field before the colour axis (no spin index)
    spin_shape: ClassVar[tuple[int, ...]] = ()

    def _phase(self, mu: int) -> float | None:
        return -1.0 if (mu == 0 and self.antiperiodic) else None

    def eta(self, links: torch.Tensor) -> torch.Tensor:
        shape = tuple(links.shape[2 : 2 + links.shape[1]])
        key = (shape, links.device, links.real.dtype)
        if key not in self._cache:
            self._cache[key] = staggered_phases(shape, links.device, links.real.dtype)
        return self._cache[key]

    def even_mask(self, links: torch.Tensor) -> torch.Tensor:
        """``[L..., 1]`` boolean mask of even sites (needs even extents)."""
        shape = tuple(links.shape[2 : 2 + links.shape[1]])
        return checkerboard(shape, 0, links.device).unsqueeze(-1)

    def hop(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``H psi`` (anti-hermitian hopping term): the compiled kernel where it applies."""
        if kernels.enabled(links, psi, n=self.group.n):
            return kernels.staggered_hop(links, psi, self.antiperiodic)
        return self.hop_torch(links, psi)

    def hop_torch(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``H psi`` in torch: the reference, and the path of devices the kernels do not cover."""
        eta = self.eta(links)
        out = torch.zeros_like(psi)
        for mu in range(links.shape[1]):
            u = links[:, mu]
            fwd = _mv(u, shift(psi, mu, 1, phase=self._phase(mu)))
            bwd = shift(_mv(u.mH, psi), mu, -1, phase=self._phase(mu))
            out = out + eta[mu].unsqueeze(-1) * (fwd - bwd)
        return 0.5 * out

    def apply(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D psi = m psi + H psi``."""
        return self.mass * psi + self.hop(links, psi)

    def apply_dagger(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D^dag psi = m psi - H psi``."""
        return self.mass * psi - self.hop(links, psi)

    def normal(self, links: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D^dag D psi = m^2 psi - H H psi`` (maps even to even, odd to odd)."""
        return self.mass**2 * psi - self.hop(links, self.hop(links, psi))

    def spectral_bounds(self, dim: int) -> tuple[float, float]:
        """Rigorous bounds of the spectrum of ``D^dag D``: ``[m^2, m^2 + d^2]`` (``|H| <= d``)."""
        return self.mass**2, self.mass**2 + float(dim) ** 2

    def solve_normal(self, links, b, tol=1e-12, maxiter=10_000):
        """``(D^dag D)^{-1} b`` by CG."""
        return cg(lambda v: self.normal(links, v), b, tol=tol, maxiter=maxiter)[0]

    def hop_force(self, links: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Lie-algebra gradient of ``2 Re <x, H(U) y>`` with ``x``, ``y`` fixed.

        With ``W = U_mu(x) y(x+mu) x(x)^dag + y(x) x(x+mu)^dag U_mu(x)^dag`` (boundary
        phases on the shifted vectors) it is ``-eta_mu(x) TA(W) / 2``.
        """
        eta = self.eta(links)
        forces = []
        for mu in range(links.shape[1]):
            u = links[:, mu]
            y_fwd = shift(y, mu, 1, phase=self._phase(mu))
            x_fwd = shift(x, mu, 1, phase=self._phase(mu))
            w = u @ (y_fwd.unsqueeze(-1) @ x.conj().unsqueeze(-2))
            w = w + (y.unsqueeze(-1) @ x_fwd.conj().unsqueeze(-2)) @ u.mH
            forces.append(-0.5 * eta[mu][..., None, None] * self.group.traceless_hermitian(w))
        return torch.stack(forces, dim=1)


def check_field_flavours(n_flavours: int) -> None:
    """The flavours one staggered pseudofermion field carries: 1, 2, 3 (rooted), 4, 8."""
    if n_flavours not in (1, 2, 3, 4, 8):
        raise ValueError(
            f"staggered pseudofermion: n_flavours = {n_flavours}; allowed: 1, 2, 3, 4, 8 per field (other Nf as sums)"
        )


def rational_force(
    op: StaggeredOperator, links: torch.Tensor, r: RationalApproximation, xs: list[torch.Tensor]
) -> torch.Tensor:
    """``dS/dw`` of ``S = phi^dag r(M) phi`` from the shifted solutions ``x_k = (M + b_k)^{-1} phi``:
    ``sum_k a_k 2 Re <x_k, dH (H x_k)>``."""
    total = torch.zeros_like(links)
    for a, x in zip(r.residues, xs):
        total = total + a * op.hop_force(links, x, op.hop(links, x))
    return total


def field_mask(op: StaggeredOperator, n_flavours: int, links: torch.Tensor) -> torch.Tensor | None:
    """The sites a pseudofermion of ``n_flavours`` lives on: even (``[L..., 1]`` mask), or the
    full lattice for 8 (``None``)."""
    return None if n_flavours == 8 else op.even_mask(links)


def apply_rational(
    op: StaggeredOperator, links: torch.Tensor, r: RationalApproximation, v: torch.Tensor, tol: float, maxiter: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``r(M) v`` with ``M = D^dag D`` and the shifted solutions ``(M + b_k)^{-1} v`` (one multi-shift CG)."""
    xs, _ = multishift_cg(lambda w: op.normal(links, w), v, r.shifts, tol, maxiter)
    out = r.c0 * v
    for a, x in zip(r.residues, xs):
        out = out + a * x
    return out, list(xs)


@dataclass(frozen=True)
class StaggeredPseudofermion(PseudofermionAction):
    """Pseudofermion action of ``n_flavours`` continuum staggered flavours (tastes / 4 each).

    Weight ``det(M_ee)^{n_f / 4}`` with ``M_ee = (D^dag D)_ee``:

    - ``n_f = 4``: ``S = phi_e^dag M_ee^{-1} phi_e`` (even sites; ``det D``);
    - ``n_f = 8``: ``S = phi^dag (D^dag D)^{-1} phi`` on the full lattice;
    - ``n_f = 1, 2, 3`` (RHMC): ``S = phi_e^dag r(M_ee) phi_e`` with ``r`` the minimax
      relative approximation of ``x^{-n_f/4}`` over the rigorous spectral bounds
      (Zolotarev for ``n_f = 2``, Remez otherwise), and the heat bath
      ``phi_e = s(M_ee) eta_e`` with ``s ~ x^{n_f/8}``; both to relative error
      ``rational_tol``, each applied by one multi-shift CG.

    Solves to relative residual ``tol``; ``force_tol`` (``None``: ``tol``) is that of the
    force alone (``base.force_solver_tol``). Other ``n_f`` combine these as several pseudofermion fields
    (``kinds.theories.staggered_fields``). The pseudofermion field is part of the chain
    state, not of this object (``heat_bath`` draws it at the start of a trajectory).
    """

    operator: StaggeredOperator
    n_flavours: int
    tol: float = 1e-12
    maxiter: int = 10_000
    rational_tol: float = 1e-12
    force_tol: float | None = None

    def __post_init__(self) -> None:
        check_field_flavours(self.n_flavours)

    @property
    def group(self) -> SU:
        return self.operator.group

    @property
    def rational(self) -> bool:
        """Whether the action is a rational function (RHMC) rather than an inverse."""
        return self.n_flavours < 4

    # --- the operator this pseudofermion sees --------------------------------------
    def _mask(self, links):
        return field_mask(self.operator, self.n_flavours, links)

    def _project(self, links, v):
        mask = self._mask(links)
        return v if mask is None else v * mask

    def approximation(self, links, power: float) -> RationalApproximation:
        """Rational approximation of ``x^power`` over the spectral bounds of ``M_ee``."""
        lo, hi = self.operator.spectral_bounds(links.shape[1])
        return rational_power(power, lo, hi, self.rational_tol)

    def _apply_rational(self, links, r: RationalApproximation, v: torch.Tensor, tol: float | None = None):
        """``r(M) v`` and the shifted solutions ``(M + b_k)^{-1} v`` (to ``tol``, default ``self.tol``)."""
        return apply_rational(self.operator, links, r, v, self.tol if tol is None else tol, self.maxiter)

    # --- heat bath ------------------------------------------------------------------
    def heat_bath(self, links: torch.Tensor, gens) -> torch.Tensor:
        """Draw ``phi`` from ``exp(-S)`` for the current links."""
        op = self.operator
        eta = gaussian_fermion(links, gens, (), self.group.n)
        if self.rational:  # phi_e = M_ee^{n_f/8} eta_e
            heat = self.approximation(links, self.n_flavours / 8)
            return self._project(links, self._apply_rational(links, heat, self._project(links, eta))[0])
        # phi = (D^dag eta) restricted: covariance P D^dag D P = M_ee (or D^dag D)
        return self._project(links, op.apply_dagger(links, eta))

    # --- action and force -------------------------------------------------------------
    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        if self.rational:
            r = self.approximation(links, -self.n_flavours / 4)
            return inner(phi, self._apply_rational(links, r, phi)[0]).real
        x = self.operator.solve_normal(links, phi, self.tol, self.maxiter)
        return inner(phi, x).real

    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``dS/dw``: for ``S = phi^dag (M + s)^{-1} phi``, ``-x^dag dM x = 2 Re <x, dH (H x)>``."""
        op, tol = self.operator, force_solver_tol(self.tol, self.force_tol)
        if self.rational:
            r = self.approximation(links, -self.n_flavours / 4)
            _, xs = self._apply_rational(links, r, phi, tol)
            return rational_force(op, links, r, xs)
        x = op.solve_normal(links, phi, tol, self.maxiter)
        return op.hop_force(links, x, op.hop(links, x))

    def autograd_force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Reference force by automatic differentiation through a dense solve (tiny lattices)."""
        return algebra_gradient(lambda u: _dense_action(self, u, phi), links, self.group)


def _dense_action(pf: StaggeredPseudofermion, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``S`` with a dense matrix function (tiny lattices, differentiable)."""
    r = pf.approximation(links, -pf.n_flavours / 4) if pf.rational else None
    return dense_rational_form(pf.operator, pf._mask(links), r, links, phi)


def dense_rational_form(
    op: StaggeredOperator,
    mask: torch.Tensor | None,
    r: RationalApproximation | None,
    links: torch.Tensor,
    phi: torch.Tensor,
) -> torch.Tensor:
    """``phi^dag r(M) phi`` per chain with dense solves of ``M = D^dag D`` on the sites of ``mask``
    (``None``: all); ``r = None``: ``M^{-1}``. Tiny lattices; differentiable in ``links`` (the
    reference of the forces)."""
    n = phi[0].numel()
    basis = torch.eye(n, dtype=phi.dtype, device=phi.device).reshape(n, *phi.shape[1:])
    out = []
    for b in range(links.shape[0]):
        lb = links[b : b + 1].expand(n, *links.shape[1:])
        cols = op.normal(lb, basis).reshape(n, n).T  # column j = M e_j
        vec = phi[b].reshape(-1)
        if mask is not None:
            keep = mask.expand(phi.shape[1:]).reshape(-1)
            cols, vec = cols[keep][:, keep], vec[keep]
        if r is None:
            out.append((vec.conj() @ torch.linalg.solve(cols, vec)).real)
            continue
        eye = torch.eye(cols.shape[0], dtype=cols.dtype, device=cols.device)
        val = r.c0 * (vec.conj() @ vec).real
        for a, s in zip(r.residues, r.shifts):
            val = val + a * (vec.conj() @ torch.linalg.solve(cols + s * eye, vec)).real
        out.append(val)
    return torch.stack(out)
