"""Physics objects from configuration: groups, actions, samplers, start fields."""

from __future__ import annotations

import torch

from ..lattice import SU, U1, Manifold, Real
from ..observables import abs_magnetization, plaquette
from ..samplers import HMC, FlowMCMC, Integrator, Level
from ..theories import Action, Phi4Action, WilsonGaugeAction
from ..theories.staggered import StaggeredOperator, StaggeredPseudofermion
from ..theories.wilson_fermion import WilsonOperator, WilsonPseudofermion
from .schema import EnsembleConfig, SamplerConfig, TheoryConfig

__all__ = [
    "build_group",
    "build_action",
    "build_sampler",
    "build_flow_model",
    "build_fermion_operator",
    "build_fermion_terms",
    "staggered_fields",
    "site_shape",
    "initial_fields",
    "cheap_observable",
    "torch_dtype",
    "replica_seed",
]


def torch_dtype(group: Manifold, precision: str) -> torch.dtype:
    """Field dtype of ``group`` at ``precision`` (``float64`` or ``float32``)."""
    double = precision == "float64"
    if isinstance(group, SU):
        return torch.complex128 if double else torch.complex64
    return torch.float64 if double else torch.float32


def build_group(theory: TheoryConfig) -> Manifold:
    if theory.name == "phi4":
        return Real()
    if theory.name == "u1":
        return U1()
    return SU(theory.n_colors)


def build_action(theory: TheoryConfig) -> Action:
    if theory.name == "phi4":
        return Phi4Action(theory.m2, theory.lam, theory.convention)
    return WilsonGaugeAction(theory.beta, build_group(theory))


def build_fermion_operator(theory: TheoryConfig):
    """The Dirac operator of ``theory`` (``None`` without fermions)."""
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


def build_flow_model(ens: EnsembleConfig) -> torch.nn.Module:
    """The (untrained) normalizing flow of ``ens.model`` in float64."""
    from ..nn import phi4_flow

    mo = ens.model
    shape = tuple(int(x) for x in ens.theory.lattice)
    if mo.kind == "affine":
        model = phi4_flow(shape, mo.n_layers, tuple(mo.hidden), mo.kernel, mo.activation, mo.prior_scale)
    elif mo.kind == "u1_equivariant":
        from ..nn import u1_flow

        model = u1_flow(
            shape, mo.n_layers, tuple(mo.hidden), mo.kernel, mo.n_mix, mo.activation, mo.loop_context
        )
    else:
        from ..nn import u1_plaquette_flow

        model = u1_plaquette_flow(
            shape, mo.n_layers, tuple(mo.hidden), mo.kernel, mo.n_mix, mo.activation,
            mo.n_partners, tuple(mo.partner_hidden),
        )
    return model.double()


def build_sampler(ens: EnsembleConfig, model: torch.nn.Module | None = None):
    """HMC (with fermions a two-level integrator: fermion forces outside, gauge inside),
    or for ``sampler.name = flow`` independence Metropolis with the trained ``model``."""
    s: SamplerConfig = ens.sampler
    if s.name == "flow":
        if model is None:
            raise ValueError("sampler.name = 'flow' needs a trained model (lqcdml generate --model PATH)")
        return FlowMCMC(model, build_action(ens.theory).action)
    gauge = build_action(ens.theory)
    fermions = build_fermion_terms(ens.theory, s.solver_tol, s.rational_tol)
    if not fermions:
        return HMC(Integrator.single(gauge, s.n_steps, s.integrator), s.trajectory_length)
    levels = [Level(tuple(fermions), s.n_steps, s.integrator), Level((gauge,), s.gauge_steps, s.integrator)]
    return HMC(Integrator(gauge.group, levels), s.trajectory_length)


def site_shape(theory: TheoryConfig) -> tuple[int, ...]:
    """Per-chain shape without internal axes: ``[L...]`` scalars, ``[d, L...]`` links."""
    lattice = tuple(int(x) for x in theory.lattice)
    return lattice if theory.name == "phi4" else (len(lattice), *lattice)


def initial_fields(ens: EnsembleConfig, gens, dtype: torch.dtype, device) -> torch.Tensor:
    """Start fields ``[B, ...]``: ``hot`` or ``cold`` (unit links, zero scalars).

    Hot: Haar-random links; scalars ``0.5 N(0, 1)`` per site (a unit-normal start
    puts phi^4 at strong coupling so far up its quartic wall that molecular dynamics
    at equilibrium step sizes is unstable and the chain never accepts).
    """
    group = build_group(ens.theory)
    shape = site_shape(ens.theory)
    n = len(gens)
    if ens.chain.start == "cold":
        if isinstance(group, Real):
            return torch.zeros((n, *shape), dtype=dtype, device=device)
        return group.identity((n, *shape), dtype=dtype, device=device)
    if isinstance(group, Real):
        from ..lattice import randn

        return 0.5 * randn(gens, shape, dtype, device)
    return group.haar(gens, shape, dtype)


def cheap_observable(theory: TheoryConfig):
    """``(name, fn)``: the per-configuration observable the ensemble store records."""
    if theory.name == "phi4":
        return "abs_magnetization", abs_magnetization
    group = build_group(theory)
    return "plaquette", lambda links: plaquette(links, group)


def replica_seed(seed: int, replica: int) -> int:
    """Seed of job replica ``replica`` (1-based) of a chain with seed ``seed``."""
    return int(seed) * 1000 + int(replica)
