"""Theory kinds: the field, its action, its start and its fermions, per ``theory.name``.

A theory kind owns the ``theory`` section (its dataclass adds its couplings to the shared
``name`` and ``lattice``) and answers what the rest of the package asks of a theory: the
manifold of its fields, its action, the per-configuration observable its stores record,
hot and cold starts, and its Dirac operator and pseudofermion terms where it has quarks.

Built in: ``phi4`` (real scalar, ``theories.Phi4Action``), ``u1`` and ``su`` (Wilson gauge
action ``S = -(beta/N) sum_P Re tr U_P``; ``su`` with staggered or Wilson quarks).

Importing this module imports neither torch nor the physics packages (the workflow composes
and validates configs at parse time): the kinds' functions import what they use when called,
and the checks read ``PHI4_CONVENTIONS``, which mirrors ``theories.phi4.CONVENTIONS`` (a test
keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..config.errors import fail
from ..config.schema import TheoryConfig
from .registry import Kind, Registry

if TYPE_CHECKING:
    import torch

    from ..lattice import GaugeGroup, Manifold
    from ..theories import Action

__all__ = [
    "TheoryKind",
    "THEORIES",
    "Phi4Theory",
    "U1Theory",
    "SUTheory",
    "FERMIONS",
    "PHI4_CONVENTIONS",
    "staggered_fields",
    "theory_kind",
]

FERMIONS = ("none", "staggered", "wilson")
#: ``theories.phi4.CONVENTIONS`` (a test keeps them equal): the checks import no torch
PHI4_CONVENTIONS = ("flow", "standard")

#: ``(name, fields [B, ...] -> [B])``: the observable an ensemble store records per configuration
CheapObservable = tuple[str, Callable[["torch.Tensor"], "torch.Tensor"]]


@dataclass(frozen=True, kw_only=True)
class TheoryKind(Kind):
    """A theory: ``group(th)`` the manifold of one field value, ``action(th)`` the action
    (value and force), ``links``: fields are links ``[d, L..., (N, N)]`` (else site values
    ``[L...]``), ``cheap_observable(th)``, ``hot_start(th, gens, shape, dtype, device)`` (a
    random start, chain ``b`` from ``gens[b]``), and for theories with quarks
    ``fermion_operator(th)`` (``None`` without) and ``fermion_terms(th, tol, rational_tol)``
    (the pseudofermion actions of the dynamical flavours; empty when quenched).

    ``fermions(th)`` and ``dynamical(th)``: whether ``th`` has a Dirac operator and whether it
    has dynamical flavours, answered from the config alone (the checks ask them; building the
    operator imports torch). ``None``: build the operator and the terms and look.
    ``control_variate``: ``"module:NAME"`` of its Schwinger-Dyson control-variate problem
    (``estimators.cv_problems.ControlVariateProblem``; ``None``: control variates do not apply)."""

    group: Callable[[Any], Manifold]
    action: Callable[[Any], Action]
    links: bool
    cheap_observable: Callable[[Any], CheapObservable]
    hot_start: Callable[..., torch.Tensor]
    fermion_operator: Callable[[Any], Any] = field(default=lambda th: None)
    fermion_terms: Callable[[Any, float, float], list] = field(default=lambda th, tol, rational_tol: [])
    fermions: Callable[[Any], bool] | None = None
    dynamical: Callable[[Any], bool] | None = None
    control_variate: str | None = None

    def site_shape(self, th: TheoryConfig) -> tuple[int, ...]:
        """Per-chain shape without internal axes: ``[L...]`` site values, ``[d, L...]`` links."""
        lattice = tuple(int(x) for x in th.lattice)
        return (len(lattice), *lattice) if self.links else lattice

    def field_shape(self, th: TheoryConfig, n_chains: int) -> tuple[int, ...]:
        """``[B, *site_shape, *internal]`` of ``n_chains`` chains' fields."""
        group = self.group(th)
        # internal axes: a matrix group (SU(N)), a GaugeGroup
        internal = (cast("GaugeGroup", group).n,) * 2 if group.internal_ndim else ()
        return (int(n_chains), *self.site_shape(th), *internal)

    def field_dtype(self, th: TheoryConfig, precision: str) -> torch.dtype:
        """The dtype of the fields at ``precision`` (``float64``, ``float32``): complex for
        matrix groups, real for angles and scalars."""
        import torch

        double = precision == "float64"
        if self.group(th).internal_ndim:
            return torch.complex128 if double else torch.complex64
        return torch.float64 if double else torch.float32

    def start(self, th: TheoryConfig, start: str, gens, dtype: torch.dtype, device) -> torch.Tensor:
        """Start fields ``[B, ...]`` of ``len(gens)`` chains: ``hot`` (``hot_start``) or ``cold``
        (unit links, zero scalars)."""
        import torch

        from ..lattice import Real

        shape = self.site_shape(th)
        if start == "hot":
            return self.hot_start(th, gens, shape, dtype, device)
        group = self.group(th)
        if isinstance(group, Real):
            return torch.zeros((len(gens), *shape), dtype=dtype, device=device)
        # a theory's fields are real scalars or gauge links: not Real, a GaugeGroup
        return cast("GaugeGroup", group).identity((len(gens), *shape), dtype=dtype, device=device)

    def has_fermions(self, th: TheoryConfig) -> bool:
        """Whether the theory has a Dirac operator (``fermion_operator(th)`` is not ``None``)."""
        if self.fermions is not None:
            return self.fermions(th)
        return self.fermion_operator(th) is not None

    def has_dynamical_fermions(self, th: TheoryConfig) -> bool:
        """Whether the theory's measure includes a fermion determinant (pseudofermion terms)."""
        if self.dynamical is not None:
            return self.dynamical(th)
        return bool(self.fermion_terms(th, 1e-10, 1e-12))


