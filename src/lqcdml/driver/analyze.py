"""Analyse an experiment (``lqcdml analyze``): its observable stores, manifests and estimates
loaded and checked against the config, then the summary and figures of ``analysis.report``.

The config is read here only: the analysis gets an ``analysis.experiment.ExperimentView``
of it (plain data).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from ..analysis.experiment import EnsembleView, ExperimentView
from ..analysis.report import write_report
from ..analysis.summary import Row
from ..store import StoreError, combine_replicas, read_observables

if TYPE_CHECKING:
    from ..config import RootConfig

__all__ = ["analyze", "experiment_view"]


def analyze(
    cfg: RootConfig,
    observable_stores: Sequence[Path],
    out_dir: Path,
    figures: bool = True,
    manifests: Sequence[Path] = (),
    estimates: Sequence[Path] = (),
    config_path: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Row]:
    """Summary (``summary.md``, ``summary.csv``, ``comparison.csv``) and figures (``figures/``)
    in ``out_dir``; returns the summary rows. ``manifests``: of generate and train (cost table,
    training figures); ``estimates``: of ``lqcdml estimate``; ``config_path``: the resolved
    config (its digest is recorded); ``log`` gets the drift and replica warnings."""
    datasets = _observables(cfg, observable_stores)
    loaded = [json.loads(Path(m).read_text()) for m in manifests]
    results = [_estimate(cfg, Path(e)) for e in estimates]
    kinds = {res["kind"]: _estimator_kind(cfg, res) for res in results}
    return write_report(
        experiment_view(cfg), datasets, out_dir, loaded, results, figures, config_path, log, estimators=kinds
    )


def _observables(cfg: RootConfig, paths: Sequence[Path]) -> dict[str, xr.Dataset]:
    """Each ensemble's observable stores of this experiment, its replicas combined."""
    by_ensemble = defaultdict(list)
    for path in paths:
        ds = read_observables(path)
        if ds.attrs.get("experiment") != cfg.experiment:
            raise StoreError(
                f"observable store {str(path)!r} belongs to experiment {ds.attrs.get('experiment')!r}; "
                f"allowed: observable stores of experiment {cfg.experiment!r}"
            )
        by_ensemble[ds.attrs["ensemble"]].append(ds)
    for ensemble in sorted(by_ensemble):
        if ensemble not in cfg.ensembles:
            raise StoreError(
                f"observable stores of ensemble {ensemble!r}, which experiment "
                f"{cfg.experiment!r} does not define; allowed: {', '.join(sorted(cfg.ensembles))}"
            )
    return {ensemble: combine_replicas(by_ensemble[ensemble]) for ensemble in sorted(by_ensemble)}


def _estimate(cfg: RootConfig, path: Path) -> dict:
    """An estimate JSON of this experiment and of an ensemble it defines (same chain hash)."""
    from ..identity import matches_chain

    res = json.loads(path.read_text())
    ens = cfg.ensembles.get(res.get("ensemble"))
    if res.get("experiment") != cfg.experiment or ens is None or not matches_chain(res, ens, cfg.dtype):
        raise StoreError(
            f"estimate {str(path)!r} was not made for an ensemble of experiment {cfg.experiment!r} "
            "with this config (experiment, ensemble or chain hash differs)"
        )
    return res


def _estimator_kind(cfg: RootConfig, res: dict):
    """The estimator kind of an estimate JSON: the one its ensemble's config names."""
    from ..kinds import ESTIMATORS

    kind = cfg.ensembles[res["ensemble"]].estimator.kind
    if res.get("kind") != kind:
        raise StoreError(
            f"estimate of ensemble {res['ensemble']!r} has kind {res.get('kind')!r}; allowed: {kind!r} "
            "(the ensemble's estimator.kind)"
        )
    return ESTIMATORS.lookup(kind)


def experiment_view(cfg: RootConfig) -> ExperimentView:
    """What the analysis reads of the config."""
    return ExperimentView(
        cfg.experiment, {name: _ensemble_view(cfg, name) for name in cfg.ensembles}, cfg.device, cfg.dtype
    )


def _ensemble_view(cfg: RootConfig, name: str) -> EnsembleView:
    from ..config import to_container
    from ..identity import job_provenance
    from ..kinds import SAMPLERS

    ens = cfg.ensembles[name]
    rec = job_provenance(cfg, name)
    sampler = SAMPLERS.lookup(ens.sampler.name)
    return EnsembleView(
        theory=to_container(ens.theory),
        sampler=ens.sampler.name,
        sampler_options=dict(ens.sampler.options or {}),
        model_kind=getattr(ens.model, "kind", ""),
        needs_model=sampler.needs_model,
        n_chains=ens.chain.n_chains,
        save_every=ens.chain.save_every,
        chain_hash=rec["config_hash"],
        seeds=dict(rec["seeds"]),
        reference=sampler.reference,
        label=sampler.label or "",
    )
