"""Identity and provenance: the hashes that say which chain, model or file an output comes
from, the provenance record of a job, and what a store must hold given its stored config."""

from .hashes import (
    chain_definition,
    ensemble_hash,
    file_digest,
    matches_chain,
    model_definition,
    stored_chain_hash,
    training_definition,
    training_hash,
)
from .provenance import job_provenance

__all__ = [
    "chain_definition",
    "ensemble_hash",
    "file_digest",
    "job_provenance",
    "matches_chain",
    "model_definition",
    "stored_chain_hash",
    "training_definition",
    "training_hash",
]
