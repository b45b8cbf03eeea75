"""Physics objects from configuration: groups, actions, samplers, start fields.

Samplers, models and observables are built through their registries
(``config.registry``); this module holds what every kind shares.
"""

from __future__ import annotations

import torch

from ..lattice import SU, U1, Manifold, Real
from ..observables import abs_magnetization, plaquette
from ..theories import Action, Phi4Action, WilsonGaugeAction
from .models import build_model
from .registry import SAMPLERS, BuildContext
from .samplers import build_fermion_operator, build_fermion_terms, staggered_fields
from .schema import EnsembleConfig, TheoryConfig

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
    "torch_device",
    "replica_seed",
]


def torch_dtype(group: Manifold, precision: str) -> torch.dtype:
    """Field dtype of ``group`` at ``precision`` (``float64`` or ``float32``)."""
    double = precision == "float64"
    if isinstance(group, SU):
        return torch.complex128 if double else torch.complex64
    return torch.float64 if double else torch.float32


def torch_device(name: str) -> torch.device:
    """The device ``name`` (``cpu``, ``cuda``, ``cuda:N``), refused in one line if absent."""
    from ..store import StoreError

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StoreError(f"device = {name!r} but torch sees no CUDA device; allowed here: cpu")
    return device


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


def build_flow_model(ens: EnsembleConfig) -> torch.nn.Module:
    """The (untrained) model of ``ens.model`` in float64 (any registered model kind)."""
    return build_model(ens)


def build_sampler(ens: EnsembleConfig, model: torch.nn.Module | None = None,
                  dtype: torch.dtype | None = None, device: torch.device | str = "cpu"):
    """The sampler of ``ens.sampler.name`` through its registry entry (``model``: the
    trained model of a sampler that needs one; ``dtype``: the field dtype)."""
    kind = SAMPLERS.lookup(ens.sampler.name)
    dtype = dtype or torch_dtype(build_group(ens.theory), "float64")
    return kind.build(BuildContext(ens, dtype, torch.device(device), model))


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
