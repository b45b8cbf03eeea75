"""``lqcdml train``: train (or resume training) the normalizing flow of an ensemble.

The checkpoint (``torch.save``) holds the trainer state (model, optimiser, schedule,
generator, step, loss and ESS history), the config it belongs to and its hash, and
``complete``. It is replaced atomically every ``train.checkpoint_every`` steps, so a
killed job, rerun, continues from the last checkpoint bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import RootConfig, to_container
from ..config.compose import model_definition
from ..config.build import build_action, build_flow_model
from ..store import StoreError
from ..train import FlowTrainer, evaluate_flow
from .progress import Progress
from .provenance import git_commit, write_json_atomic

__all__ = ["train", "load_model", "training_hash", "file_digest"]


def training_hash(ens) -> str:
    """Hash of what determines a trained model: theory, model and training settings."""
    data = {k: to_container(ens)[k] for k in ("theory", "model", "train")}
    data["model"] = model_definition(data["model"])
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _save_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(data, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise StoreError(f"model checkpoint {str(path)!r} is not readable: {exc}") from None


def _trainer(ens, device) -> FlowTrainer:
    dtype = torch.float32 if ens.train.dtype == "float32" else torch.float64
    with torch.random.fork_rng(devices=[]):  # initial weights from train.seed, global RNG untouched
        torch.manual_seed(ens.train.seed)
        model = build_flow_model(ens).to(device=device, dtype=dtype)
    tr = ens.train
    return FlowTrainer(model, build_action(ens.theory).action, tr.steps, tr.batch, tr.lr, tr.schedule,
                       tr.min_lr_ratio, tr.seed, tr.grad_clip)


def load_model(ens, path: Path, device="cpu") -> torch.nn.Module:
    """The trained float64 model of ``ens`` from a complete checkpoint of the same config."""
    ckpt = _load_checkpoint(path)
    if ckpt.get("training_hash") != training_hash(ens):
        raise StoreError(
            f"model checkpoint {str(path)!r} was trained for a different theory/model/train config; "
            "allowed: the checkpoint `lqcdml train` wrote for this ensemble"
        )
    if not ckpt.get("complete"):
        raise StoreError(
            f"model checkpoint {str(path)!r} is incomplete (step {ckpt['trainer']['step']} of "
            f"{ckpt['config']['train']['steps']}); allowed: a finished training (rerun lqcdml train)"
        )
    model = build_flow_model(ens)
    model.load_state_dict(ckpt["trainer"]["model"])
    return model.to(device=device, dtype=torch.float64).eval()


def _thinned(history: dict, keep: int = 500) -> dict:
    """About ``keep`` entries of each history list, with their step numbers."""
    n = len(history["loss"])
    stride = max(1, n // keep)
    return {"step": list(range(1, n + 1))[::stride], **{k: v[::stride] for k, v in history.items()}}


def train(cfg: RootConfig, ensemble: str, checkpoint: Path, manifest: Path | None = None,
          progress: bool | None = None) -> dict:
    """Train ``ensemble``'s flow to ``train.steps`` steps, resuming from ``checkpoint``."""
    ens = cfg.ensembles[ensemble]
    if ens.sampler.name != "flow":
        raise StoreError(f"ensemble {ensemble!r} has sampler.name = {ens.sampler.name!r}; allowed: flow")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StoreError("device = 'cuda' but torch sees no CUDA device; allowed here: cpu")
    torch.set_num_threads(cfg.threads)
    trainer = _trainer(ens, device)
    digest = training_hash(ens)
    before = 0.0  # training seconds of earlier (killed) runs
    complete = False
    if checkpoint.exists():
        ckpt = _load_checkpoint(checkpoint)
        if ckpt.get("training_hash") != digest:
            raise StoreError(
                f"model checkpoint {str(checkpoint)!r} belongs to a different theory/model/train config; "
                "allowed: the same config (or delete the checkpoint to train anew)"
            )
        trainer.load_state_dict(ckpt["trainer"])
        before = float(ckpt.get("seconds", 0.0))
        complete = bool(ckpt.get("complete"))
    start = trainer.step_count
    meta = {"config": to_container(ens), "training_hash": digest, "version": __version__,
            "git_commit": git_commit(), "ensemble": ensemble, "experiment": cfg.experiment}
    t0 = time.perf_counter()
    bar = Progress(total=ens.train.steps, initial=start, label=f"train {ensemble}", enabled=progress, unit="step")
    while trainer.step_count < ens.train.steps:
        loss = trainer.step()
        done = trainer.step_count == ens.train.steps
        if done or trainer.step_count % ens.train.checkpoint_every == 0:
            _save_atomic(checkpoint, {**meta, "trainer": trainer.state_dict(), "complete": done,
                                      "seconds": before + time.perf_counter() - t0})
        bar.update(trainer.step_count, loss=loss, ess=trainer.history["ess"][-1])
    bar.close()
    seconds = time.perf_counter() - t0
    if start == ens.train.steps and not complete:
        _save_atomic(checkpoint, {**meta, "trainer": trainer.state_dict(), "complete": True, "seconds": before})
    quality = evaluate_flow(trainer.model, build_action(ens.theory).action, ens.train.ess_samples, ens.train.seed + 1)
    hist = trainer.history
    tail = max(1, min(100, len(hist["loss"]) // 10))
    summary = {
        "checkpoint": str(checkpoint),
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "steps": trainer.step_count,
        "resumed_from": start,
        "seconds": before + seconds,
        "steps_per_second": (trainer.step_count - start) / seconds if trainer.step_count > start else None,
        "final_loss": float(np.mean(hist["loss"][-tail:])),
        "final_batch_ess": float(np.mean(hist["ess"][-tail:])),
        "fresh": quality,
        "history": _thinned(hist),
        "training_hash": digest,
        "version": __version__,
    }
    if manifest is not None:
        write_json_atomic(manifest, summary)
    return summary
