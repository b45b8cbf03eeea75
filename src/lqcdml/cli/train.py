"""``lqcdml train``: train (or resume training) the model of an ensemble.

Config -> trainer (``config.chains.flow_trainer`` for flows, ``slhmc_trainer`` for the
effective actions of self-learning HMC) -> ``driver.train_into_checkpoint``.
The checkpoint is replaced atomically every ``train.checkpoint_every`` steps, so a
killed job, rerun, continues from the last checkpoint bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..atomic import write_json_atomic
from ..config import MODELS, SAMPLERS, RootConfig, to_container, training_hash
from ..config.build import build_action, torch_device
from ..config.chains import flow_trainer, slhmc_trainer, source_configurations
from ..config.records import job_provenance
from ..driver import train_into_checkpoint
from ..provenance import git_commit
from ..store import StoreError
from ..train import evaluate_flow
from .progress import LazyProgress

__all__ = ["train"]


def _thinned(history: dict, keep: int = 500) -> dict:
    """About ``keep`` entries of each history list, with their step numbers."""
    n = len(history["loss"])
    stride = max(1, n // keep)
    return {"step": list(range(1, n + 1))[::stride], **{k: v[::stride] for k, v in history.items()}}


class _TrainProgress(LazyProgress):
    def progress(self, done: int, total: int, loss: float, **values: float) -> None:
        self.bar.update(done, loss=loss, **{k: v for k, v in values.items() if k in ("ess", "acceptance")})


def train(cfg: RootConfig, ensemble: str, checkpoint: Path, manifest: Path | None = None,
          progress: bool | None = None, source_stores: list[Path] = ()) -> dict:
    """Train ``ensemble``'s model to ``train.steps`` steps, resuming from ``checkpoint``."""
    ens = cfg.ensembles[ensemble]
    if not SAMPLERS.lookup(ens.sampler.name).needs_model:
        users = ", ".join(k.name for k in SAMPLERS if k.needs_model)
        raise StoreError(f"ensemble {ensemble!r} has sampler.name = {ens.sampler.name!r}, which uses no "
                         f"model; allowed: {users}")
    device = torch_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    family = MODELS.lookup(ens.model.kind).family
    if family == "smearing":
        source = (source_configurations(cfg, ens.train.source, list(source_stores))
                  if ens.train.source else None)
        trainer = slhmc_trainer(ens, device, source)
    else:
        if source_stores:
            raise StoreError("--source-store: allowed only for models trained on another ensemble (train.source)")
        trainer = flow_trainer(ens, device)
    digest = training_hash(ens)
    meta = {"config": to_container(ens), "training_hash": digest, "version": __version__,
            "git_commit": git_commit(), "ensemble": ensemble, "experiment": cfg.experiment}
    hooks = _TrainProgress(f"train {ensemble}", progress, unit="step")
    try:
        run = train_into_checkpoint(trainer, checkpoint, ens.train.steps, ens.train.checkpoint_every, meta, hooks)
    finally:
        hooks.close()
    hist = trainer.history
    tail = max(1, min(100, len(hist["loss"]) // 10))
    start = run["resumed_from"]
    if family == "smearing":
        quality = {"final_acceptance": float(np.mean(hist["acceptance"][-tail:]))} if "acceptance" in hist else {}
        if source is not None:  # the trained chain's acceptance at equilibrium, from the source's configurations
            from ..config.build import build_sampler
            from ..train import equilibrium_acceptance

            probe = source[-min(len(source), ens.train.probe):]
            sampler = build_sampler(ens, trainer.net.eval().requires_grad_(False), probe.dtype, device)
            quality["fresh"] = equilibrium_acceptance(sampler, probe.to(device), ens.train.seed + 1)
    else:
        quality = evaluate_flow(trainer.model, build_action(ens.theory).action, ens.train.ess_samples,
                                ens.train.seed + 1)
        quality = {"final_batch_ess": float(np.mean(hist["ess"][-tail:])), "fresh": quality}
    summary = {
        "checkpoint": str(checkpoint),
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "steps": trainer.step_count,
        "resumed_from": start,
        "seconds": run["seconds"],
        "steps_per_second": (trainer.step_count - start) / run["seconds_run"] if trainer.step_count > start else None,
        "final_loss": float(np.mean(hist["loss"][-tail:])),
        **quality,
        "history": _thinned(hist),
        "training_hash": digest,
        "version": __version__,
        "provenance": job_provenance(cfg, ensemble),
    }
    if manifest is not None:
        write_json_atomic(manifest, summary)
    return summary
