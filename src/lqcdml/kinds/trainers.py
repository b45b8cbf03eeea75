"""Trainer kinds: reverse-KL training of flows, online and offline training of SLHMC
effective actions.

The model kind names its trainer; the trainer kind owns the ``train`` section (its dataclass
adds its own keys to the shared ``steps``, ``seed`` and ``checkpoint_every``), builds the
trainer the driver runs (``driver.train_into_checkpoint``) and judges the trained model.
``hashed``: the keys that determine the trained model (the training hash, and for samplers
with a model the chain hash, cover only these).

Importing this module imports neither torch nor ``train`` (the workflow validates configs at
parse time): the trainers are imported when built, and the checks read ``SCHEDULE_NAMES``,
which mirrors ``train.flow.SCHEDULES`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..config.errors import fail
from ..config.schema import DTYPES, TrainConfig
from ..config.seeds import replica_seed
from ..errors import LqcdmlError
from .models import MODELS, build_model
from .registry import Kind, Registry
from .samplers import SAMPLERS, BuildContext
from .theories import theory_kind

if TYPE_CHECKING:
    import torch

    from ..nn import FlowModel

__all__ = [
    "TrainerKind",
    "TRAINERS",
    "ReverseKLTrain",
    "SLHMCTrain",
    "trainer_kind",
    "initial_model",
    "TrainingInputError",
    "SCHEDULE_NAMES",
]

#: ``train.flow.SCHEDULES`` (a test keeps them equal): the checks import no torch
SCHEDULE_NAMES = ("constant", "cosine")


class TrainingInputError(LqcdmlError, ValueError):
    """Training was given the wrong inputs (no configurations where it needs some, too few)."""


@dataclass(frozen=True, kw_only=True)
class TrainerKind(Kind):
    """A training method: ``build(ens, device, source_configs) -> Trainer`` and
    ``evaluate(ens, trainer, source_configs, device) -> dict`` (the judged quality of the
    trained model for the manifest). ``uses_source``: it may train on the configurations of
    another ensemble (``train.source``). ``covers_sampler``: the trained model depends on the
    sampler section (SLHMC: ``m_eff`` and the molecular dynamics), so the training hash covers it."""

    hashed: tuple[str, ...]
    build: Callable[[Any, torch.device, torch.Tensor | None], Any]
    evaluate: Callable[[Any, Any, torch.Tensor | None, torch.device], dict]
    uses_source: bool = False
    covers_sampler: bool = False

    def source(self, tr: TrainConfig) -> str:
        """The ensemble whose configurations it trains on (``""``: none)."""
        return str(getattr(tr, "source", "")) if self.uses_source else ""


TRAINERS: Registry[TrainerKind] = Registry("trainer", "model.kind")


def trainer_kind(ens) -> TrainerKind:
    """The trainer kind of ``ens``'s model."""
    return TRAINERS.lookup(MODELS.lookup(ens.model.kind).trainer)


