"""Test-only frozen copy of ``lqcdml/samplers/integrators.py`` as it was before the schemes
became coefficient tables (leapfrog and Omelyan coded as branches).

Do not edit or import from library code: the bit-for-bit tests in ``test_integrators_tables.py``
compare the table-driven integrator against this copy. Only the package-relative imports were
made absolute; the arithmetic is untouched.

Original module docstring follows.

Reversible, area-preserving molecular-dynamics integrators, nested on several time scales.

An integrator moves ``(q, p)`` along Hamilton's equations of
``H = K(p) + sum_terms S(q)``: ``dp/dt = -F(q)``, ``dq/dt = p`` (``U' = i P U`` on a
group). ``Level`` ``k`` integrates its own force terms with ``n_steps`` steps of a
symmetric scheme; each of its position updates of length ``h`` is a full integration of
level ``k + 1`` over time ``h`` (Sexton-Weingarten). The last level's position update
is the manifold's exponential map. Put expensive, smooth forces (fermions) on the
outer level and cheap, stiff ones (gauge) on the inner levels.

Schemes, for one step of size ``h`` (``P``: momentum update, ``Q``: position update):

- ``leapfrog``: ``P(h/2) Q(h) P(h/2)``; energy error ``O(h^2)``.
- ``omelyan`` (second-order minimum norm): ``P(l h) Q(h/2) P((1-2l) h) Q(h/2) P(l h)``
  with ``l = 0.1931833275037836`` (Omelyan, Mryglod, Folk 2003); ``O(h^2)`` with a
  roughly ten times smaller error constant, at two force evaluations a step.

Adjacent momentum updates of consecutive steps are merged (one force evaluation).
"""

# ruff: noqa: RUF022  (frozen copy: left as it was)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from lqcdml.lattice import Manifold
from lqcdml.theories import Action, PseudofermionAction

__all__ = ["Level", "Integrator", "MDResult", "OMELYAN_LAMBDA", "SCHEMES", "bind_terms"]

OMELYAN_LAMBDA = 0.1931833275037836
SCHEMES = ("leapfrog", "omelyan")

#: a term of a potential: an action of the fields, or a pseudofermion action that needs its field
Term = Action | PseudofermionAction


def bind_terms(terms: Sequence[Term], phis: Sequence[torch.Tensor]) -> tuple[Action, ...]:
    """``terms`` with their pseudofermion actions bound, in order, to the fields ``phis``."""
    phis = list(phis)
    n_pf = sum(isinstance(t, PseudofermionAction) for t in terms)
    if n_pf != len(phis):
        raise ValueError(f"bind_terms: {n_pf} pseudofermion terms but {len(phis)} fields")
    out, it = [], iter(phis)
    for term in terms:
        out.append(term.bind(next(it)) if isinstance(term, PseudofermionAction) else term)
    return tuple(out)


@dataclass(frozen=True)
class Level:
    """One time scale: the action terms whose forces act here, steps and scheme."""

    terms: tuple[Term, ...]
    n_steps: int
    scheme: str = "omelyan"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"integrator scheme = {self.scheme!r}; allowed: {', '.join(SCHEMES)}")
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise ValueError(f"integrator n_steps = {self.n_steps!r}; allowed: an integer >= 1")
        object.__setattr__(self, "terms", tuple(self.terms))

    def force(self, q: torch.Tensor) -> torch.Tensor:
        total = self.terms[0].force(q)
        for term in self.terms[1:]:
            total = total + term.force(q)
        return total


def _step_pattern(scheme: str) -> list[tuple[str, float]]:
    """One step as ``(kind, fraction of h)`` pairs."""
    if scheme == "leapfrog":
        return [("P", 0.5), ("Q", 1.0), ("P", 0.5)]
    lam = OMELYAN_LAMBDA
    return [("P", lam), ("Q", 0.5), ("P", 1.0 - 2.0 * lam), ("Q", 0.5), ("P", lam)]


@dataclass(frozen=True)
class MDResult:
    """The end of a molecular-dynamics trajectory and its cost."""

    q: torch.Tensor
    p: torch.Tensor
    force_evaluations: tuple[int, ...]  # per level, outermost first


@dataclass(frozen=True)
class Integrator:
    """Nested multi-time-scale symplectic integrator on fields of ``group`` (immutable).

    ``levels[0]`` is the outermost (coarsest) level. Pseudofermion terms must be bound to
    their fields (``bind``) before the integrator moves anything.
    """

    group: Manifold
    levels: tuple[Level, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        if not self.levels:
            raise ValueError("integrator levels: empty; allowed: at least one level")
        n_pf = sum(isinstance(t, PseudofermionAction) for level in self.levels for t in level.terms)
        object.__setattr__(self, "_n_pseudofermions", n_pf)  # derived, fixed at construction

    @classmethod
    def single(cls, action: Action, n_steps: int, scheme: str = "omelyan") -> Integrator:
        """One level holding one action."""
        return cls(action.group, (Level((action,), n_steps, scheme),))

    @property
    def terms(self) -> tuple[Term, ...]:
        """All action terms of all levels (the potential part of the Hamiltonian)."""
        return tuple(t for level in self.levels for t in level.terms)

    @property
    def n_pseudofermions(self) -> int:
        """Number of pseudofermion terms (unbound) over all levels."""
        return self._n_pseudofermions

    def bind(self, phis: Sequence[torch.Tensor]) -> Integrator:
        """The integrator with its pseudofermion terms bound, in order, to ``phis``."""
        phis = list(phis)
        if len(phis) != self.n_pseudofermions:
            raise ValueError(f"integrator: {self.n_pseudofermions} pseudofermion terms but {len(phis)} fields")
        levels, start = [], 0
        for level in self.levels:
            n = sum(isinstance(t, PseudofermionAction) for t in level.terms)
            levels.append(replace(level, terms=bind_terms(level.terms, phis[start : start + n])))
            start += n
        return replace(self, levels=tuple(levels))

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        """``sum_terms S(q)`` per chain."""
        total = self.terms[0].action(q)
        for term in self.terms[1:]:
            total = total + term.action(q)
        return total

    def __call__(self, q: torch.Tensor, p: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Integrate ``(q, p)`` over MD time ``tau``; returns the new ``(q, p)``."""
        result = self.integrate(q, p, tau)
        return result.q, result.p

    def integrate(self, q: torch.Tensor, p: torch.Tensor, tau: float) -> MDResult:
        """Integrate ``(q, p)`` over MD time ``tau``, counting force evaluations per level."""
        if self.n_pseudofermions:
            raise ValueError("integrator: pseudofermion terms are unbound; call bind(phis) first")
        counts = [0] * len(self.levels)
        q, p = self._integrate(0, q, p, float(tau), counts)
        return MDResult(q, p, tuple(counts))

    def _integrate(
        self, k: int, q: torch.Tensor, p: torch.Tensor, time: float, counts: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        level = self.levels[k]
        h = time / level.n_steps
        pattern = _step_pattern(level.scheme) * level.n_steps
        pending = 0.0  # momentum-update coefficient not yet applied (merged kicks)
        for kind, frac in pattern:
            if kind == "P":
                pending += frac * h
                continue
            if pending:
                p = p - pending * level.force(q)
                counts[k] += 1
                pending = 0.0
            if k + 1 < len(self.levels):
                q, p = self._integrate(k + 1, q, p, frac * h, counts)
            else:
                q = self.group.update(q, p, frac * h)
        if pending:
            p = p - pending * level.force(q)
            counts[k] += 1
        return q, p
