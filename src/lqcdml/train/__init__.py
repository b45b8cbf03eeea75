"""Training loops."""

from .flow import FlowTrainer, reverse_kl_loss

__all__ = ["FlowTrainer", "reverse_kl_loss"]
