"""``lqcdml profile install``: a Snakemake profile of the source tree into Snakemake's own
folder, with the site's keys filled in (``driver.profiles``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import path

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="Snakemake profiles of the source tree (`snakemake --profile NAME`)")
    prof = p.add_subparsers(dest="profile_command", required=True)
    q = prof.add_parser("install", help="write profiles/NAME into Snakemake's user profile folder")
    q.add_argument("name", help="profile name (a folder of profiles/, e.g. cluster)")
    q.add_argument("--account", help="SLURM account (default-resources.slurm_account)")
    q.add_argument("--partition", help="SLURM partition of CPU jobs")
    q.add_argument("--gpu-partition", help="SLURM partition of the GPU rules")
    q.add_argument("--gpu-model", help="GPU model the GPU rules ask for (gres)")
    q.add_argument(
        "--gpus",
        type=int,
        help="GPUs per job of the GPU rules (default: the profile's, 1); 0: no GPUs, those rules on the CPU partition",
    )
    q.add_argument("--dest", type=path, help="folder to write NAME/config.yaml into (default: Snakemake's user folder)")
    q.add_argument("--force", action="store_true", help="replace an existing profile")
    q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..driver.profiles import install_profile

    dest = Path(args.dest) / args.name if args.dest else None
    target = install_profile(
        args.name, args.account, args.partition, args.gpu_partition, args.gpu_model, dest, args.force, args.gpus
    )
    print(f"profile {args.name!r} -> {target} (snakemake --profile {args.name})")
    return 0
