"""``lqcdml generate``: run (or resume) one replica of an ensemble into a Zarr store.

Config -> ``ChainSpec`` (``driver.specs.chain_spec``) -> ``driver.run_chain_into_store``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..config import select_ensemble
from .args import add_config_args, add_gpus_arg, add_progress_arg, config_from_args, new_path, path, progress_choice
from .progress import LazyProgress

if TYPE_CHECKING:
    from ..config import RootConfig

__all__ = ["generate", "ProgressHooks", "add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="run or resume one replica of an ensemble")
    add_config_args(p)
    add_gpus_arg(p)
    p.add_argument("--replica", type=int, default=1, help="job replica, 1..chain.replicas")
    p.add_argument("--store", type=new_path, required=True, help="ensemble store (.zarr) to create or resume")
    p.add_argument(
        "--verify",
        choices=["full", "tail"],
        default="full",
        help="before continuing a store, read every configuration (full) or the last ones (tail)",
    )
    p.add_argument("--manifest", type=new_path, help="JSON written when the chain reaches its length")
    p.add_argument("--model", type=path, help="trained model checkpoint (sampler.name = flow or slhmc)")
    p.add_argument(
        "--start-store", type=path, help="store of the same replica of chain.start_from (its last configuration)"
    )
    add_progress_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    name, _ = select_ensemble(cfg, args.ensemble)
    summary = generate(
        cfg,
        name,
        args.replica,
        Path(args.store),
        Path(args.manifest) if args.manifest else None,
        progress_choice(args.progress),
        Path(args.model) if args.model else None,
        Path(args.start_store) if args.start_store else None,
        args.verify,
    )
    print(json.dumps(summary))
    return 0


class ProgressHooks(LazyProgress):
    """Driver hooks that report through a ``Progress`` display (bar or log lines)."""

    def progress(self, done: int, total: int, acceptance: float, delta_h: float) -> None:
        assert self.bar is not None  # the driver calls begin first
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

    from ..assembly import torch_threads
    from ..atomic import write_json_atomic
    from ..driver import run_chain_into_store
    from ..driver.specs import chain_spec
    from ..identity import job_provenance

    spec = chain_spec(cfg, ensemble, replica, model_path, store_path=store_path, start_store=start_store)
    with torch_threads(cfg.threads):
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
