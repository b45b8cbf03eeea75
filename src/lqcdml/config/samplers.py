"""The built-in samplers: HMC (with fermions on nested time scales) and flow MCMC."""

from __future__ import annotations

from ..samplers import HMC, FlowMCMC, Integrator, Level
from ..theories.staggered import StaggeredOperator, StaggeredPseudofermion
from ..theories.wilson_fermion import WilsonOperator, WilsonPseudofermion
from .registry import SAMPLERS, BuildContext, SamplerKind
from .schema import TheoryConfig
from .validate import validate_hmc, validate_model_and_training

__all__ = ["HMC_KEYS", "build_hmc", "build_flow_mcmc", "build_fermion_operator", "build_fermion_terms",
           "staggered_fields"]

#: the keys of the sampler section that HMC reads
HMC_KEYS = ("integrator", "n_steps", "trajectory_length", "gauge_steps", "solver_tol", "rational_tol")


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
    if not fermions:
        return HMC(Integrator.single(gauge, s.n_steps, s.integrator), s.trajectory_length)
    levels = (Level(tuple(fermions), s.n_steps, s.integrator), Level((gauge,), s.gauge_steps, s.integrator))
    return HMC(Integrator(gauge.group, levels), s.trajectory_length)


def build_flow_mcmc(ctx: BuildContext) -> FlowMCMC:
    """Independence Metropolis with proposals from the trained flow ``ctx.model``."""
    from .build import build_action

    if ctx.model is None:
        raise ValueError("sampler.name = 'flow' needs a trained model (lqcdml generate --model PATH)")
    return FlowMCMC(ctx.model, build_action(ctx.ensemble.theory).action, field_dtype=ctx.dtype)


SAMPLERS.register(SamplerKind(
    name="hmc", build=build_hmc, reads=HMC_KEYS, validate=validate_hmc,
    doc="hybrid Monte Carlo (RHMC with rooted staggered fermions)",
))
SAMPLERS.register(SamplerKind(
    name="flow", build=build_flow_mcmc, reads=(), validate=validate_model_and_training,
    needs_model=True, theories=("phi4", "u1"),
    doc="independence Metropolis with proposals from a trained normalizing flow",
))
