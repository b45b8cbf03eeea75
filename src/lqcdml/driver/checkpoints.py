"""Model checkpoints on disk: one ``torch.save`` file, replaced atomically.

A checkpoint holds the trainer state (model, optimiser, schedule, generator, step,
history), the config it belongs to and its ``training_hash``, the training seconds so
far and ``complete``. Readers check the hash, so a model is never used for another
config.

A checkpoint is data, never code: it holds only tensors, numbers, strings, ``None`` and
dicts, lists and tuples of them, and is read with ``torch.load(weights_only=True)``. A file
whose pickle asks for anything else (a class, a function such as ``os.system``) is refused
before any of it runs.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..store import StoreError

__all__ = ["save_checkpoint", "read_checkpoint", "read_complete_checkpoint", "plain_checkpoint_data"]

#: what a checkpoint may hold, as the refusals name it
ALLOWED = "a checkpoint written by lqcdml train (tensors, numbers, strings, lists and dicts only)"

_PRIMITIVES = (str, bytes, bool, int, float, complex, type(None))  # exactly these: np.float64 is a float


def plain_checkpoint_data(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` with numpy values as Python numbers/tensors and paths as strings, so that
    ``torch.load(weights_only=True)`` reads it; containers whose items need no change are
    returned as they are (a module's state dict keeps its ``_metadata``)."""
    if type(obj) in _PRIMITIVES or isinstance(obj, (torch.Tensor, torch.dtype, torch.device)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        items = {k: plain_checkpoint_data(v, f"{where}[{k!r}]") for k, v in obj.items()}
        if isinstance(obj, dict) and all(items[k] is v for k, v in obj.items()):
            return obj
        return dict(items)
    if isinstance(obj, (list, tuple)):
        elements = [plain_checkpoint_data(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if all(a is b for a, b in zip(elements, obj)):
            return obj
        return type(obj)(elements) if type(obj) in (list, tuple) else list(elements)
    raise TypeError(
        f"{where} = {type(obj).__name__} object; allowed in a checkpoint: tensors, numbers, "
        "strings, None, dicts, lists, tuples"
    )


def save_checkpoint(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` (made plain: see ``plain_checkpoint_data``) to ``path`` through a
    temporary file and a rename."""
    data = plain_checkpoint_data(data)
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def _code_needed(path: Path, exc: BaseException) -> str:
    """What a refused pickle asks for (``posix.system``), read without running it."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - a legacy or raw pickle: the loader's message names it
        names = []
    text = str(exc)
    names = names or re.findall(r"GLOBAL ([\w.]+)", text)
    if names:
        return ", ".join(dict.fromkeys(names))
    m = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    detail = m.group(1).strip() if m else "unknown"
    return f"pickle content beyond tensors, numbers, strings, lists and dicts: {detail}"


def _load(path: Path) -> Any:
    """The file's content through the weights-only unpickler (no code runs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": one line only
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise StoreError(
                f"model checkpoint {str(path)!r} is not readable ({_first_line(exc)}); allowed: {ALLOWED}"
            ) from None
        raise StoreError(
            f"model checkpoint {str(path)!r} is not an lqcdml checkpoint "
            f"(it needs code to load: {_code_needed(path, exc)}); allowed: {ALLOWED}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise StoreError(
            f"model checkpoint {str(path)!r} is not readable ({_first_line(exc)}); allowed: {ALLOWED}"
        ) from None


def read_checkpoint(path: str | Path, training_hash: str | None = None) -> dict[str, Any]:
    """A checkpoint's content; with ``training_hash``, refuse one of another config."""
    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict) or "trainer" not in data:
        raise StoreError(
            f"model checkpoint {str(path)!r} is not an lqcdml model checkpoint (no 'trainer' entry); allowed: {ALLOWED}"
        )
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
