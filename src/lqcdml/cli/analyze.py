"""``lqcdml analyze``: tables and figures of an experiment from its observable stores
(``driver.analyze``; the summary and its tables: ``analysis.report``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import add_config_args, config_from_args, path

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="summary table and figures of an experiment")
    add_config_args(p, ensemble=False)
    p.add_argument("--obs", type=path, nargs="+", required=True, help="observable stores")
    p.add_argument("--out", type=path, required=True, help="output folder (summary.md, summary.csv, figures/)")
    p.add_argument("--manifests", type=path, nargs="*", default=[], help="generate/train manifests (cost table)")
    p.add_argument("--estimates", type=path, nargs="*", default=[], help="JSON of `lqcdml estimate` (estimator tables)")
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(run=run)


def _log(line: str) -> None:
    print(f"lqcdml analyze: {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..driver.analyze import analyze

    cfg = config_from_args(args)
    rows = analyze(
        cfg,
        [Path(p) for p in args.obs],
        Path(args.out),
        not args.no_figures,
        [Path(m) for m in args.manifests],
        [Path(e) for e in args.estimates],
        Path(args.config) if args.config else None,
        _log,
    )
    print(f"{len(rows)} rows -> {Path(args.out) / 'summary.md'}")
    return 0
