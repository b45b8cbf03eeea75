"""Hasenbusch mass preconditioning: a fermion determinant split into a heavy one and ratios.

``det(D^dag D(m))^a = det(D^dag D(m_k))^a prod_j [det(D^dag D(m_{j-1})) / det(D^dag D(m_j))]^a``
with ``m = m_0 < m_1 < ... < m_k`` (Hasenbusch, hep-lat/0107019). Each factor gets its own
pseudofermion: the heavy determinant is an ordinary pseudofermion action at ``m_k``, each
ratio a ``*Ratio`` action below. The heavy force is large and cheap (few CG iterations), a
ratio's force small and dear: they go on different levels of a nested integrator
(``hasenbusch_levels``). The split is an identity of the weight, so the chain samples the
same distribution as with one pseudofermion.

Staggered (``M(m) = m^2 - H^2``; ``M_ee`` on even sites for ``n_f <= 4``): with
``d = m_h^2 - m^2``, ``M(m_h) = M(m) + d`` commutes with ``M(m)``, so the ratio of weight
``[det M(m) / det M(m_h)]^a`` (``a = n_f / 4``; ``a = 1`` on the full lattice for ``n_f = 8``)
is ``S = phi^dag r(M) phi`` with ``r(x) = ((x + d) / x)^a``: exactly ``1 + d / x`` for
``a = 1``, else its best relative rational approximation (``solvers.rational_ratio``), one
multi-shift CG at the light mass. Heat bath: ``a = 1``: ``phi = P (m + H)(m_h + H)^{-1} eta``
(``P`` the even-site projector; covariance ``P M(m) M(m_h)^{-1} P``, one CG at the heavy
mass); rooted: ``phi = s(M) eta_e`` with ``s ~ (x / (x + d))^(a/2)``.

Wilson (two flavours): ``S = phi^dag D_h (D^dag D)^{-1} D_h^dag phi`` with ``D_h = D(m_h)``,
heat bath ``phi = D_h^{-dag} D^dag eta = D_h (D_h^dag D_h)^{-1} D^dag eta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..lattice import SU, algebra_gradient
from ..lattice.random import Generators
from ..solvers import RationalApproximation, cg, inner, rational_ratio
from .base import PseudofermionAction, force_solver_tol, gaussian_fermion
from .staggered import (
    StaggeredOperator,
    StaggeredPseudofermion,
    apply_rational,
    check_field_flavours,
    dense_rational_form,
    field_mask,
    rational_force,
)
from .wilson_fermion import WilsonOperator, WilsonPseudofermion, dense_normal

__all__ = ["StaggeredRatio", "WilsonRatio", "hasenbusch_split", "check_hasenbusch_masses", "ratio_at_mass"]


def check_hasenbusch_masses(mass: float, masses: Sequence[float]) -> None:
    """``masses`` strictly increasing and all above ``mass`` (raises ``ValueError`` naming them)."""
    chain = [float(mass), *(float(m) for m in masses)]
    if not masses or any(b <= a for a, b in zip(chain, chain[1:])):
        raise ValueError(
            f"hasenbusch masses = {list(masses)!r}; allowed: at least one, strictly increasing, "
            f"all above the fermion mass {mass!r}"
        )


@dataclass(frozen=True)
class StaggeredRatio(PseudofermionAction):
    """``[det M(m) / det M(m_h)]^(n_f/4)``: ``operator`` at the lighter mass ``m``, ``heavy_mass`` ``m_h``.

    ``n_flavours`` in (1, 2, 3, 4, 8) as for ``StaggeredPseudofermion`` (even sites up to 4,
    the full lattice for 8). ``S = phi^dag r(M) phi``, ``r(x) = ((x + d) / x)^a``. Solves to
    ``tol``, the force's to ``force_tol`` (``None``: ``tol``; ``base.force_solver_tol``).
    """

    operator: StaggeredOperator
    heavy_mass: float
    n_flavours: int
    tol: float = 1e-12
    maxiter: int = 10_000
    rational_tol: float = 1e-12
    force_tol: float | None = None

    def __post_init__(self) -> None:
        check_field_flavours(self.n_flavours)
        check_hasenbusch_masses(self.operator.mass, [self.heavy_mass])

    @property
    def group(self) -> SU:
        return self.operator.group

    @property
    def delta(self) -> float:
        """``d = m_h^2 - m^2``: ``M(m_h) = M(m) + d``."""
        return self.heavy_mass**2 - self.operator.mass**2

    @property
    def exponent(self) -> float:
        """``a``: the power of the ratio of ``M``'s determinants on the sites the field lives on."""
        return 1.0 if self.n_flavours == 8 else self.n_flavours / 4

    @property
    def heavy(self) -> StaggeredOperator:
        return replace(self.operator, mass=self.heavy_mass)

    def _mask(self, links):
        return field_mask(self.operator, self.n_flavours, links)

    def _project(self, links, v):
        mask = self._mask(links)
        return v if mask is None else v * mask

    def approximation(self, links: torch.Tensor, exponent: float) -> RationalApproximation:
        """``((x + d) / x)^exponent`` over the spectral bounds of ``M(m)`` (exact for ``exponent = 1``)."""
        lo, hi = self.operator.spectral_bounds(links.shape[1])
        return rational_ratio(exponent, self.delta, lo, hi, self.rational_tol)

    def _apply(self, links, r: RationalApproximation, v: torch.Tensor, tol: float | None = None):
        """``r(M) v`` and the shifted solutions ``(M + b_k)^{-1} v`` (to ``tol``, default ``self.tol``)."""
        return apply_rational(self.operator, links, r, v, self.tol if tol is None else tol, self.maxiter)

    def heat_bath(self, links: torch.Tensor, gens: Generators) -> torch.Tensor:
        eta = gaussian_fermion(links, gens, (), self.group.n)
        if self.exponent == 1.0:  # phi = P (m + H)(m_h - H) M(m_h)^{-1} eta on the full lattice
            op, heavy = self.operator, self.heavy
            y = heavy.solve_normal(links, eta, self.tol, self.maxiter)
            z = heavy.apply_dagger(links, y)
            return self._project(links, op.apply(links, z))
        heat = self.approximation(links, -self.exponent / 2)
        return self._project(links, self._apply(links, heat, self._project(links, eta))[0])

    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        r = self.approximation(links, self.exponent)
        return inner(phi, self._apply(links, r, phi)[0]).real

    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``sum_k a_k dS_k`` with ``S_k = phi^dag (M + b_k)^{-1} phi`` (as ``StaggeredPseudofermion``)."""
        op = self.operator
        r = self.approximation(links, self.exponent)
        _, xs = self._apply(links, r, phi, force_solver_tol(self.tol, self.force_tol))
        return rational_force(op, links, r, xs)

    def autograd_force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Reference force: automatic differentiation of the exact ratio through dense
        matrices (tiny lattices; the rational approximation's error enters at ``rational_tol``)."""
        return algebra_gradient(lambda u: _dense_ratio_action(self, u, phi), links, self.group)


