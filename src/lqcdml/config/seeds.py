"""How the seeds of a config derive the streams a run uses, and how large they may be."""

from __future__ import annotations

__all__ = ["TORCH_SEED_MAX", "SKLEARN_SEED_MAX", "MAX_REPLICAS", "replica_seed"]

#: seeds feed torch.Generator.manual_seed (0 .. 2^64 - 1) and scikit-learn (0 .. 2^32 - 1)
TORCH_SEED_MAX = 2**64 - 1
SKLEARN_SEED_MAX = 2**32 - 1
#: chain.replicas is at most this (replica names r01..r99)
MAX_REPLICAS = 99


def replica_seed(seed: int, replica: int) -> int:
    """Seed of job replica ``replica`` (1-based) of a chain with seed ``seed``."""
    return int(seed) * 1000 + int(replica)
