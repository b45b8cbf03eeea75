"""Train a model into a checkpoint file, resuming from it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from .checkpoints import read_checkpoint, save_checkpoint

__all__ = ["Trainer", "TrainHooks", "train_into_checkpoint"]


class Trainer(Protocol):
    """A resumable optimisation: ``step() -> loss``; ``state_dict`` continues it bit for bit."""

    step_count: int
    history: dict[str, list[float]]

    def step(self) -> float: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class TrainHooks(Protocol):
    def begin(self, done: int, total: int) -> None: ...

    def progress(self, done: int, total: int, loss: float, **values: float) -> None: ...


def train_into_checkpoint(
    trainer: Trainer,
    path: str | Path,
    steps: int,
    checkpoint_every: int,
    meta: Mapping[str, Any],
    hooks: TrainHooks | None = None,
) -> dict[str, Any]:
    """Run ``trainer`` to ``steps`` steps, checkpointing to ``path`` every ``checkpoint_every``.

    An existing checkpoint (of the same ``meta["training_hash"]``) is resumed. ``meta``
    (JSON: config, hash, provenance) is stored in every checkpoint. Returns
    ``{"resumed_from", "seconds", "seconds_run"}``.
    """
    path = Path(path)
    before = 0.0
    complete = False
    if path.exists():
        ckpt = read_checkpoint(path, meta["training_hash"])
        trainer.load_state_dict(ckpt["trainer"])
        before = float(ckpt.get("seconds", 0.0))
        complete = bool(ckpt.get("complete"))
    start = trainer.step_count
    if hooks is not None:
        hooks.begin(start, steps)
    t0 = time.perf_counter()
    while trainer.step_count < steps:
        loss = trainer.step()
        done = trainer.step_count == steps
        if done or trainer.step_count % checkpoint_every == 0:
            save_checkpoint(
                path,
                {
                    **meta,
                    "trainer": trainer.state_dict(),
                    "complete": done,
                    "seconds": before + time.perf_counter() - t0,
                },
            )
        if hooks is not None:
            hooks.progress(
                trainer.step_count, steps, loss, **{k: v[-1] for k, v in trainer.history.items() if k != "loss" and v}
            )
    seconds = time.perf_counter() - t0
    if start == steps and not complete:  # a finished training whose last save was killed
        save_checkpoint(path, {**meta, "trainer": trainer.state_dict(), "complete": True, "seconds": before})
    return {"resumed_from": start, "seconds": before + seconds, "seconds_run": seconds}
