"""The built-in samplers: HMC (with fermions on nested time scales), self-learning HMC and flow MCMC."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..samplers import HMC, FlowMCMC, Integrator, Level, SmearedPseudofermion, slhmc
from ..theories.staggered import StaggeredOperator, StaggeredPseudofermion
from ..theories.wilson_fermion import WilsonOperator, WilsonPseudofermion
from .registry import SAMPLERS, BuildContext, SamplerKind
from .schema import TheoryConfig
from .errors import fail as _fail
from .validate import validate_hmc, validate_model_and_training

__all__ = ["HMC_KEYS", "HMCOptions", "SLHMCOptions", "build_hmc", "build_slhmc", "build_flow_mcmc", "build_fermion_operator",
           "build_fermion_terms", "effective_fermion_terms", "staggered_fields"]

#: the keys of the sampler section that HMC reads
HMC_KEYS = ("integrator", "n_steps", "trajectory_length", "gauge_steps", "solver_tol", "rational_tol")
#: the cost counters HMC-type stores record per configuration
HMC_COUNTERS = ("cg_md", "cg_metropolis")


def build_fermion_operator(theory: TheoryConfig):
    """The Dirac operator of ``theory`` (``None`` without fermions)."""
    from .build import build_group

    group = build_group(theory)
    if theory.fermion == "staggered":
        return StaggeredOperator(theory.fermion_mass, group, theory.antiperiodic)
    if theory.fermion == "wilson":
        return WilsonOperator(theory.fermion_mass, group, theory.antiperiodic)
    return None


def staggered_fields(n_flavours: int) -> list[int]:
    """Pseudofermion fields for ``n_flavours``: 8 (full lattice), 4 (even sites), then one
    RHMC field for the remainder 1, 2 or 3."""
    rest = n_flavours % 4
    return [8] * (n_flavours // 8) + [4] * ((n_flavours % 8) // 4) + ([rest] if rest else [])


def build_fermion_terms(theory: TheoryConfig, tol: float = 1e-10, rational_tol: float = 1e-12) -> list:
    """The pseudofermion actions of the dynamical flavours (none when quenched: ``n_flavours = 0``)."""
    op = build_fermion_operator(theory)
    if op is None:
        return []
    if theory.fermion == "wilson":
        return [WilsonPseudofermion(op, tol=tol)]
    return [StaggeredPseudofermion(op, nf, tol=tol, rational_tol=rational_tol)
            for nf in staggered_fields(theory.n_flavours)]


def build_hmc(ctx: BuildContext) -> HMC:
    """HMC; with fermions a two-level integrator: fermion forces outside, gauge inside."""
    from .build import build_action

    ens = ctx.ensemble
    s = ens.sampler
    gauge = build_action(ens.theory)
    fermions = build_fermion_terms(ens.theory, s.solver_tol, s.rational_tol)
    jitter = float(s.options.get("trajectory_jitter", 0.0))
    if not fermions:
        return HMC(Integrator.single(gauge, s.n_steps, s.integrator), s.trajectory_length, trajectory_jitter=jitter)
    levels = (Level(tuple(fermions), s.n_steps, s.integrator), Level((gauge,), s.gauge_steps, s.integrator))
    return HMC(Integrator(gauge.group, levels), s.trajectory_length, trajectory_jitter=jitter)


@dataclass
class HMCOptions:
    """``sampler.options`` of HMC: ``trajectory_jitter`` (relative; 0: fixed length)."""

    trajectory_jitter: float = 0.0


def _validate_hmc_options(ens, p: str) -> None:
    validate_hmc(ens, p)
    j = ens.sampler.options.get("trajectory_jitter", 0.0)
    if not isinstance(j, (int, float)) or not 0.0 <= j < 1.0:
        _fail(p + "sampler.options.trajectory_jitter", j, "0 <= trajectory_jitter < 1 (0: a fixed length)")


@dataclass
class SLHMCOptions:
    """``sampler.options`` of self-learning HMC: ``m_eff``, the fermion mass of the
    effective action of the molecular dynamics (the exact action keeps ``theory.fermion_mass``)."""

    m_eff: float = 0.4


def effective_fermion_terms(ens) -> list:
    """The (unsmeared) pseudofermion actions of ``ens``'s theory at mass ``m_eff``."""
    from dataclasses import replace

    s = ens.sampler
    theory = replace(ens.theory, fermion_mass=float(ens.sampler.options["m_eff"]))
    return build_fermion_terms(theory, s.solver_tol, s.rational_tol)


