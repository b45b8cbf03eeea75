"""Run an ensemble's estimator on its stores and write the estimate JSON (``lqcdml estimate``).

The stores are opened here and checked against the ensemble's chain (its chain hash, with
the one trained model every replica shares); the ensemble's estimator kind
(``kinds.ESTIMATORS``) computes the estimate. The JSON is written atomically, with the experiment,
the chain hash and the job's provenance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from .. import __version__
from ..atomic import write_json_atomic
from ..estimators import EnsembleIndex
from ..estimators.cv_problems import ControlVariateProblem
from ..lattice import Manifold
from ..store import EnsembleStore, StoreError, read_observables
from ..theories import Action

if TYPE_CHECKING:
    from ..config import RootConfig

__all__ = ["estimate", "StoreSources"]


def estimate(
    cfg: RootConfig,
    ensemble: str,
    out: Path,
    obs: list[Path],
    expensive: list[Path],
    stores: list[Path],
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the ensemble's estimator; writes ``out`` (JSON) and returns its content. ``obs``:
    observable stores, ``expensive``: those of ``measure --expensive``, ``stores``: ensemble
    stores (the kinds read what they need); ``log`` gets the progress lines."""
    from ..assembly import torch_threads
    from ..estimators.pipeline_inputs import EstimateInputError
    from ..identity import ensemble_hash, job_provenance
    from ..kinds import ESTIMATORS

    ens = cfg.ensembles[ensemble]
    with torch_threads(cfg.threads):
        kind = ESTIMATORS.lookup(ens.estimator.kind, f"ensembles.{ensemble}.estimator.kind")
        if not kind.runs:
            allowed = ", ".join(k.name for k in ESTIMATORS if k.runs)
            raise EstimateInputError(
                f"ensembles.{ensemble}.estimator.kind = {kind.name!r}; allowed: {allowed} (nothing to estimate)"
            )
        sources = StoreSources(cfg, ensemble, obs, expensive, stores)
        result = kind.estimate(ens, sources, log or (lambda line: None))
        result |= {"kind": kind.name, "ensemble": ensemble}
        digest = sources.model_digest  # the trained model of the chain the inputs come from
        if digest is not None:
            result["model_digest"] = digest
        result |= {
            "experiment": cfg.experiment,
            "lqcdml_version": __version__,
            "config_hash": ensemble_hash(ens, cfg.dtype, digest),
            "provenance": job_provenance(cfg, ensemble, model_digest=digest),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, result)
        return result


class StoreSources:
    """``estimators.pipeline_inputs.EstimatorSources`` of the stores of one ensemble, each
    checked against its chain when it is read; ``model_digest``: the trained model they
    were sampled with (``None``: no model)."""

    def __init__(self, cfg: RootConfig, ensemble: str, obs: list[Path], expensive: list[Path], stores: list[Path]):
        from ..kinds.estimators import measured_configs, n_measured

        self.cfg, self.ensemble, self.ens = cfg, ensemble, cfg.ensembles[ensemble]
        self.obs, self.expensive, self.stores = list(obs), list(expensive), list(stores)
        self.n_measured, self.per_chain = n_measured(self.ens), measured_configs(self.ens)
        self.model_digest: str | None = None

    def observables(self) -> tuple[list[xr.Dataset], list[xr.Dataset]]:
        opened = {p: read_observables(p) for p in [*self.obs, *self.expensive]}
        self.model_digest = self._shared_model(
            [(repr(str(p)), dict(ds.attrs)) for p, ds in opened.items()],
            f"observable store of ensemble {self.ensemble!r}",
        )
        return _by_replica([opened[p] for p in self.obs]), _by_replica([opened[p] for p in self.expensive])

    def configurations(self) -> tuple[torch.Tensor, EnsembleIndex]:
        from ..assembly import torch_device

        ens, per_chain = self.ens, self.per_chain
        opened = sorted((EnsembleStore.open(p) for p in self.stores), key=lambda s: int(s.meta["replica"]))
        self.model_digest = self._shared_model(
            [(f"of replica {st.meta.get('replica')}", st.meta) for st in opened], f"ensemble store of {self.ensemble!r}"
        )
        fields, replica, config = [], [], []
        for st in opened:
            n = st.n_committed
            if n < ens.chain.n_configs:
                raise StoreError(
                    f"store of replica {st.meta['replica']} holds {n} of {ens.chain.n_configs} "
                    "configurations: finish the chain first"
                )
            first = n - per_chain
            block = np.stack([st.read_fields(i) for i in range(first, first + per_chain)])  # [n, B, ...]
            traj = st.read_records("trajectory")[first : first + per_chain].astype(np.int64)
            n_b = block.shape[1]
            for b in range(n_b):
                fields.append(block[:, b])
                replica.append(np.full(per_chain, (int(st.meta["replica"]) - 1) * n_b + b + 1))
                config.append(traj)
        x = torch.from_numpy(np.concatenate(fields))
        index = EnsembleIndex(self.ensemble, np.concatenate(replica), np.concatenate(config))
        return x.to(torch_device(self.cfg.device)), index

    def action(self) -> Action:
        from ..assembly import build_action

        return build_action(self.ens.theory)

    def group(self) -> Manifold:
        from ..assembly import build_group

        return build_group(self.ens.theory)

    def control_variate(self) -> ControlVariateProblem:
        from ..kinds import resolve, theory_kind

        ref = theory_kind(self.ens.theory).control_variate
        if ref is None:
            raise StoreError(f"theory.name = {self.ens.theory.name!r} names no control-variate problem")
        return resolve(ref)

    def _shared_model(self, records: list[tuple[str, dict]], what: str) -> str | None:
        """Check that every ``(name, record)`` (store metadata or observable-store attributes)
        comes from the ensemble's chain; the model digest they share (``None``: no model)."""
        from ..identity import matches_chain

        for name, rec in records:
            if not matches_chain(rec, self.ens, self.cfg.dtype):
                raise StoreError(f"{what} {name} was not made on this ensemble of this config (chain hash differs)")
        digests = sorted({str(rec.get("model_digest")) for _, rec in records})
        if len(digests) > 1:
            raise StoreError(
                f"{what}s of one ensemble were sampled with the models {', '.join(digests)}; "
                "allowed: one trained model for every replica"
            )
        return records[0][1].get("model_digest") if records else None


def _by_replica(stores: list[xr.Dataset]) -> list[xr.Dataset]:
    return sorted(stores, key=lambda ds: int(ds["replica"].values[0]))
