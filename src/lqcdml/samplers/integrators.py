"""Reversible, area-preserving molecular-dynamics integrators, nested on several time scales.

An integrator moves ``(q, p)`` along Hamilton's equations of
``H = K(p) + sum_terms S(q)``: ``dp/dt = -F(q)``, ``dq/dt = p`` (``U' = i P U`` on a
group). ``Level`` ``k`` integrates its own force terms with ``n_steps`` steps of a
symmetric scheme; each of its position updates of length ``c h`` is a full integration of
level ``k + 1`` over time ``c h`` (Sexton-Weingarten). The last level's position update
is the manifold's exponential map. Put expensive, smooth forces (fermions) on the
outer level and cheap, stiff ones (gauge) on the inner levels.

A scheme is data (``Scheme``, table ``SCHEMES``): one step of size ``h`` is
``P(a_0 h) Q(b_0 h) P(a_1 h) ... Q(b_{n-1} h) P(a_n h)`` (``P``: momentum update,
``Q``: position update), symmetric, with ``sum a = sum b = 1``; one routine executes every
table. The last momentum update of a step and the first of the next are merged (one force
evaluation), so a step costs ``n`` force evaluations and a trajectory ``n n_steps + 1``.
The energy violation over a fixed trajectory length is ``O(h^order)``.

Schemes (generated from ``SCHEMES``):
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import torch

from ..lattice import Manifold
from ..solvers import count_iterations
from ..theories import Action, PseudofermionAction

__all__ = ["OMELYAN_LAMBDA", "SCHEMES", "Integrator", "Level", "MDResult", "Scheme", "bind_terms"]

#: Omelyan-Mryglod-Folk second-order minimum-norm parameter
OMELYAN_LAMBDA = 0.1931833275037836

#: Omelyan-Mryglod-Folk fourth-order minimum-norm velocity version "4MN5FV": rho, theta,
#: vartheta, lambda (Comput. Phys. Commun. 151 (2003) 272, doi:10.1016/S0010-4655(02)00754-3,
#: scheme eq. (63), values eq. (71))
_OMF4_RHO = 0.2539785108410595
_OMF4_THETA = -0.03230286765269967
_OMF4_VARTHETA = 0.08398315262876693
_OMF4_LAMBDA = 0.6822365335719091

#: tolerance of the check that the coefficients of each kind sum to 1
_SUM_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Scheme:
    """One symmetric step as coefficient tables, in fractions of the step size ``h``.

    ``momentum = (a_0, ..., a_n)``, ``position = (b_0, ..., b_{n-1})``: the step is
    ``P(a_0 h) Q(b_0 h) P(a_1 h) ... Q(b_{n-1} h) P(a_n h)``, so it starts and ends with a
    momentum update. Checked at definition: ``n >= 1``, every coefficient finite and
    nonzero, the coefficients of each kind sum to 1 (to 1e-12), both sequences read the
    same backwards (time-reversible), ``order`` (of the energy violation, ``O(h^order)``)
    an even integer >= 2. With consecutive steps merged a step costs ``n`` force
    evaluations.
    """

    name: str
    order: int
    momentum: tuple[float, ...]
    position: tuple[float, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "momentum", tuple(self.momentum))
        object.__setattr__(self, "position", tuple(self.position))
        name, mom, pos = self.name, self.momentum, self.position
        if not isinstance(name, str) or not name:
            raise ValueError(f"scheme name = {name!r}; allowed: a non-empty string")
        order = self.order
        if isinstance(order, bool) or not isinstance(order, int) or order < 2 or order % 2:
            raise ValueError(f"scheme {name!r}: order = {order!r}; allowed: an even integer >= 2")
        if not pos or len(mom) != len(pos) + 1:
            raise ValueError(
                f"scheme {name!r}: {len(mom)} momentum and {len(pos)} position coefficients; "
                "allowed: n >= 1 position and n + 1 momentum (P first and last)"
            )
        for key, coefs in (("momentum", mom), ("position", pos)):
            for i, c in enumerate(coefs):
                number = isinstance(c, (int, float)) and not isinstance(c, bool)
                if not number or not math.isfinite(c) or c == 0:
                    raise ValueError(f"scheme {name!r}: {key}[{i}] = {c!r}; allowed: a finite nonzero number")
            total = math.fsum(coefs)
            if abs(total - 1.0) > _SUM_TOLERANCE:
                raise ValueError(f"scheme {name!r}: {key} = {coefs!r} sums to {total!r}; allowed: sum 1")
            if coefs != coefs[::-1]:
                raise ValueError(f"scheme {name!r}: {key} = {coefs!r}; allowed: a symmetric sequence (time-reversible)")

    @property
    def force_evaluations_per_step(self) -> int:
        """Force evaluations a step costs when consecutive steps are merged (``n``)."""
        return len(self.momentum) - 1

    @property
    def sequence(self) -> tuple[tuple[str, float], ...]:
        """One step as ``(kind, fraction of h)`` pairs, ``kind`` ``"P"`` or ``"Q"``."""
        out: list[tuple[str, float]] = []
        for a, b in zip(self.momentum, self.position):
            out += [("P", a), ("Q", b)]
        out.append(("P", self.momentum[-1]))
        return tuple(out)


def _table(*schemes: Scheme) -> dict[str, Scheme]:
    """Schemes by name (names unique)."""
    table: dict[str, Scheme] = {}
    for scheme in schemes:
        if scheme.name in table:
            raise ValueError(f"scheme name = {scheme.name!r}; allowed: a name not already in the table")
        table[scheme.name] = scheme
    return table


_OMF4_P = (1.0 - 2.0 * (_OMF4_LAMBDA + _OMF4_VARTHETA)) / 2.0
_OMF4_Q = 1.0 - 2.0 * (_OMF4_THETA + _OMF4_RHO)

#: the integration schemes by name; ``Level.scheme`` and ``sampler.integrator`` name one
SCHEMES: dict[str, Scheme] = _table(
    Scheme(
        "leapfrog",
        2,
        momentum=(0.5, 0.5),
        position=(1.0,),
        doc="Verlet, ``P(h/2) Q(h) P(h/2)``.",
    ),
    Scheme(
        "omelyan",
        2,
        momentum=(OMELYAN_LAMBDA, 1.0 - 2.0 * OMELYAN_LAMBDA, OMELYAN_LAMBDA),
        position=(0.5, 0.5),
        doc=(
            "second-order minimum norm, ``P(l h) Q(h/2) P((1-2l) h) Q(h/2) P(l h)`` with "
            "``l = 0.1931833275037836`` (Omelyan, Mryglod, Folk 2003); a roughly ten times "
            "smaller error constant than leapfrog at twice the cost a step."
        ),
    ),
    Scheme(
        "omelyan4",
        4,
        momentum=(_OMF4_VARTHETA, _OMF4_LAMBDA, _OMF4_P, _OMF4_P, _OMF4_LAMBDA, _OMF4_VARTHETA),
        position=(_OMF4_RHO, _OMF4_THETA, _OMF4_Q, _OMF4_THETA, _OMF4_RHO),
        doc=(
            'fourth-order minimum norm, velocity version "4MN5FV" (Omelyan, Mryglod, Folk, '
            "Comput. Phys. Commun. 151 (2003) 272, eqs. (63), (71)): ``P(v h) Q(r h) P(l h) Q(t h) "
            "P((1-2(l+v)) h/2) Q((1-2(t+r)) h) P((1-2(l+v)) h/2) Q(t h) P(l h) Q(r h) P(v h)`` "
            "with ``r = 0.2539785108410595``, ``t = -0.03230286765269967``, "
            "``v = 0.08398315262876693``, ``l = 0.6822365335719091``."
        ),
    ),
)

__doc__ = (__doc__ or "") + "".join(
    f"\n- ``{s.name}`` (order {s.order}, force evaluations a step: {s.force_evaluations_per_step}): {s.doc}\n"
    for s in SCHEMES.values()
)

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
    """One time scale: the action terms whose forces act here, steps and scheme (``SCHEMES``)."""

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
        terms = cast(tuple[Action, ...], self.terms)  # bound before molecular dynamics (Integrator.bind)
        total = terms[0].force(q)
        for term in terms[1:]:
            total = total + term.force(q)
        return total


@dataclass(frozen=True)
class MDResult:
    """The end of a molecular-dynamics trajectory and its cost."""

    q: torch.Tensor
    p: torch.Tensor
    force_evaluations: tuple[int, ...]  # per level, outermost first
    solver_iterations: tuple[int, ...] = ()  # CG iterations of each level's forces, outermost first


@dataclass(frozen=True)
class Integrator:
    """Nested multi-time-scale symplectic integrator on fields of ``group`` (immutable).

    ``levels[0]`` is the outermost (coarsest) level. Pseudofermion terms must be bound to
    their fields (``bind``) before the integrator moves anything.
    """

    group: Manifold
    levels: tuple[Level, ...]
    _n_pseudofermions: int = field(init=False, repr=False, compare=False)

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
        terms = cast(tuple[Action, ...], self.terms)  # bound before molecular dynamics (bind)
        total = terms[0].action(q)
        for term in terms[1:]:
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
        counts, iterations = [0] * len(self.levels), [0] * len(self.levels)
        q, p = self._integrate(0, q, p, float(tau), counts, iterations)
        return MDResult(q, p, tuple(counts), tuple(iterations))

    def _integrate(
        self, k: int, q: torch.Tensor, p: torch.Tensor, time: float, counts: list[int], iterations: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Level ``k`` over ``time``: its scheme's sequence ``n_steps`` times, for any table.

        Consecutive momentum updates accumulate (``pending``) into one kick: the last of a step
        and the first of the next cost one force evaluation. A position update of the last
        level is the exponential map, of another level a full integration of level ``k + 1``.
        """
        level = self.levels[k]
        h = time / level.n_steps
        pattern = SCHEMES[level.scheme].sequence * level.n_steps
        pending = 0.0  # momentum-update coefficient not yet applied (merged kicks)
        for kind, frac in pattern:
            if kind == "P":
                pending += frac * h
                continue
            if pending:
                p = self._kick(k, q, p, pending, counts, iterations)
                pending = 0.0
            if k + 1 < len(self.levels):
                q, p = self._integrate(k + 1, q, p, frac * h, counts, iterations)
            else:
                q = self.group.update(q, p, frac * h)
        if pending:
            p = self._kick(k, q, p, pending, counts, iterations)
        return q, p

    def _kick(
        self, k: int, q: torch.Tensor, p: torch.Tensor, eps: float, counts: list[int], iterations: list[int]
    ) -> torch.Tensor:
        """``p - eps F_k(q)``, counting the force evaluation and its CG iterations for level ``k``."""
        with count_iterations() as cost:
            p = p - eps * self.levels[k].force(q)
        counts[k] += 1
        iterations[k] += cost.total
        return p
