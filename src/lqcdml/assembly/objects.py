"""Runtime objects of a resolved ensemble config: field dtype and device, action, sampler,
start fields, models, measurements. Every question is asked of the kinds (``kinds``); this
module reads no store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..config.errors import ConfigError
from ..config.schema import EnsembleConfig, TheoryConfig
from ..kinds import SAMPLERS, BuildContext, theory_kind
from ..kinds.models import build_model
from ..lattice import Manifold
from ..theories import Action

__all__ = [
    "build_group",
    "build_action",
    "build_sampler",
    "build_model",
    "build_fermion_operator",
    "build_fermion_terms",
    "site_shape",
    "field_shape",
    "initial_fields",
    "cheap_observable",
    "field_dtype",
    "torch_device",
    "torch_threads",
]


def field_dtype(theory: TheoryConfig, precision: str) -> torch.dtype:
    """Field dtype of ``theory`` at ``precision`` (``float64`` or ``float32``)."""
    return theory_kind(theory).field_dtype(theory, precision)


def torch_device(name: str) -> torch.device:
    """The device ``name`` (``cpu``, ``cuda``, ``cuda:N``), refused in one line if absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device = {name!r} but torch sees no CUDA device; allowed here: cpu")
    return device


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` of torch's intra-op threads, then give the caller back its own
    count: a job's ``threads`` must not outlive the job in a process that calls it as a
    library function (a test worker, a notebook, a benchmark)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_group(theory: TheoryConfig) -> Manifold:
    return theory_kind(theory).group(theory)


def build_action(theory: TheoryConfig) -> Action:
    return theory_kind(theory).action(theory)


def build_fermion_operator(theory: TheoryConfig):
    """The Dirac operator of ``theory`` (``None`` without fermions)."""
    return theory_kind(theory).fermion_operator(theory)


def build_fermion_terms(theory: TheoryConfig, tol: float = 1e-10, rational_tol: float = 1e-12) -> list:
    """The pseudofermion actions of the dynamical flavours (none when quenched)."""
    return theory_kind(theory).fermion_terms(theory, tol, rational_tol)


def build_sampler(
    ens: EnsembleConfig,
    model: torch.nn.Module | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
):
    """The sampler of ``ens.sampler.name`` through its kind (``model``: the trained model of a
    sampler that needs one; ``dtype``: the field dtype, float64 precision by default)."""
    kind = SAMPLERS.lookup(ens.sampler.name)
    dtype = dtype or field_dtype(ens.theory, "float64")
    return kind.build(BuildContext(ens, dtype, torch.device(device), model))


def site_shape(theory: TheoryConfig) -> tuple[int, ...]:
    """Per-chain shape without internal axes: ``[L...]`` scalars, ``[d, L...]`` links."""
    return theory_kind(theory).site_shape(theory)


def field_shape(theory: TheoryConfig, n_chains: int) -> tuple[int, ...]:
    """``[B, *site_shape, *internal]``."""
    return theory_kind(theory).field_shape(theory, n_chains)


def initial_fields(ens: EnsembleConfig, gens, dtype: torch.dtype, device) -> torch.Tensor:
    """Start fields ``[B, ...]`` of ``chain.start`` (``TheoryKind.start``)."""
    return theory_kind(ens.theory).start(ens.theory, ens.chain.start, gens, dtype, device)


def cheap_observable(ens: EnsembleConfig):
    """``(name, fn)``: the per-configuration observable the ensemble store records."""
    return SAMPLERS.lookup(ens.sampler.name).cheap_observable(ens.theory)
