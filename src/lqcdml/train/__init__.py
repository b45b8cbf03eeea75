"""Training loops: normalizing flows (reverse KL), self-learning HMC effective actions."""

from .flow import FlowTrainer, evaluate_flow, reverse_kl_loss
from .slhmc import OfflineSLHMCTrainer, OnlineSLHMCTrainer, action_mismatch, equilibrium_acceptance

__all__ = [
    "FlowTrainer",
    "OfflineSLHMCTrainer",
    "OnlineSLHMCTrainer",
    "action_mismatch",
    "equilibrium_acceptance",
    "evaluate_flow",
    "reverse_kl_loss",
]
