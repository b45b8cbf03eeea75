"""Drivers: advance any sampler's chain into an ensemble store, train a model into a
checkpoint; both resume from what is on disk."""

from .chain import ChainHooks, ChainSpec, Reprojection, SilentHooks, resume_state, run_chain_into_store
from .checkpoints import read_checkpoint, read_complete_checkpoint, save_checkpoint
from .train import Trainer, TrainHooks, train_into_checkpoint

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
