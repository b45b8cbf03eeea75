"""Model checkpoints on disk: one ``torch.save`` file, replaced atomically.

A checkpoint holds the trainer state (model, optimiser, schedule, generator, step,
history), the config it belongs to and its ``training_hash``, the training seconds so
far and ``complete``. Readers check the hash, so a model is never used for another
config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..store import StoreError

__all__ = ["save_checkpoint", "read_checkpoint", "read_complete_checkpoint"]


def save_checkpoint(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def read_checkpoint(path: str | Path, training_hash: str | None = None) -> dict[str, Any]:
    """A checkpoint's content; with ``training_hash``, refuse one of another config."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise StoreError(f"model checkpoint {str(path)!r} is not readable: {exc}") from None
    if not isinstance(data, dict) or "trainer" not in data:
        raise StoreError(f"model checkpoint {str(path)!r} is not an lqcdml model checkpoint")
    if training_hash is not None and data.get("training_hash") != training_hash:
        raise StoreError(
            f"model checkpoint {str(path)!r} was trained for a different theory/model/train config; "
            "allowed: the checkpoint `lqcdml train` wrote for this ensemble (or delete it to train anew)"
        )
    return data


def read_complete_checkpoint(path: str | Path, training_hash: str) -> dict[str, Any]:
    """A finished training's checkpoint of the config with ``training_hash``."""
    data = read_checkpoint(path, training_hash)
    if not data.get("complete"):
        steps = data.get("config", {}).get("train", {}).get("steps")
        raise StoreError(
            f"model checkpoint {str(path)!r} is incomplete (step {data['trainer'].get('step')} of "
            f"{steps}); allowed: a finished training (rerun lqcdml train)"
        )
    return data
