"""``lqcdml train``: train (or resume training) the model of an ensemble (``driver.models``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import select_ensemble
from .args import add_config_args, add_gpus_arg, add_progress_arg, config_from_args, new_path, path, progress_choice
from .progress import LazyProgress

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train (or resume training) an ensemble's model (flow, SLHMC network)")
    add_config_args(p)
    add_gpus_arg(p)
    p.add_argument("--checkpoint", type=new_path, required=True, help="model checkpoint (.pt) to create or resume")
    p.add_argument(
        "--source-store",
        type=path,
        action="append",
        default=[],
        help="ensemble store of train.source (repeat for each replica)",
    )
    p.add_argument("--manifest", type=new_path, help="JSON written when the training is complete")
    add_progress_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..driver.models import train_model

    cfg = config_from_args(args)
    name, _ = select_ensemble(cfg, args.ensemble)
    hooks = _TrainProgress(f"train {name}", progress_choice(args.progress), unit="step")
    try:
        summary = train_model(
            cfg,
            name,
            Path(args.checkpoint),
            Path(args.manifest) if args.manifest else None,
            hooks,
            [Path(p) for p in args.source_store],
        )
    finally:
        hooks.close()
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return 0


class _TrainProgress(LazyProgress):
    def progress(self, done: int, total: int, loss: float, **values: float) -> None:
        assert self.bar is not None  # the driver calls begin first
        self.bar.update(done, loss=loss, **{k: v for k, v in values.items() if k in ("ess", "acceptance")})
