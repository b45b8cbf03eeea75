"""Sampler kinds: HMC (with fermions on nested time scales), Hasenbusch HMC, self-learning HMC,
flow MCMC, field-transformed HMC.

A sampler kind reads the shared molecular-dynamics keys it declares (``reads``) and its own
``sampler.options`` (its ``config`` dataclass), says whether its chain needs a trained model
and of which family, which cost counters its stores record, and builds the sampler.

Importing this module imports neither torch nor ``samplers`` (the workflow validates configs
at parse time): the builders import the samplers when called, and the checks read
``INTEGRATOR_NAMES``, which mirrors ``samplers.integrators.SCHEMES`` (a test keeps them equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from ..config.errors import fail
from .registry import Kind, Registry
from .theories import THEORIES, CheapObservable, theory_kind

if TYPE_CHECKING:
    import torch

    from ..nn import FlowModel

__all__ = [
    "BuildContext",
    "SamplerKind",
    "SAMPLERS",
    "HMC_KEYS",
    "INTEGRATOR_NAMES",
    "HMCOptions",
    "HasenbuschOptions",
    "SLHMCOptions",
    "sampler_options",
    "effective_fermion_terms",
    "validate_hmc",
]

#: the keys of the sampler section that HMC-type samplers read
HMC_KEYS = ("integrator", "n_steps", "trajectory_length", "gauge_steps", "solver_tol", "md_solver_tol", "rational_tol")
#: the cost counters HMC-type stores record per configuration
HMC_COUNTERS = ("cg_md", "cg_metropolis")
#: the names of ``samplers.integrators.SCHEMES`` (a test keeps them equal): the checks of the
#: sampler section import no torch
INTEGRATOR_NAMES = ("leapfrog", "omelyan", "omelyan4")


def _cpu() -> torch.device:
    import torch

    return torch.device("cpu")


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: the ensemble config, the field dtype, the device and (for
    samplers that need one) the trained model."""

    ensemble: Any  # EnsembleConfig
    dtype: torch.dtype
    device: torch.device = field(default_factory=_cpu)
    model: torch.nn.Module | None = None


@dataclass(frozen=True, kw_only=True)
class SamplerKind(Kind):
    """A sampler: ``build(ctx) -> Sampler``; ``config``: the dataclass of its
    ``sampler.options`` (``None``: no options).

    ``reads``: the keys of the shared ``sampler`` section it uses (with ``name`` and its
    options they are the sampler's part of the chain hash). ``model_family``: the family of
    trained model its chain needs (``flow``, ``smearing``; ``None``: none), so the ``model`` and
    ``train`` sections belong to its chain definition and generation needs ``--model``.
    ``theories``: the theory kinds it samples (``None``: every theory). ``observable``:
    ``theory config -> (name, fields -> [B])``, the cheap observable its store records per
    configuration (``None``: the theory's). ``counters``: ``StepInfo.counters`` its stores
    record per configuration (cost: CG iterations, ...). ``reference``: an exact baseline
    that the analysis compares every other sampler of the same theory with. ``label``: the
    name of its effective action in tables and figures (``None``: the model's kind).
    ``mismatch_terms``: for self-learning samplers, ``ensemble -> (exact, effective)``, the
    pseudofermion terms whose action difference the SLHMC trainer regresses (``effective``
    unsmeared; ``exact[i]`` and ``effective[i]`` share a field, and ``exact`` are the first
    pseudofermion terms of the sampler's target)."""

    build: Callable[[BuildContext], Any]
    reads: tuple[str, ...] = ()
    model_family: str | None = None
    theories: tuple[str, ...] | None = None
    observable: Callable[[Any], CheapObservable] | None = None
    counters: tuple[str, ...] = ()
    reference: bool = False
    label: str | None = None
    mismatch_terms: Callable[[Any], tuple[list, list]] | None = None

    @property
    def options(self) -> type | None:
        """The dataclass of ``sampler.options`` (the kind's ``config``)."""
        return self.config

    @property
    def needs_model(self) -> bool:
        return self.model_family is not None

    def samples(self, theory: str) -> bool:
        """Whether it samples the theory kind ``theory``."""
        return self.theories is None or theory in self.theories

    def chain_sections(self) -> tuple[str, ...]:
        """The config sections that define this sampler's chain."""
        return ("theory", "sampler", "chain") + (("model", "train") if self.needs_model else ())

    def cheap_observable(self, th) -> CheapObservable:
        """``(name, fn)``: the per-configuration observable its stores record."""
        return (self.observable or theory_kind(th).cheap_observable)(th)


