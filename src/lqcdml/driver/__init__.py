"""Drivers: advance any sampler's chain into an ensemble store, train a model into a
checkpoint; both resume from what is on disk.

The names below are loaded on first use (PEP 562 ``__getattr__``), not when the package is
imported: ``lqcdml measure``, ``estimate`` and ``analyze`` import their own driver module
(``driver.measure``, ...), and would otherwise pay for every sampler, network and solver the
chain driver imports. ``from lqcdml.driver import X`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and the import graph (code digests, layer test)
    from .chain import ChainHooks, ChainSpec, Reprojection, SilentHooks, resume_state, run_chain_into_store
    from .checkpoints import read_checkpoint, read_complete_checkpoint, save_checkpoint
    from .train import Trainer, TrainHooks, train_into_checkpoint

#: each exported name and the submodule that defines it
_EXPORTS = {
    "ChainHooks": "chain",
    "ChainSpec": "chain",
    "Reprojection": "chain",
    "SilentHooks": "chain",
    "resume_state": "chain",
    "run_chain_into_store": "chain",
    "read_checkpoint": "checkpoints",
    "read_complete_checkpoint": "checkpoints",
    "save_checkpoint": "checkpoints",
    "Trainer": "train",
    "TrainHooks": "train",
    "train_into_checkpoint": "train",
}

__all__ = [
    "ChainHooks",
    "ChainSpec",
    "Reprojection",
    "SilentHooks",
    "TrainHooks",
    "Trainer",
    "read_checkpoint",
    "read_complete_checkpoint",
    "resume_state",
    "run_chain_into_store",
    "save_checkpoint",
    "train_into_checkpoint",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