THEORIES: Registry[TheoryKind] = Registry("theory", "theory.name")


def theory_kind(th: TheoryConfig) -> TheoryKind:
    """The kind of the theory section ``th``."""
    return THEORIES.lookup(th.name)


# --- the dataclasses -----------------------------------------------------------------------


@dataclass
class Phi4Theory(TheoryConfig):
    """Real scalar phi^4: ``m2``, ``lam`` in the ``convention`` of ``theories.phi4``."""

    name: str = "phi4"
    m2: float = 1.0
    lam: float = 0.0
    convention: str = "flow"


@dataclass
class U1Theory(TheoryConfig):
    """Compact U(1) with the Wilson action at ``beta``; ``fermion = staggered`` with
    ``n_flavours = 0`` adds the staggered operator for valence measurements (quenched)."""

    name: str = "u1"
    beta: float = 1.0
    fermion: str = "none"
    fermion_mass: float = 0.3
    n_flavours: int = 4
    antiperiodic: bool = True


@dataclass
class SUTheory(U1Theory):
    """SU(``n_colors``) with the Wilson action at ``beta`` and ``fermion``: ``none``,
    ``staggered`` (``n_flavours >= 1`` continuum flavours, rooted by RHMC where Nf is not a
    multiple of 4; ``0``: quenched, the operator for valence measurements only) or ``wilson``
    (``n_flavours = 2``), bare mass ``fermion_mass``, antiperiodic in time unless
    ``antiperiodic = false``."""

    name: str = "su"
    n_colors: int = 3


# --- shared pieces -------------------------------------------------------------------------


def _real(th) -> Manifold:
    from ..lattice import Real

    return Real()


def _u1(th) -> Manifold:
    from ..lattice import U1

    return U1()


def _su(th) -> Manifold:
    from ..lattice import SU

    return SU(th.n_colors)


def _phi4_action(th) -> Action:
    from ..theories import Phi4Action

    return Phi4Action(th.m2, th.lam, th.convention)