SAMPLERS: Registry[SamplerKind] = Registry("sampler", "sampler.name")


def validate_hmc(ens, p: str) -> None:
    """The molecular-dynamics keys of HMC-type samplers."""
    sa = ens.sampler
    if sa.integrator not in INTEGRATOR_NAMES:
        fail(p + "sampler.integrator", sa.integrator, ", ".join(INTEGRATOR_NAMES))
    if sa.n_steps < 1:
        fail(p + "sampler.n_steps", sa.n_steps, "n_steps >= 1")
    if sa.gauge_steps < 1:
        fail(p + "sampler.gauge_steps", sa.gauge_steps, "gauge_steps >= 1")
    if not 0 < sa.solver_tol < 1e-3:
        fail(p + "sampler.solver_tol", sa.solver_tol, "0 < solver_tol < 1e-3")
    md = sa.md_solver_tol
    if md is not None and (isinstance(md, bool) or not isinstance(md, (int, float)) or not 0 < md < 1):
        fail(p + "sampler.md_solver_tol", md, "0 < md_solver_tol < 1, or null (solver_tol)")
    if not 1e-14 <= sa.rational_tol <= 1e-4:
        fail(
            p + "sampler.rational_tol", sa.rational_tol, "1e-14 <= rational_tol <= 1e-4 (float64 resolves about 1e-14)"
        )
    if not sa.trajectory_length > 0:
        fail(p + "sampler.trajectory_length", sa.trajectory_length, "trajectory_length > 0")


def sampler_fermion_terms(theory, s) -> list:
    """The pseudofermion actions of ``theory`` at the residuals of the sampler section ``s``:
    ``solver_tol`` for the heat bath and the Metropolis test's actions, ``md_solver_tol``
    (where set) for the molecular-dynamics forces (``theories.base.force_solver_tol``)."""
    terms = theory_kind(theory).fermion_terms(theory, s.solver_tol, s.rational_tol)
    return terms if s.md_solver_tol is None else [replace(t, force_tol=float(s.md_solver_tol)) for t in terms]


# --- HMC -----------------------------------------------------------------------------------


@dataclass
class HMCOptions:
    """``sampler.options`` of HMC: ``trajectory_jitter`` (relative; 0: fixed length)."""

    trajectory_jitter: float = 0.0


def build_hmc(ctx: BuildContext):
    """HMC; with fermions a two-level integrator: fermion forces outside, gauge inside."""
    from ..samplers import HMC, Integrator, Level

    ens = ctx.ensemble
    s, kind = ens.sampler, theory_kind(ens.theory)
    action = kind.action(ens.theory)
    fermions = sampler_fermion_terms(ens.theory, s)
    jitter = float(s.options.get("trajectory_jitter", 0.0))
    if not fermions:
        return HMC(Integrator.single(action, s.n_steps, s.integrator), s.trajectory_length, trajectory_jitter=jitter)
    levels = (Level(tuple(fermions), s.n_steps, s.integrator), Level((action,), s.gauge_steps, s.integrator))
    return HMC(Integrator(action.group, levels), s.trajectory_length, trajectory_jitter=jitter)


def _validate_hmc_options(ens, p: str) -> None:
    validate_hmc(ens, p)
    j = ens.sampler.options.get("trajectory_jitter", 0.0)
    if not isinstance(j, (int, float)) or not 0.0 <= j < 1.0:
        fail(p + "sampler.options.trajectory_jitter", j, "0 <= trajectory_jitter < 1 (0: a fixed length)")


# --- Hasenbusch HMC -------------------------------------------------------------------------


@dataclass
class HasenbuschOptions:
    """``sampler.options`` of Hasenbusch HMC: ``masses`` (``m_1 < m_2 < ...``, all above
    ``theory.fermion_mass``), ``steps`` (one per mass: the steps of each inner fermion level
    per position update of the level outside it; the lightest ratio has ``sampler.n_steps``,
    the gauge level ``sampler.gauge_steps``), ``trajectory_jitter`` as for HMC."""

    masses: list[float] = field(default_factory=lambda: [0.4])
    steps: list[int] = field(default_factory=lambda: [2])
    trajectory_jitter: float = 0.0