def build_slhmc(ctx: BuildContext) -> HMC:
    """Self-learning HMC: MD with the fermion action at ``m_eff`` on links smeared by
    ``ctx.model`` (thin links for ``slhmc_thin``), heat bath and Metropolis exact."""
    from .build import build_action

    ens, s = ctx.ensemble, ctx.ensemble.sampler
    if ens.sampler.name == "slhmc" and ctx.model is None:
        raise ValueError("sampler.name = 'slhmc' needs a trained model (lqcdml generate --model PATH)")
    net = ctx.model if ens.sampler.name == "slhmc" else None
    effective = [SmearedPseudofermion(t, net) for t in effective_fermion_terms(ens)]
    return slhmc(build_action(ens.theory), build_fermion_terms(ens.theory, s.solver_tol, s.rational_tol),
                 effective, s.n_steps, s.gauge_steps, s.integrator, s.trajectory_length)


def _validate_slhmc(ens, p: str) -> None:
    validate_hmc(ens, p)
    if ens.theory.fermion == "none" or (ens.theory.fermion == "staggered" and ens.theory.n_flavours == 0):
        _fail(p + "theory.fermion", ens.theory.fermion, "staggered or wilson with dynamical flavours (self-learning "
              "HMC smears a fermion action; n_flavours >= 1)")
    m_eff = ens.sampler.options["m_eff"]
    if not isinstance(m_eff, (int, float)) or not math.isfinite(m_eff):
        _fail(p + "sampler.options.m_eff", m_eff, "a finite number")
    if ens.theory.fermion == "staggered" and not m_eff > 0:
        _fail(p + "sampler.options.m_eff", m_eff, "m_eff > 0 for staggered fermions")
    if ens.theory.fermion == "wilson" and not m_eff > -len(ens.theory.lattice):
        _fail(p + "sampler.options.m_eff", m_eff, f"m_eff > -{len(ens.theory.lattice)} (kappa > 0)")
    if ens.sampler.name == "slhmc":
        validate_model_and_training(ens, p)
        from .registry import MODELS

        if MODELS.lookup(ens.model.kind).family != "smearing":
            _fail(p + "model.kind", ens.model.kind,
                  ", ".join(k.name for k in MODELS if k.family == "smearing") + " for sampler.name = 'slhmc'")


def build_flow_mcmc(ctx: BuildContext) -> FlowMCMC:
    """Independence Metropolis with proposals from the trained flow ``ctx.model``."""
    from .build import build_action

    if ctx.model is None:
        raise ValueError("sampler.name = 'flow' needs a trained model (lqcdml generate --model PATH)")
    return FlowMCMC(ctx.model, build_action(ctx.ensemble.theory).action, field_dtype=ctx.dtype)


SAMPLERS.register(SamplerKind(
    name="hmc", build=build_hmc, reads=HMC_KEYS, options=HMCOptions, validate=_validate_hmc_options,
    counters=HMC_COUNTERS,
    doc="hybrid Monte Carlo (RHMC with rooted staggered fermions)",
))
SAMPLERS.register(SamplerKind(
    name="slhmc", build=build_slhmc, reads=HMC_KEYS, options=SLHMCOptions, validate=_validate_slhmc,
    needs_model=True, theories=("su",), counters=HMC_COUNTERS,
    doc="self-learning HMC: MD on the fermion action at m_eff on links smeared by a trained network",
))
SAMPLERS.register(SamplerKind(
    name="slhmc_thin", build=build_slhmc, reads=HMC_KEYS, options=SLHMCOptions, validate=_validate_slhmc,
    theories=("su",), counters=HMC_COUNTERS,
    doc="self-learning HMC without a network: MD on the fermion action at m_eff on thin links",
))
SAMPLERS.register(SamplerKind(
    name="flow", build=build_flow_mcmc, reads=(), validate=validate_model_and_training,
    needs_model=True, theories=("phi4", "u1"),
    doc="independence Metropolis with proposals from a trained normalizing flow",
))