def initial_model(ens, device, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The untrained model, its initial weights from ``train.seed`` (global RNG untouched), in
    ``dtype`` (``None``: float64)."""
    import torch

    if dtype is None:
        dtype = torch.float64
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only: the weights are drawn on the CPU, and torch.manual_seed
        # would also reseed every CUDA generator, which fork_rng(devices=[]) does not restore
        torch.default_generator.manual_seed(ens.train.seed)
        return build_model(ens).to(device=device, dtype=dtype)


def _common_checks(ens, p: str) -> None:
    tr = ens.train
    if tr.steps < 1:
        fail(p + "train.steps", tr.steps, "steps >= 1")
    if tr.checkpoint_every < 1:
        fail(p + "train.checkpoint_every", tr.checkpoint_every, "checkpoint_every >= 1")
    if tr.batch < 2:
        fail(p + "train.batch", tr.batch, "batch >= 2")
    if not 0 < tr.lr < 1:
        fail(p + "train.lr", tr.lr, "0 < lr < 1")


def _thinned_tail(values: list, n: int) -> float:
    tail = max(1, min(100, n // 10))
    return float(np.mean(values[-tail:]))


# --- reverse KL ----------------------------------------------------------------------------


@dataclass
class ReverseKLTrain(TrainConfig):
    """Reverse-KL training of a flow: Adam at ``lr`` with a ``schedule`` (constant or cosine
    down to ``lr * min_lr_ratio``), batches of ``batch`` samples in ``dtype``; gradients capped
    at the global norm ``grad_clip`` (0: no cap); the final model is judged on ``ess_samples``
    fresh float64 samples (ESS and independence-Metropolis acceptance)."""

    batch: int = 64
    lr: float = 3e-3
    schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    dtype: str = "float32"
    ess_samples: int = 10000
    grad_clip: float = 0.0


def _reverse_kl_checks(ens, p: str) -> None:
    _common_checks(ens, p)
    tr = ens.train
    if tr.ess_samples < 100:
        fail(p + "train.ess_samples", tr.ess_samples, "ess_samples >= 100")
    if tr.schedule not in SCHEDULE_NAMES:
        fail(p + "train.schedule", tr.schedule, ", ".join(SCHEDULE_NAMES))
    if not 0 < tr.min_lr_ratio <= 1:
        fail(p + "train.min_lr_ratio", tr.min_lr_ratio, "0 < min_lr_ratio <= 1")
    if tr.dtype not in DTYPES:
        fail(p + "train.dtype", tr.dtype, ", ".join(DTYPES))
    if not tr.grad_clip >= 0:
        fail(p + "train.grad_clip", tr.grad_clip, "grad_clip >= 0 (0: no clipping)")


def _reverse_kl(ens, device, source) -> Any:
    """The reverse-KL trainer of ``ens``'s flow, initial weights from ``train.seed``."""
    import torch

    from ..train import FlowTrainer

    if source is not None:
        raise TrainingInputError("--source-store: allowed only for models trained on another ensemble (train.source)")
    tr = ens.train
    model = initial_model(ens, device, torch.float32 if tr.dtype == "float32" else torch.float64)
    action = theory_kind(ens.theory).action(ens.theory).action
    # the reverse-KL trainer's models are of the flow family: FlowModels (FlowTrainer checks it again)
    return FlowTrainer(
        cast("FlowModel", model), action, tr.steps, tr.batch, tr.lr, tr.schedule, tr.min_lr_ratio, tr.seed, tr.grad_clip
    )


def _evaluate_flow(ens, trainer, source, device) -> dict:
    from ..train import evaluate_flow

    action = theory_kind(ens.theory).action(ens.theory).action
    fresh = evaluate_flow(trainer.model, action, ens.train.ess_samples, ens.train.seed + 1)
    ess = trainer.history["ess"]
    return {"final_batch_ess": _thinned_tail(ess, len(trainer.history["loss"])), "fresh": fresh}


# --- SLHMC effective actions ---------------------------------------------------------------

SLHMC_METHODS = ("online", "offline")
SLHMC_LOSSES = ("centred", "plain")


@dataclass
class SLHMCTrain(TrainConfig):
    """Training of an SLHMC effective action. ``loss``: ``plain`` is the published
    ``(S_f - S_eff)^2``, ``centred`` the same with the best constant offset (an offset changes
    no force). ``online`` trains during ``steps`` SLHMC trajectories of the ensemble's own
    chains (one Adam step at ``lr`` after each); ``offline`` takes ``steps`` Adam steps on
    batches of ``batch`` thermalised configurations of the ensemble ``source`` of the same
    experiment (an HMC ensemble of the same theory), each with fresh pseudofermions; online
    training starts from the last configurations of ``source`` if given. The trained
    effective action is judged by one SLHMC trajectory from each of the last ``probe``
    configurations of ``source``: their mean Metropolis probability is the chain's
    acceptance at equilibrium."""

    method: str = "online"
    source: str = ""
    loss: str = "centred"
    batch: int = 64
    lr: float = 3e-3
    probe: int = 64


def _slhmc_checks(ens, p: str) -> None:
    _common_checks(ens, p)
    tr = ens.train
    if tr.method not in SLHMC_METHODS:
        fail(p + "train.method", tr.method, ", ".join(SLHMC_METHODS))
    if tr.loss not in SLHMC_LOSSES:
        fail(p + "train.loss", tr.loss, ", ".join(SLHMC_LOSSES))
    if tr.probe < 1:
        fail(p + "train.probe", tr.probe, "probe >= 1 (configurations of train.source)")
    if tr.method == "offline" and not tr.source:
        fail(p + "train.source", tr.source, "the name of an HMC ensemble of the experiment (offline training)")


def _sampler(ens, model, dtype, device):
    import torch

    return SAMPLERS.lookup(ens.sampler.name).build(BuildContext(ens, dtype, torch.device(device), model))


def _slhmc(ens, device, source_configs) -> Any:
    """Online (``chain.n_chains`` SLHMC chains seeded by ``train.seed``, from ``chain.start`` or,
    given ``source_configs``, from the last of them) or offline (on ``source_configs``).
    ``source_configs``: ``[n, d, L..., N, N]``, thermalised configurations of ``train.source``."""
    import torch

    from ..lattice import make_generators
    from ..samplers import ChainState
    from ..train import OfflineSLHMCTrainer, OnlineSLHMCTrainer

    device = torch.device(device)
    net = initial_model(ens, device)
    tr, th = ens.train, theory_kind(ens.theory)
    mismatch = SAMPLERS.lookup(ens.sampler.name).mismatch_terms
    if mismatch is None:
        raise TrainingInputError(f"sampler.name = {ens.sampler.name!r} has no effective action to train")
    exact, effective = mismatch(ens)
    if tr.method == "offline":
        if source_configs is None:
            raise TrainingInputError(
                f"train.method = 'offline' needs the configurations of train.source = "
                f"{tr.source!r} (lqcdml train --source-store PATH)"
            )
        return OfflineSLHMCTrainer(
            net, source_configs.to(device), exact, effective, tr.batch, tr.lr, tr.seed, tr.loss == "centred"
        )
    dtype = th.field_dtype(ens.theory, "float64")
    gens = make_generators(replica_seed(tr.seed, 0), ens.chain.n_chains, device)
    if source_configs is not None:  # continue from the last configurations of a thermalised ensemble
        if source_configs.shape[0] < ens.chain.n_chains:
            raise TrainingInputError(
                f"train.source = {tr.source!r} has {source_configs.shape[0]} configurations; "
                f"allowed: at least chain.n_chains = {ens.chain.n_chains} to start online training"
            )
        fields = source_configs[-ens.chain.n_chains :].to(device=device, dtype=dtype)
    else:
        fields = th.start(ens.theory, ens.chain.start, gens, dtype, device)
    start = ChainState.initial(fields, gens)
    return OnlineSLHMCTrainer(
        net, lambda model: _sampler(ens, model, dtype, device), exact, effective, start, tr.lr, tr.loss == "centred"
    )


def _evaluate_slhmc(ens, trainer, source, device) -> dict:
    from ..train import equilibrium_acceptance

    hist = trainer.history
    quality: dict[str, Any] = (
        {"final_acceptance": _thinned_tail(hist["acceptance"], len(hist["loss"]))} if "acceptance" in hist else {}
    )
    if source is not None:  # the trained chain's acceptance at equilibrium, from the source's configurations
        probe = source[-min(len(source), ens.train.probe) :]
        sampler = _sampler(ens, trainer.net.eval().requires_grad_(False), probe.dtype, device)
        quality["fresh"] = equilibrium_acceptance(sampler, probe.to(device), ens.train.seed + 1)
    return quality


# --- the built-in kinds --------------------------------------------------------------------

TRAINERS.register(
    TrainerKind(
        name="reverse_kl",
        config=ReverseKLTrain,
        validate=_reverse_kl_checks,
        build=_reverse_kl,
        evaluate=_evaluate_flow,
        hashed=(
            "steps",
            "batch",
            "lr",
            "schedule",
            "min_lr_ratio",
            "dtype",
            "seed",
            "checkpoint_every",
            "ess_samples",
            "grad_clip",
        ),
        doc="reverse Kullback-Leibler training of a normalizing flow on its own samples",
    )
)
TRAINERS.register(
    TrainerKind(
        name="slhmc",
        config=SLHMCTrain,
        validate=_slhmc_checks,
        build=_slhmc,
        evaluate=_evaluate_slhmc,
        hashed=("method", "loss", "steps", "batch", "lr", "seed", "source"),
        uses_source=True,
        covers_sampler=True,
        doc="online or offline regression of the smeared effective fermion action on the exact one",
    )
)
