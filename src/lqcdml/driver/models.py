"""Train an ensemble's model into a checkpoint and write its manifest.

Config -> the trainer of the model kind's trainer kind (``kinds.TRAINERS``) ->
``train_into_checkpoint``. The checkpoint is replaced atomically every
``train.checkpoint_every`` steps, so a killed job, rerun, continues from the last checkpoint
bit for bit. The manifest holds the judged quality (``TrainerKind.evaluate``), the thinned
training history, timings and provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..assembly import torch_device, torch_threads
from ..atomic import write_json_atomic
from ..config import RootConfig, to_container
from ..identity import job_provenance, training_hash
from ..kinds import SAMPLERS, trainer_kind
from ..provenance import git_commit
from ..store import StoreError
from .specs import source_configurations
from .train import TrainHooks, train_into_checkpoint

__all__ = ["train_model", "thinned"]


def thinned(history: dict, keep: int = 500) -> dict:
    """About ``keep`` entries of each history list, with their step numbers."""
    n = len(history["loss"])
    stride = max(1, n // keep)
    return {"step": list(range(1, n + 1))[::stride], **{k: v[::stride] for k, v in history.items()}}


def train_model(
    cfg: RootConfig,
    ensemble: str,
    checkpoint: Path,
    manifest: Path | None = None,
    hooks: TrainHooks | None = None,
    source_stores: Sequence[Path] = (),
) -> dict:
    """Train ``ensemble``'s model to ``train.steps`` steps, resuming from ``checkpoint``;
    ``source_stores``: the ensemble stores of ``train.source`` where the trainer uses one."""
    ens = cfg.ensembles[ensemble]
    if not SAMPLERS.lookup(ens.sampler.name).needs_model or ens.train is None:
        users = ", ".join(k.name for k in SAMPLERS if k.needs_model)
        raise StoreError(
            f"ensemble {ensemble!r} has sampler.name = {ens.sampler.name!r}, which uses no model; allowed: {users}"
        )
    device = torch_device(cfg.device)
    with torch_threads(cfg.threads):
        kind = trainer_kind(ens)
        source_name = kind.source(ens.train)
        if source_stores and not source_name:
            raise StoreError("--source-store: allowed only for models trained on another ensemble (train.source)")
        source = source_configurations(cfg, source_name, list(source_stores)) if source_name else None
        trainer = kind.build(ens, device, source)
        digest = training_hash(ens)
        meta = {
            "config": to_container(ens),
            "training_hash": digest,
            "version": __version__,
            "git_commit": git_commit(),
            "ensemble": ensemble,
            "experiment": cfg.experiment,
        }
        done = train_into_checkpoint(trainer, checkpoint, ens.train.steps, ens.train.checkpoint_every, meta, hooks)
        hist = trainer.history
        tail = max(1, min(100, len(hist["loss"]) // 10))
        start = done["resumed_from"]
        summary = {
            "checkpoint": str(checkpoint),
            "experiment": cfg.experiment,
            "ensemble": ensemble,
            "steps": trainer.step_count,
            "resumed_from": start,
            "seconds": done["seconds"],
            "steps_per_second": (trainer.step_count - start) / done["seconds_run"]
            if trainer.step_count > start
            else None,
            "final_loss": float(np.mean(hist["loss"][-tail:])),
            **kind.evaluate(ens, trainer, source, device),
            "history": thinned(hist),
            "training_hash": digest,
            "version": __version__,
            "provenance": job_provenance(cfg, ensemble),
        }
        if manifest is not None:
            write_json_atomic(manifest, summary)
        return summary
