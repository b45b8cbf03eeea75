"""Provenance: the git commit of the source tree this package runs from, the versions of
the packages a result depends on, and the record every output of a job carries."""

from __future__ import annotations

import functools
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "kernels_record", "package_versions", "provenance", "RECORDED_PACKAGES"]

#: distributions whose versions go into every record (the numbers depend on them)
RECORDED_PACKAGES = (
    "lqcdml",
    "torch",
    "numpy",
    "scipy",
    "zarr",
    "xarray",
    "pyerrors",
    "hydra-core",
    "scikit-learn",
    "snakemake",
    "snakemake-executor-plugin-slurm",
)


@functools.cache
def git_commit() -> str:
    """The git commit of the source tree this package runs from (``-dirty`` when the tree has
    uncommitted changes), or ``"unknown"`` outside a git checkout; asked once per process."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--", str(here)],
        capture_output=True,
        text=True,
        timeout=5,
    )
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@functools.cache
def package_versions() -> dict[str, str]:
    """Python's and each of ``RECORDED_PACKAGES``' installed version (``"absent"`` if not installed)."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def kernels_record() -> dict[str, Any]:
    """Which CPU kernels a job's arithmetic ran through: ``LQCDML_KERNELS`` and the compiled
    build (its tag and instruction set) when one is loaded; results of the two paths agree
    to rounding, not bit for bit."""
    from . import kernels
    from .kernels import build

    mode = kernels.mode()
    module = kernels.extension() if mode != "torch" else None
    if module is None:
        return {"mode": mode, "build": None, "arch": None}
    # the tag of the module this process loaded, not of the source on disk now (an edit or a
    # rebuild under a running job changes the latter)
    return {"mode": mode, "build": module.__name__.removeprefix(build.MODULE_PREFIX), "arch": build.arch()}


def provenance(config: Mapping[str, Any], seeds: Mapping[str, int], **extra: Any) -> dict[str, Any]:
    """The record of one job's output: the resolved config it ran (a JSON mapping), the seeds
    it drew from, package versions, the git commit and the kernels; ``extra`` adds fields
    (device, dtype)."""
    return {
        "config": dict(config),
        "seeds": dict(seeds),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "kernels": kernels_record(),
        **extra,
    }
