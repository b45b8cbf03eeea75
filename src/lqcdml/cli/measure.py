"""``lqcdml measure``: observables of every committed configuration of a store
(``driver.measure.measure_store``); a killed run, rerun, continues from its journal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import select_ensemble
from .args import add_config_args, add_gpus_arg, add_progress_arg, config_from_args, new_path, path, progress_choice
from .progress import Progress

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("measure", help="measure every committed configuration of a store")
    add_config_args(p)
    add_gpus_arg(p)
    p.add_argument("--store", type=path, required=True, help="ensemble store to read")
    p.add_argument("--out", type=new_path, required=True, help="observable store (.zarr) to write")
    p.add_argument(
        "--include-therm",
        action="store_true",
        help="measure the first chain.n_therm configurations too (skipped by default)",
    )
    p.add_argument(
        "--expensive",
        action="store_true",
        help="the expensive target of estimator.kind = bias_corrected, on its labelled configurations",
    )
    add_progress_arg(p)
    p.set_defaults(run=run)


class _MeasureProgress:
    """Measurement hooks that report through a ``Progress`` display (bar or log lines)."""

    def __init__(self, ensemble: str, enabled: bool | None):
        self.ensemble, self.enabled = ensemble, enabled
        self.bar: Progress | None = None

    def begin(self, done: int, total: int, replica: int) -> None:
        self.bar = Progress(
            total=total, initial=done, label=f"measure {self.ensemble} r{replica:02d}", enabled=self.enabled
        )

    def progress(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(done)

    def message(self, text: str) -> None:
        """One line in the log (above the bar once there is one)."""
        if self.bar is None:
            print(f"[measure {self.ensemble}] {text}", file=sys.stderr, flush=True)
        else:
            self.bar.message(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from ..driver.measure import measure_store

    cfg = config_from_args(args)
    name, _ = select_ensemble(cfg, args.ensemble)
    hooks = _MeasureProgress(name, progress_choice(args.progress))
    try:
        measure_store(cfg, name, Path(args.store), Path(args.out), hooks, args.include_therm, args.expensive)
    finally:
        hooks.close()
    return 0