def build_hasenbusch(ctx: BuildContext):
    """HMC on the determinant split at ``options.masses``, one level per factor (``samplers.hasenbusch``)."""
    from ..samplers import hasenbusch_hmc

    ens = ctx.ensemble
    s, kind = ens.sampler, theory_kind(ens.theory)
    o = s.options
    return hasenbusch_hmc(
        kind.action(ens.theory),
        sampler_fermion_terms(ens.theory, s),
        [float(m) for m in o["masses"]],
        s.n_steps,
        [int(n) for n in o["steps"]],
        s.gauge_steps,
        s.integrator,
        s.trajectory_length,
        float(o.get("trajectory_jitter", 0.0)),
    )


def _validate_hasenbusch(ens, p: str) -> None:
    _validate_hmc_options(ens, p)
    _validate_hasenbusch_split(ens, p)


def _validate_hasenbusch_split(ens, p: str) -> None:
    """``options.masses`` and ``options.steps`` of a sampler that splits the light determinant."""
    th, o = ens.theory, ens.sampler.options
    if not THEORIES.lookup(th.name).has_dynamical_fermions(th):
        fail(p + "theory.fermion", th.fermion, "staggered or wilson with dynamical flavours (n_flavours >= 1)")
    masses, steps = o["masses"], o["steps"]
    numbers = isinstance(masses, list) and all(
        isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m) for m in masses
    )
    chain = [th.fermion_mass, *masses] if numbers else []
    if not numbers or not masses or any(b <= a for a, b in zip(chain, chain[1:])):
        fail(
            p + "sampler.options.masses",
            masses,
            f"a non-empty list of numbers, strictly increasing, all above theory.fermion_mass = {th.fermion_mass}",
        )
    if (
        not isinstance(steps, list)
        or len(steps) != len(masses)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in steps)
    ):
        fail(p + "sampler.options.steps", steps, f"one integer >= 1 per Hasenbusch mass ({len(masses)})")


# --- self-learning HMC ---------------------------------------------------------------------


@dataclass
class SLHMCOptions:
    """``sampler.options`` of self-learning HMC: ``m_eff``, the fermion mass of the
    effective action of the molecular dynamics (the exact action keeps ``theory.fermion_mass``)."""

    m_eff: float = 0.4


def effective_fermion_terms(ens) -> list:
    """The (unsmeared) pseudofermion actions of ``ens``'s theory at mass ``m_eff``."""
    s = ens.sampler
    theory = replace(ens.theory, fermion_mass=float(s.options["m_eff"]))
    return sampler_fermion_terms(theory, s)


def slhmc_mismatch_terms(ens) -> tuple[list, list]:
    """SLHMC's loss terms: the exact light pseudofermion actions and the unsmeared ones at ``m_eff``."""
    s, th = ens.sampler, theory_kind(ens.theory)
    return th.fermion_terms(ens.theory, s.solver_tol, s.rational_tol), effective_fermion_terms(ens)


def _smearing_network(ctx: BuildContext):
    """The trained network of a self-learning sampler that needs one (``None``: thin links)."""
    kind = SAMPLERS.lookup(ctx.ensemble.sampler.name)
    if kind.needs_model and ctx.model is None:
        raise ValueError(
            f"sampler.name = {ctx.ensemble.sampler.name!r} needs a trained model (lqcdml generate --model PATH)"
        )
    return ctx.model if kind.needs_model else None


def build_slhmc(ctx: BuildContext):
    """Self-learning HMC: MD with the fermion action at ``m_eff`` on links smeared by
    ``ctx.model`` (thin links without a model kind), heat bath and Metropolis exact."""
    from ..samplers import SmearedPseudofermion, slhmc

    ens, s = ctx.ensemble, ctx.ensemble.sampler
    net = _smearing_network(ctx)
    th = theory_kind(ens.theory)
    effective = [SmearedPseudofermion(t, net) for t in effective_fermion_terms(ens)]
    return slhmc(
        th.action(ens.theory),
        sampler_fermion_terms(ens.theory, s),
        effective,
        s.n_steps,
        s.gauge_steps,
        s.integrator,
        s.trajectory_length,
    )


