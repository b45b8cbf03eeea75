"""Training loops."""

from .flow import FlowTrainer, evaluate_flow, reverse_kl_loss

__all__ = ["FlowTrainer", "evaluate_flow", "reverse_kl_loss"]
