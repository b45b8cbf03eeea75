"""``lqcdml``: compose configs, generate and measure ensembles, analyse, inspect stores.

Every subcommand that needs a configuration takes Hydra overrides
(``+experiment=quickstart ensembles.u1_2d.theory.beta=2.3``; with ``--ensemble NAME``
the short form ``theory.beta=2.3`` works too) or a resolved YAML written by
``lqcdml compose`` (``--config FILE``), and explicit output paths. Bad input stops
before any work with one line naming the key, the value and what is allowed (exit
code 2). Exit code 3: a solver did not converge; 4: ``verify`` found damage. Every
error of the package (``lqcdml.errors.LqcdmlError``) is reported as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..config import dump, select_ensemble
from ..errors import LqcdmlError
from .args import Parser, add_config_args, config_from_args, device_for_gpus, new_path, one_line

__all__ = ["main", "device_for_gpus"]

_config = config_from_args  # the config of a command's arguments (tests call it by this name)


def _parser() -> argparse.ArgumentParser:
    """Every subcommand's parser; each runs ``args.run(args)``. The command modules are imported
    here, not on import: the code digest follows this module's top-level imports only."""
    from . import analyze, estimate, generate, info, interop, measure, profile, train

    parser = Parser(prog="lqcdml", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compose", help="compose, validate and write the resolved config")
    add_config_args(p)
    p.add_argument("--out", type=new_path, required=True, help="resolved YAML to write")
    p.set_defaults(run=_compose)
    for module in (generate, train, measure, estimate, analyze):
        module.add_parser(sub)
    interop.add_parsers(sub)
    info.add_verify_parser(sub)
    info.add_info_parser(sub)
    p = sub.add_parser("devices", help="JSON: torch build, visible CUDA devices, the scheduler's GPU variables")
    p.add_argument("--out", type=new_path, help="also write the JSON here")
    p.set_defaults(run=_devices)
    profile.add_parser(sub)
    return parser


def _compose(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.ensemble is not None:
        select_ensemble(cfg, args.ensemble)  # the short overrides went to this ensemble
    dump(cfg, args.out)
    return 0


def _devices(args: argparse.Namespace) -> int:
    from ..atomic import write_json_atomic
    from .devices import devices

    report = devices()
    if args.out:
        write_json_atomic(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    return args.run(args)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (a usage error: one line and 2, ``--help``: 0)."""
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # overrides may stand anywhere between the options (key=value, +key=value, ~key)
        unknown = [x for x in extra if x.startswith("-") or "overrides" not in vars(args)]
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, or a usage error reported in one line
        return exc.code if isinstance(exc.code, int) else 2
    if extra:
        args.overrides = [*args.overrides, *extra]
    with warnings.catch_warnings():
        if not sys.warnoptions:  # the user's -W / PYTHONWARNINGS are honoured
            warnings.simplefilter("ignore")  # every problem is reported as one line
        return _run_reporting(args)


def _run_reporting(args: argparse.Namespace) -> int:
    """``run(args)``, every error of the package or the machine reported in one line."""
    try:
        return run(args)
    except LqcdmlError as exc:
        kind = {3: "solver error", 4: "damage"}.get(exc.exit_code, "error")
        print(f"lqcdml {args.command}: {kind}: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine: disk full, read-only, a file where a folder should be, ...
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"lqcdml {args.command}: error: {one_line(exc.strerror or exc)}{where}; committed data is "
            "intact (rerun when the cause is fixed)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"lqcdml {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