def _dense_ratio_action(ratio: StaggeredRatio, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``S`` with the action's rational function applied by dense solves (tiny lattices, differentiable)."""
    r = ratio.approximation(links, ratio.exponent)
    return dense_rational_form(ratio.operator, ratio._mask(links), r, links, phi)


@dataclass(frozen=True)
class WilsonRatio(PseudofermionAction):
    """``det(D^dag D(m)) / det(D^dag D(m_h))`` for two Wilson flavours: ``operator`` at ``m``;
    solves to ``tol``, the force's to ``force_tol`` (``None``: ``tol``; ``base.force_solver_tol``)."""

    operator: WilsonOperator
    heavy_mass: float
    tol: float = 1e-12
    maxiter: int = 10_000
    force_tol: float | None = None

    def __post_init__(self) -> None:
        check_hasenbusch_masses(self.operator.mass, [self.heavy_mass])

    @property
    def group(self) -> SU:
        return self.operator.group

    @property
    def heavy(self) -> WilsonOperator:
        return replace(self.operator, mass=self.heavy_mass)

    def heat_bath(self, links: torch.Tensor, gens: Generators) -> torch.Tensor:
        eta = gaussian_fermion(links, gens, (4,), self.group.n)
        heavy = self.heavy
        y = heavy.solve_normal(links, self.operator.apply_dagger(links, eta), self.tol, self.maxiter)
        return heavy.apply(links, y)

    def _solution(
        self, links: torch.Tensor, phi: torch.Tensor, tol: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``chi = D_h^dag phi`` and ``x = (D^dag D)^{-1} chi`` (to ``tol``, default ``self.tol``)."""
        chi = self.heavy.apply_dagger(links, phi)
        x = cg(
            lambda v: self.operator.normal(links, v), chi, tol=self.tol if tol is None else tol, maxiter=self.maxiter
        )[0]
        return chi, x

    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        chi, x = self._solution(links, phi)
        return inner(chi, x).real

    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``dS = 2 Re <phi, dD x> - x^dag d(D^dag D) x``: ``hop_force(x, D x - phi)``."""
        _, x = self._solution(links, phi, force_solver_tol(self.tol, self.force_tol))
        return self.operator.hop_force(links, x, self.operator.apply(links, x) - phi)

    def autograd_force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Reference force by automatic differentiation through dense solves (tiny lattices)."""

        def dense(u):
            vals = []
            for b in range(u.shape[0]):
                chi = self.heavy.apply_dagger(u[b : b + 1], phi[b : b + 1]).reshape(-1)
                vals.append((chi.conj() @ torch.linalg.solve(dense_normal(self.operator, u[b : b + 1]), chi)).real)
            return torch.stack(vals)

        return algebra_gradient(dense, links, self.group)


def hasenbusch_split(light: PseudofermionAction, masses: Sequence[float]) -> list[PseudofermionAction]:
    """The pseudofermion terms of ``light``'s determinant split at ``masses`` (increasing, all
    above ``light``'s mass): ``[ratio(m, m_1), ratio(m_1, m_2), ..., heavy(m_k)]``, lightest first."""
    if not isinstance(light, (StaggeredPseudofermion, WilsonPseudofermion)):
        raise TypeError(f"hasenbusch: cannot split {type(light).__name__}; allowed: staggered or Wilson")
    check_hasenbusch_masses(light.operator.mass, masses)
    chain = [light.operator.mass, *(float(m) for m in masses)]
    pairs = list(zip(chain, chain[1:]))
    terms: list[PseudofermionAction] = []
    if isinstance(light, StaggeredPseudofermion):
        sop = light.operator
        terms += [
            StaggeredRatio(
                replace(sop, mass=lo),
                hi,
                light.n_flavours,
                light.tol,
                light.maxiter,
                light.rational_tol,
                light.force_tol,
            )
            for lo, hi in pairs
        ]
        terms.append(replace(light, operator=replace(sop, mass=chain[-1])))
    else:
        wop = light.operator
        terms += [WilsonRatio(replace(wop, mass=lo), hi, light.tol, light.maxiter, light.force_tol) for lo, hi in pairs]
        terms.append(replace(light, operator=replace(wop, mass=chain[-1])))
    return terms


def ratio_at_mass(ratio: PseudofermionAction, mass: float) -> StaggeredRatio | WilsonRatio:
    """The Hasenbusch ratio ``ratio`` with its lighter mass set to ``mass`` (the heavy one kept)."""
    if isinstance(ratio, StaggeredRatio):
        return replace(ratio, operator=replace(ratio.operator, mass=mass))
    if isinstance(ratio, WilsonRatio):
        return replace(ratio, operator=replace(ratio.operator, mass=mass))
    raise TypeError(f"ratio_at_mass: {type(ratio).__name__}; allowed: StaggeredRatio or WilsonRatio")
