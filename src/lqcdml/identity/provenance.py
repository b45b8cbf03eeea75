"""The provenance record of a job's output, from its resolved config."""

from __future__ import annotations

from typing import Any

from ..config.compose import to_container
from ..config.schema import RootConfig
from ..config.seeds import replica_seed
from ..provenance import provenance
from .hashes import ensemble_hash

__all__ = ["job_provenance"]


def job_provenance(
    cfg: RootConfig, ensemble: str, replica: int | None = None, model_digest: str | None = None
) -> dict[str, Any]:
    """Resolved ensemble config, the seeds it uses (chain, this replica's stream, training,
    estimator split), device, dtype, package versions and git commit: what reproduces the output.
    ``model_digest``: the trained model of a job on a model sampler's chain (recorded, and part
    of the chain hash)."""
    ens = cfg.ensembles[ensemble]
    seeds = {"chain": ens.chain.seed, "estimator": ens.estimator.seed}
    if ens.train is not None:
        seeds["train"] = ens.train.seed
    if replica is not None:
        seeds["replica_stream"] = replica_seed(ens.chain.seed, replica)
    model = {} if model_digest is None else {"model_digest": model_digest}
    return provenance(
        to_container(ens),
        seeds,
        experiment=cfg.experiment,
        ensemble=ensemble,
        config_hash=ensemble_hash(ens, cfg.dtype, model_digest),
        device=cfg.device,
        dtype=cfg.dtype,
        **model,
    )