def _abs_magnetization(th) -> CheapObservable:
    from ..observables import abs_magnetization

    return "abs_magnetization", abs_magnetization


def _gauge_group(th) -> GaugeGroup:
    """The group of the gauge theory ``th`` (u1, su): a ``GaugeGroup``."""
    return cast("GaugeGroup", THEORIES.lookup(th.name).group(th))  # TheoryKind.group: any Manifold


def _gauge_action(th) -> Action:
    from ..theories import WilsonGaugeAction

    return WilsonGaugeAction(th.beta, _gauge_group(th))


def _plaquette(th) -> CheapObservable:
    from ..observables import plaquette

    group = _gauge_group(th)
    return "plaquette", lambda links: plaquette(links, group)


def _haar(th, gens, shape, dtype, device) -> torch.Tensor:
    return _gauge_group(th).haar(gens, shape, dtype)


def _scalar_start(th, gens, shape, dtype, device) -> torch.Tensor:
    """Scalars ``0.5 N(0, 1)`` per site: a unit-normal start puts phi^4 at strong coupling so
    far up its quartic wall that molecular dynamics at equilibrium step sizes is unstable."""
    from ..lattice import randn

    return 0.5 * randn(gens, shape, dtype, device)


def staggered_fields(n_flavours: int) -> list[int]:
    """Pseudofermion fields for ``n_flavours``: 8 (full lattice), 4 (even sites), then one
    RHMC field for the remainder 1, 2 or 3."""
    rest = n_flavours % 4
    return [8] * (n_flavours // 8) + [4] * ((n_flavours % 8) // 4) + ([rest] if rest else [])


def _has_operator(th) -> bool:
    """Whether ``th`` has a Dirac operator (``_fermion_operator`` is not ``None``)."""
    return th.fermion in ("staggered", "wilson")


def _has_dynamical(th) -> bool:
    """Whether ``_fermion_terms(th)`` is not empty: Wilson quarks, or staggered with flavours."""
    return _has_operator(th) and (th.fermion == "wilson" or bool(staggered_fields(th.n_flavours)))


def _fermion_operator(th):
    """The Dirac operator of ``th`` (``None`` without fermions)."""
    from ..theories import StaggeredOperator, WilsonOperator

    group = THEORIES.lookup(th.name).group(th)
    if th.fermion == "staggered":
        return StaggeredOperator(th.fermion_mass, group, th.antiperiodic)
    if th.fermion == "wilson":
        return WilsonOperator(th.fermion_mass, group, th.antiperiodic)
    return None


def _fermion_terms(th, tol: float = 1e-10, rational_tol: float = 1e-12) -> list:
    """The pseudofermion actions of the dynamical flavours (none when quenched)."""
    from ..theories import StaggeredPseudofermion, WilsonPseudofermion

    op = _fermion_operator(th)
    if op is None:
        return []
    if th.fermion == "wilson":
        return [WilsonPseudofermion(op, tol=tol)]
    return [
        StaggeredPseudofermion(op, nf, tol=tol, rational_tol=rational_tol) for nf in staggered_fields(th.n_flavours)
    ]


# --- validation ----------------------------------------------------------------------------


def _lattice_checks(th, p: str) -> None:
    if len(th.lattice) < 1:
        fail(p + "theory.lattice", list(th.lattice), "a list of at least one extent")
    for mu, extent in enumerate(th.lattice):
        if extent < 2:
            fail(f"{p}theory.lattice[{mu}]", extent, "extents >= 2")


def _phi4_checks(ens, p: str) -> None:
    th = ens.theory
    _lattice_checks(th, p)
    if th.lam < 0:
        fail(p + "theory.lam", th.lam, "lam >= 0")
    if th.lam == 0 and th.m2 <= 0:
        fail(p + "theory.m2", th.m2, "m2 > 0 when lam = 0 (free field must be massive)")
    if th.convention not in PHI4_CONVENTIONS:
        fail(p + "theory.convention", th.convention, ", ".join(PHI4_CONVENTIONS))


def _gauge_checks(ens, p: str) -> None:
    th = ens.theory
    _lattice_checks(th, p)
    if len(th.lattice) < 2:
        fail(p + "theory.lattice", list(th.lattice), "at least 2 dimensions for a gauge theory")
    if not th.beta > 0:
        fail(p + "theory.beta", th.beta, "beta > 0")
    if th.fermion not in FERMIONS:
        fail(p + "theory.fermion", th.fermion, ", ".join(FERMIONS))
    if th.fermion == "staggered":
        for mu, extent in enumerate(th.lattice):
            if extent % 2:
                fail(f"{p}theory.lattice[{mu}]", extent, "even extents for staggered fermions (even-odd checkerboard)")
        if not th.fermion_mass > 0:
            fail(p + "theory.fermion_mass", th.fermion_mass, "fermion_mass > 0 for staggered fermions")
        if th.n_flavours < 0:
            fail(
                p + "theory.n_flavours",
                th.n_flavours,
                "n_flavours >= 0 for staggered fermions (0: quenched, valence quarks only)",
            )
    if th.fermion == "wilson":
        if th.n_flavours != 2:
            fail(p + "theory.n_flavours", th.n_flavours, "2 for Wilson fermions")
        if not th.fermion_mass > -len(th.lattice):
            fail(p + "theory.fermion_mass", th.fermion_mass, f"fermion_mass > -{len(th.lattice)} (kappa > 0)")


def _u1_checks(ens, p: str) -> None:
    th = ens.theory
    if th.fermion != "none" and (th.fermion != "staggered" or th.n_flavours != 0):
        fail(
            p + "theory.fermion",
            th.fermion,
            "none for theory.name = 'u1', or staggered with n_flavours = 0 "
            "(U(1) takes quenched valence staggered quarks; dynamical fermions need SU(N))",
        )
    _gauge_checks(ens, p)
    if len(th.lattice) != 2 and not ens.measure.observables:
        fail(p + "measure.observables", [], "an explicit list for U(1) outside 2D (the default has the 2D charge)")


def _su_checks(ens, p: str) -> None:
    if ens.theory.n_colors not in (2, 3):
        fail(p + "theory.n_colors", ens.theory.n_colors, "2 or 3")
    _gauge_checks(ens, p)


# --- the built-in kinds --------------------------------------------------------------------

THEORIES.register(
    TheoryKind(
        name="phi4",
        config=Phi4Theory,
        validate=_phi4_checks,
        links=False,
        group=_real,
        action=_phi4_action,
        cheap_observable=_abs_magnetization,
        hot_start=_scalar_start,
        control_variate="lqcdml.estimators.cv_problems:SCALAR_TIMESLICE",
        doc="real scalar phi^4 (2D, 3D, ...)",
    )
)
#: what the gauge theories share: links, the Wilson action, the plaquette, Haar starts, quarks
_GAUGE: dict = dict(
    links=True,
    action=_gauge_action,
    cheap_observable=_plaquette,
    hot_start=_haar,
    fermion_operator=_fermion_operator,
    fermion_terms=_fermion_terms,
    fermions=_has_operator,
    dynamical=_has_dynamical,
)
THEORIES.register(
    TheoryKind(
        name="u1",
        config=U1Theory,
        validate=_u1_checks,
        group=_u1,
        **_GAUGE,
        control_variate="lqcdml.estimators.cv_problems:GAUGE_PLAQUETTE",
        doc="compact U(1) gauge theory, Wilson action (quenched; valence staggered quarks)",
    )
)
THEORIES.register(
    TheoryKind(
        name="su",
        config=SUTheory,
        validate=_su_checks,
        group=_su,
        **_GAUGE,
        doc="SU(N) gauge theory, Wilson action, with dynamical staggered (RHMC) or Wilson quarks",
    )
)