def _validate_slhmc(ens, p: str) -> None:
    validate_hmc(ens, p)
    th = ens.theory
    if not THEORIES.lookup(th.name).has_dynamical_fermions(th):
        fail(
            p + "theory.fermion",
            th.fermion,
            "staggered or wilson with dynamical flavours (self-learning HMC smears a fermion action; n_flavours >= 1)",
        )
    m_eff = ens.sampler.options["m_eff"]
    if not isinstance(m_eff, (int, float)) or not math.isfinite(m_eff):
        fail(p + "sampler.options.m_eff", m_eff, "a finite number")
    if th.fermion == "staggered" and not m_eff > 0:
        fail(p + "sampler.options.m_eff", m_eff, "m_eff > 0 for staggered fermions")
    if th.fermion == "wilson" and not m_eff > -len(th.lattice):
        fail(p + "sampler.options.m_eff", m_eff, f"m_eff > -{len(th.lattice)} (kappa > 0)")


# --- self-learning HMC on the lightest Hasenbusch ratio -------------------------------------


@dataclass
class SLHMCHasenbuschOptions:
    """``sampler.options`` of SLHMC on the lightest Hasenbusch ratio: ``masses`` and ``steps`` as
    for ``hasenbusch``; ``m_eff`` (``fermion_mass < m_eff < masses[0]``), the light mass of the
    effective ratio ``ratio(m_eff, m_1)`` that the molecular dynamics integrates on smeared links."""

    m_eff: float = 0.4
    masses: list[float] = field(default_factory=lambda: [0.6])
    steps: list[int] = field(default_factory=lambda: [2])


def _split_light(ens) -> tuple[list, list]:
    """The lightest ratios of ``ens``'s split determinant, exact (at ``m``) and at ``m_eff``."""
    from ..theories import hasenbusch_split, ratio_at_mass

    s, th = ens.sampler, theory_kind(ens.theory)
    masses = [float(m) for m in s.options["masses"]]
    exact = [hasenbusch_split(t, masses)[0] for t in th.fermion_terms(ens.theory, s.solver_tol, s.rational_tol)]
    m_eff = float(s.options["m_eff"])
    return exact, [ratio_at_mass(t, m_eff) for t in exact]


def build_slhmc_hasenbusch(ctx: BuildContext):
    """SLHMC with the network on the lightest ratio (``samplers.slhmc_hasenbusch``)."""
    from ..samplers import SmearedPseudofermion, slhmc_hasenbusch
    from ..theories import ratio_at_mass

    ens, s = ctx.ensemble, ctx.ensemble.sampler
    net = _smearing_network(ctx)
    th = theory_kind(ens.theory)
    m_eff = float(s.options["m_eff"])

    def effective(ratio):
        return SmearedPseudofermion(ratio_at_mass(ratio, m_eff), net)

    return slhmc_hasenbusch(
        th.action(ens.theory),
        sampler_fermion_terms(ens.theory, s),
        [float(m) for m in s.options["masses"]],
        effective,
        s.n_steps,
        [int(n) for n in s.options["steps"]],
        s.gauge_steps,
        s.integrator,
        s.trajectory_length,
    )


def _validate_slhmc_hasenbusch(ens, p: str) -> None:
    validate_hmc(ens, p)
    _validate_hasenbusch_split(ens, p)
    th, o = ens.theory, ens.sampler.options
    m_eff = o["m_eff"]
    number = isinstance(m_eff, (int, float)) and not isinstance(m_eff, bool)
    if not number or not th.fermion_mass < m_eff < o["masses"][0]:
        fail(
            p + "sampler.options.m_eff",
            m_eff,
            f"theory.fermion_mass < m_eff < options.masses[0] ({th.fermion_mass} < m_eff < {o['masses'][0]})",
        )


# --- flow MCMC -----------------------------------------------------------------------------


def build_flow_mcmc(ctx: BuildContext):
    """Independence Metropolis with proposals from the trained flow ``ctx.model``."""
    from ..samplers import FlowMCMC

    if ctx.model is None:
        raise ValueError("sampler.name = 'flow' needs a trained model (lqcdml generate --model PATH)")
    th = ctx.ensemble.theory
    # model_family "flow": a FlowModel (check_model_fits; FlowMCMC checks it again)
    return FlowMCMC(cast("FlowModel", ctx.model), theory_kind(th).action(th).action, field_dtype=ctx.dtype)


# --- field-transformed HMC ----------------------------------------------------------------


