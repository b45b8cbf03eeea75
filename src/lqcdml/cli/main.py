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
from pathlib import Path, PurePath
from typing import NoReturn

from ..config import ConfigError, RootConfig, compose, dump, expand_overrides, load, select_ensemble
from ..config.compose import merge_overrides
from ..errors import LqcdmlError

__all__ = ["main"]


def _config(args: argparse.Namespace) -> RootConfig:
    overrides = expand_overrides(args.overrides, getattr(args, "ensemble", None))
    if args.config:
        cfg = load(args.config)
        cfg = merge_overrides(cfg, overrides) if overrides else cfg
    else:
        cfg = compose(overrides, args.config_dir)
    gpus = getattr(args, "gpus", None)
    if gpus is not None:  # after the user's overrides: the job runs where its resources are
        device = device_for_gpus(gpus, cfg.device)
        cfg = merge_overrides(cfg, [f"device={device}"]) if device != cfg.device else cfg
    return cfg


def device_for_gpus(gpus: int, configured: str) -> str:
    """The device of a job granted ``gpus`` GPUs (Snakemake's ``resources.gpu``): none runs on
    the CPU; one or more on the configured CUDA device, or ``cuda`` where the config says
    ``cpu`` (under SLURM, CUDA_VISIBLE_DEVICES picks the granted GPU)."""
    if gpus < 0:
        raise ConfigError(f"--gpus = {gpus}; allowed: 0 (run on the CPU) or more (run on CUDA)")
    if gpus == 0:
        return "cpu"
    return configured if configured.startswith("cuda") else "cuda"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``<prog>: error: <message>`` and exit code 2 (the usage
    is left to ``--help``); its subparsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _path(text: str) -> str:
    """A path option: any path but the empty one (or one holding NUL)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"path {text!r}; allowed: a non-empty path without NUL characters")
    return text


def _new_path(text: str) -> str:
    """A file or store to create: a path ending in a name (not '', '.', '..' or '/')."""
    name = PurePath(_path(text)).name
    if name in ("", ".", ".."):
        raise argparse.ArgumentTypeError(f"path {text!r}; allowed: a path ending in a file or folder name")
    return text


def _add_gpus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, help="GPUs granted to this job: 0 runs on the CPU, 1+ on CUDA "
                   "(sets device; default: the config's device)")


def _add_config_args(p: argparse.ArgumentParser, ensemble: bool = True) -> None:
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +experiment=quickstart")
    p.add_argument("--config", type=_path, help="resolved YAML from `lqcdml compose` (instead of composing)")
    p.add_argument("--config-dir", type=_path, help="Hydra conf/ folder (default: the source tree's conf/)")
    if ensemble:
        p.add_argument("--ensemble", help="ensemble name (optional when the experiment has one)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lqcdml", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compose", help="compose, validate and write the resolved config")
    _add_config_args(p)
    p.add_argument("--out", type=_new_path, required=True, help="resolved YAML to write")

    p = sub.add_parser("generate", help="run or resume one replica of an ensemble")
    _add_config_args(p)
    _add_gpus_arg(p)
    p.add_argument("--replica", type=int, default=1, help="job replica, 1..chain.replicas")
    p.add_argument("--store", type=_new_path, required=True, help="ensemble store (.zarr) to create or resume")
    p.add_argument("--verify", choices=["full", "tail"], default="full",
                   help="before continuing a store, read every configuration (full) or the last ones (tail)")
    p.add_argument("--manifest", type=_new_path, help="JSON written when the chain reaches its length")
    p.add_argument("--model", type=_path, help="trained model checkpoint (sampler.name = flow or slhmc)")
    p.add_argument("--start-store", type=_path,
                   help="store of the same replica of chain.start_from (its last configuration)")
    p.add_argument("--progress", choices=["auto", "bar", "lines"], default="auto")

    p = sub.add_parser("train", help="train (or resume training) an ensemble's model (flow, SLHMC network)")
    _add_config_args(p)
    _add_gpus_arg(p)
    p.add_argument("--checkpoint", type=_new_path, required=True, help="model checkpoint (.pt) to create or resume")
    p.add_argument("--source-store", type=_path, action="append", default=[],
                   help="ensemble store of train.source (repeat for each replica)")
    p.add_argument("--manifest", type=_new_path, help="JSON written when the training is complete")
    p.add_argument("--progress", choices=["auto", "bar", "lines"], default="auto")

    p = sub.add_parser("measure", help="measure every committed configuration of a store")
    _add_config_args(p)
    _add_gpus_arg(p)
    p.add_argument("--store", type=_path, required=True, help="ensemble store to read")
    p.add_argument("--out", type=_new_path, required=True, help="observable store (.zarr) to write")
    p.add_argument("--include-therm", action="store_true",
                   help="measure the first chain.n_therm configurations too (skipped by default)")
    p.add_argument("--expensive", action="store_true",
                   help="the expensive target of estimator.kind = bias_corrected, on its labelled configurations")
    p.add_argument("--progress", choices=["auto", "bar", "lines"], default="auto")

    p = sub.add_parser("estimate", help="bias-corrected ML or control-variate estimates (the ensemble's estimator)")
    _add_config_args(p)
    _add_gpus_arg(p)
    p.add_argument("--out", type=_new_path, required=True, help="JSON to write")
    p.add_argument("--obs", type=_path, nargs="*", default=[], help="observable stores (cheap features)")
    p.add_argument("--expensive-obs", type=_path, nargs="*", default=[], help="stores of `lqcdml measure --expensive`")
    p.add_argument("--store", type=_path, nargs="*", default=[],
                   help="ensemble stores (control variates read the fields)")

    p = sub.add_parser("analyze", help="summary table and figures of an experiment")
    _add_config_args(p, ensemble=False)
    p.add_argument("--obs", type=_path, nargs="+", required=True, help="observable stores")
    p.add_argument("--out", type=_path, required=True, help="output folder (summary.md, summary.csv, figures/)")
    p.add_argument("--manifests", type=_path, nargs="*", default=[], help="generate/train manifests (cost table)")
    p.add_argument("--estimates", type=_path, nargs="*", default=[],
                   help="JSON of `lqcdml estimate` (estimator tables)")
    p.add_argument("--no-figures", action="store_true")

    p = sub.add_parser("import", help="gauge files (NERSC, ILDG) into a new ensemble store")
    p.add_argument("files", type=_path, nargs="+", help="gauge files, in chain order")
    p.add_argument("--store", type=_new_path, required=True, help="ensemble store (.zarr) to create")
    p.add_argument("--format", default="auto", help="auto (from the file), nersc or ildg")
    p.add_argument("--lattice", help="T,X,Y,Z for ILDG files without an ildg-format record")
    p.add_argument("--colors", type=int, default=3, help="with --lattice: 2 or 3")
    p.add_argument("--precision", type=int, default=64, help="with --lattice: 64 or 32")
    p.add_argument("--no-checksum", action="store_true",
                   help="import files whose checksum is a placeholder or absent (recorded in the store)")
    p.add_argument("--reproject", action="store_true",
                   help="import links off SU(N) by more than 1e-5 projected onto it (deviation recorded)")

    p = sub.add_parser("export", help="an ensemble store's configurations as gauge files")
    p.add_argument("store", type=_path)
    p.add_argument("--out", type=_path, required=True, help="folder for the files")
    p.add_argument("--format", required=True, help="nersc or ildg")
    p.add_argument("--precision", default="double", help="double or single")
    p.add_argument("--two-rows", action="store_true", help="NERSC: store N - 1 rows (4D_SU3_GAUGE)")

    p = sub.add_parser("verify", help="check every configuration of a store (exit 4 if damaged)")
    p.add_argument("store", type=_path)
    p.add_argument("--quick", action="store_true",
                   help="read only the last configurations (records, checkpoint and metadata are checked whole)")

    p = sub.add_parser("info", help="JSON description of an ensemble store")
    p.add_argument("store", type=_path)

    p = sub.add_parser("devices", help="JSON: torch build, visible CUDA devices, the scheduler's GPU variables")
    p.add_argument("--out", type=_new_path, help="also write the JSON here")

    p = sub.add_parser("profile", help="Snakemake profiles of the source tree (`snakemake --profile NAME`)")
    prof = p.add_subparsers(dest="profile_command", required=True)
    q = prof.add_parser("install", help="write profiles/NAME into Snakemake's user profile folder")
    q.add_argument("name", help="profile name (a folder of profiles/, e.g. cluster)")
    q.add_argument("--account", help="SLURM account (default-resources.slurm_account)")
    q.add_argument("--partition", help="SLURM partition of CPU jobs")
    q.add_argument("--gpu-partition", help="SLURM partition of the GPU rules")
    q.add_argument("--gpu-model", help="GPU model the GPU rules ask for (gres)")
    q.add_argument("--gpus", type=int, help="GPUs per job of the GPU rules (default: the profile's, 1); "
                   "0: no GPUs, those rules on the CPU partition")
    q.add_argument("--dest", type=_path,
                   help="folder to write NAME/config.yaml into (default: Snakemake's user folder)")
    q.add_argument("--force", action="store_true", help="replace an existing profile")
    return parser


def _progress(choice: str) -> bool | None:
    return {"auto": None, "bar": True, "lines": False}[choice]


def run(args: argparse.Namespace) -> int:
    if args.command == "info":
        from .info import info

        print(json.dumps(info(Path(args.store)), indent=2))
        return 0
    if args.command == "import":
        from .interop import ImportOptions, import_files, parse_geometry

        options = ImportOptions(parse_geometry(args.lattice, args.colors, args.precision), not args.no_checksum,
                                args.reproject)
        summary = import_files([Path(f) for f in args.files], Path(args.store), args.format, options)
        print(json.dumps({k: v for k, v in summary.items() if k != "sources"}))
        return 0
    if args.command == "export":
        from .interop import export_store

        summary = export_store(Path(args.store), Path(args.out), args.format, args.precision, args.two_rows)
        print(json.dumps({**summary, "files": len(summary["files"])}))
        return 0
    if args.command == "devices":
        from ..atomic import write_json_atomic
        from .devices import devices

        report = devices()
        if args.out:
            write_json_atomic(args.out, report)
        print(json.dumps(report, indent=2))
        return 0
    if args.command == "profile":
        from .profile import install_profile

        dest = Path(args.dest) / args.name if args.dest else None
        path = install_profile(args.name, args.account, args.partition, args.gpu_partition, args.gpu_model, dest,
                               args.force, args.gpus)
        print(f"profile {args.name!r} -> {path} (snakemake --profile {args.name})")
        return 0
    if args.command == "verify":
        from ..config.expectations import store_expectations
        from ..store import EnsembleStore, StoreDamage, verify_store
        from ..store.verify import QUICK_TAIL

        path = Path(args.store)
        try:
            expectations = store_expectations(EnsembleStore.open(path).meta)
        except StoreDamage:
            expectations = None  # verify_store reports what cannot be opened
        report = verify_store(path, expectations, tail=QUICK_TAIL if args.quick else None)
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 4
    cfg = _config(args)
    if args.command == "compose":
        if args.ensemble is not None:
            select_ensemble(cfg, args.ensemble)  # the short overrides went to this ensemble
        dump(cfg, args.out)
        return 0
    if args.command == "generate":
        from .generate import generate

        name, _ = select_ensemble(cfg, args.ensemble)
        summary = generate(cfg, name, args.replica, Path(args.store),
                           Path(args.manifest) if args.manifest else None, _progress(args.progress),
                           Path(args.model) if args.model else None,
                           Path(args.start_store) if args.start_store else None, args.verify)
        print(json.dumps(summary))
        return 0
    if args.command == "train":
        from .train import train

        name, _ = select_ensemble(cfg, args.ensemble)
        summary = train(cfg, name, Path(args.checkpoint), Path(args.manifest) if args.manifest else None,
                        _progress(args.progress), [Path(p) for p in args.source_store])
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
        return 0
    if args.command == "measure":
        from .measure import measure

        name, _ = select_ensemble(cfg, args.ensemble)
        measure(cfg, name, Path(args.store), Path(args.out), _progress(args.progress), args.include_therm,
                args.expensive)
        return 0
    if args.command == "estimate":
        from .estimate import estimate

        name, _ = select_ensemble(cfg, args.ensemble)
        result = estimate(cfg, name, Path(args.out), [Path(p) for p in args.obs],
                          [Path(p) for p in args.expensive_obs], [Path(p) for p in args.store])
        print(f"{result['kind']} estimates of {name} -> {args.out}")
        return 0
    if args.command == "analyze":
        from .analyze import analyze

        rows = analyze(cfg, [Path(p) for p in args.obs], Path(args.out), not args.no_figures,
                       [Path(m) for m in args.manifests], [Path(e) for e in args.estimates],
                       Path(args.config) if args.config else None)
        print(f"{len(rows)} rows -> {Path(args.out) / 'summary.md'}")
        return 0
    raise AssertionError(args.command)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


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
        print(f"lqcdml {args.command}: {kind}: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine: disk full, read-only, a file where a folder should be, ...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"lqcdml {args.command}: error: {_one_line(exc.strerror or exc)}{where}; committed data is "
              "intact (rerun when the cause is fixed)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lqcdml {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
