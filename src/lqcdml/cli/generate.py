"""``lqcdml generate``: run (or resume) one replica of an ensemble into a Zarr store.

Config -> ``ChainSpec`` (``config.chains``) -> ``driver.run_chain_into_store``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import __version__
from ..atomic import write_json_atomic
from ..config import RootConfig
from ..config.chains import chain_spec
from ..config.records import job_provenance
from ..driver import run_chain_into_store
from .progress import LazyProgress

__all__ = ["generate", "ProgressHooks"]


class ProgressHooks(LazyProgress):
    """Driver hooks that report through a ``Progress`` display (bar or log lines)."""

    def progress(self, done: int, total: int, acceptance: float, delta_h: float) -> None:
        self.bar.update(done, acceptance=acceptance, dH=delta_h)


def generate(
    cfg: RootConfig,
    ensemble: str,
    replica: int,
    store_path: Path,
    manifest: Path | None = None,
    progress: bool | None = None,
    model_path: Path | None = None,
    start_store: Path | None = None,
    verify: str = "full",
) -> dict:
    """Advance replica ``replica`` of ``ensemble`` to ``chain.n_configs`` configurations.

    Creates the store, or resumes it from its last commit after checking that it was
    written by the same chain definition and verifying it (``verify``: ``full`` or ``tail``,
    see ``driver.run_chain_into_store``). Returns (and writes to ``manifest``) a JSON
    summary.
    """
    spec = chain_spec(cfg, ensemble, replica, model_path, store_path=store_path, start_store=start_store)
    torch.set_num_threads(cfg.threads)
    hooks = ProgressHooks(f"{ensemble} r{replica:02d}", progress)
    try:
        result = run_chain_into_store(spec, store_path, cfg.ensembles[ensemble].chain.n_configs, hooks, verify)
    finally:
        hooks.close()
    summary = {
        **result,
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "replica": replica,
        "config_hash": spec.meta["config_hash"],
        **({"model_digest": spec.meta["model_digest"]} if "model_digest" in spec.meta else {}),
        "version": __version__,
        "provenance": job_provenance(cfg, ensemble, replica, spec.meta.get("model_digest")),
    }
    if manifest is not None:
        write_json_atomic(manifest, summary)
    return summary
