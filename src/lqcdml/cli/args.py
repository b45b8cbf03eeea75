"""What the subcommands' parsers share: one-line usage errors, path arguments, the config
arguments (Hydra overrides or a resolved YAML) and the config they give."""

from __future__ import annotations

import argparse
from pathlib import PurePath
from typing import NoReturn

from ..config import ConfigError, RootConfig, compose, expand_overrides, load
from ..config.compose import merge_overrides

__all__ = [
    "Parser",
    "one_line",
    "path",
    "new_path",
    "add_config_args",
    "add_gpus_arg",
    "add_progress_arg",
    "progress_choice",
    "config_from_args",
    "device_for_gpus",
]


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split())


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``<prog>: error: <message>`` and exit code 2 (the usage
    is left to ``--help``); its subparsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def path(text: str) -> str:
    """A path option: any path but the empty one (or one holding NUL)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"path {text!r}; allowed: a non-empty path without NUL characters")
    return text


def new_path(text: str) -> str:
    """A file or store to create: a path ending in a name (not '', '.', '..' or '/')."""
    name = PurePath(path(text)).name
    if name in ("", ".", ".."):
        raise argparse.ArgumentTypeError(f"path {text!r}; allowed: a path ending in a file or folder name")
    return text


def add_gpus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpus",
        type=int,
        help="GPUs granted to this job: 0 runs on the CPU, 1+ on CUDA (sets device; default: the config's device)",
    )


def add_config_args(p: argparse.ArgumentParser, ensemble: bool = True) -> None:
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +experiment=quickstart")
    p.add_argument("--config", type=path, help="resolved YAML from `lqcdml compose` (instead of composing)")
    p.add_argument("--config-dir", type=path, help="Hydra conf/ folder (default: the source tree's conf/)")
    if ensemble:
        p.add_argument("--ensemble", help="ensemble name (optional when the experiment has one)")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", choices=["auto", "bar", "lines"], default="auto")


def progress_choice(choice: str) -> bool | None:
    """``--progress``: a bar (True), log lines (False) or a bar on a terminal only (None)."""
    return {"auto": None, "bar": True, "lines": False}[choice]


def config_from_args(args: argparse.Namespace) -> RootConfig:
    """The config of the overrides (composed, or merged into ``--config``), on the device of ``--gpus``."""
    overrides = expand_overrides(args.overrides, getattr(args, "ensemble", None))
    if args.config:
        cfg = load(args.config, overrides)
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
