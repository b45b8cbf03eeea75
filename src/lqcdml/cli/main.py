"""Command-line entry point ``lqcdml``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lqcdml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    qs = sub.add_parser("quickstart", help="small HMC ensembles checked against exact results")
    qs.add_argument("--out", required=True, help="output folder (summary.md, summary.json)")
    qs.add_argument("--n-traj", type=int, default=1000, help="measured trajectories per ensemble")
    qs.add_argument("--seed", type=int, default=1)
    qs.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.command == "quickstart":
        if args.n_traj < 20:
            parser.error(f"--n-traj = {args.n_traj}; allowed: >= 20")
        if args.threads < 1:
            parser.error(f"--threads = {args.threads}; allowed: >= 1")
        from .quickstart import main as quickstart

        quickstart(args.out, args.n_traj, args.seed, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