def build_fthmc(ctx: BuildContext):
    """HMC of ``V`` on the target action pulled back through the trained flow ``ctx.model``
    (its layers; the prior is not used), chain fields ``U = F(V)``."""
    from ..nn.prior import cast_precision
    from ..nn.transform import real_dtype
    from ..samplers import FieldTransformedHMC

    if ctx.model is None:
        raise ValueError("sampler.name = 'fthmc' needs a trained model (lqcdml generate --model PATH)")
    ens, s = ctx.ensemble, ctx.ensemble.sampler
    transform = cast_precision(cast("FlowModel", ctx.model), real_dtype(ctx.dtype))
    jitter = float(s.options.get("trajectory_jitter", 0.0))
    return FieldTransformedHMC(
        theory_kind(ens.theory).action(ens.theory), transform, s.n_steps, s.integrator, s.trajectory_length, jitter
    )


def _validate_fthmc(ens, p: str) -> None:
    _validate_hmc_options(ens, p)
    th = ens.theory
    if THEORIES.lookup(th.name).has_dynamical_fermions(th):
        fail(p + "theory.fermion", th.fermion, "none for fthmc (pure gauge; flows with fermions come later)")


# --- the built-in kinds --------------------------------------------------------------------

SAMPLERS.register(
    SamplerKind(
        name="hmc",
        build=build_hmc,
        reads=HMC_KEYS,
        config=HMCOptions,
        validate=_validate_hmc_options,
        counters=HMC_COUNTERS,
        reference=True,
        doc="hybrid Monte Carlo (RHMC with rooted staggered fermions)",
    )
)


def _register_self_learning(name: str, build, options, validate, mismatch, doc: str, doc_thin: str) -> None:
    """A self-learning sampler with a trained smearing network (``name``) and without one
    (``name_thin``, thin links), sharing builder, options, checks and training terms."""
    common: dict = dict(
        build=build,
        reads=HMC_KEYS,
        config=options,
        validate=validate,
        theories=("su",),
        counters=HMC_COUNTERS,
        mismatch_terms=mismatch,
    )
    SAMPLERS.register(SamplerKind(name=name, model_family="smearing", doc=doc, **common))
    SAMPLERS.register(SamplerKind(name=f"{name}_thin", label="no network", doc=doc_thin, **common))


_register_self_learning(
    "slhmc",
    build_slhmc,
    SLHMCOptions,
    _validate_slhmc,
    slhmc_mismatch_terms,
    "self-learning HMC: MD on the fermion action at m_eff on links smeared by a trained network",
    "self-learning HMC without a network: MD on the fermion action at m_eff on thin links",
)
SAMPLERS.register(
    SamplerKind(
        name="flow",
        build=build_flow_mcmc,
        model_family="flow",
        theories=("phi4", "u1", "su"),
        doc="independence Metropolis with proposals from a trained normalizing flow",
    )
)


SAMPLERS.register(
    SamplerKind(
        name="fthmc",
        build=build_fthmc,
        reads=HMC_KEYS,
        config=HMCOptions,
        validate=_validate_fthmc,
        model_family="flow",
        theories=("u1", "su"),
        doc="field-transformed HMC: HMC of V on S(F(V)) - log det dF/dV through a trained flow F",
    )
)

SAMPLERS.register(
    SamplerKind(
        name="hasenbusch",
        build=build_hasenbusch,
        reads=HMC_KEYS,
        config=HasenbuschOptions,
        validate=_validate_hasenbusch,
        theories=("su",),
        counters=HMC_COUNTERS,
        doc="HMC with Hasenbusch mass preconditioning, each factor of the determinant on its own time scale",
    )
)

_register_self_learning(
    "slhmc_hasenbusch",
    build_slhmc_hasenbusch,
    SLHMCHasenbuschOptions,
    _validate_slhmc_hasenbusch,
    _split_light,
    "self-learning HMC on the lightest Hasenbusch ratio: MD on ratio(m_eff, m_1) on smeared links, "
    "the heavier factors exact",
    "self-learning HMC on the lightest Hasenbusch ratio without a network (thin links)",
)


def sampler_options(ens):
    """The typed options dataclass of ``ens``'s sampler (``None`` if it declares none)."""
    kind = SAMPLERS.lookup(ens.sampler.name)
    return None if kind.options is None else kind.options(**ens.sampler.options)
