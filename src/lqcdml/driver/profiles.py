"""Snakemake profiles of the source tree installed where ``snakemake --profile NAME`` finds them.

``snakemake --profile cluster`` looks a profile *name* up in the working directory, then in
the user's and the system's Snakemake configuration folders (``snakemake.cli.get_appdirs``:
``$XDG_CONFIG_HOME/snakemake`` or ``~/.config/snakemake``, then ``/etc/xdg/snakemake``).
``install_profile`` writes ``profiles/<name>/config.yaml`` there with the site's keys filled in
(account, partitions, GPU model), so the command users type works as typed; ``--profile
profiles/cluster`` keeps working from the source tree. An existing profile is never
overwritten without ``force``. The command is ``lqcdml profile install`` (``cli/profile.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..atomic import write_text_atomic
from ..errors import LqcdmlError

__all__ = ["GPU_RULES", "ProfileError", "install_profile", "profile_source", "user_profile_dir"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: rules that run on a GPU where the experiment asks for one (they declare resources.gpu)
GPU_RULES = ("generate", "measure", "measure_expensive", "train", "estimate")


class ProfileError(LqcdmlError, ValueError):
    exit_code = 2


def profile_source(name: str) -> Path:
    """``profiles/<name>/config.yaml`` of the source tree."""
    if not _NAME.match(name):
        raise ProfileError(f"profile name = {name!r}; allowed: letters, digits, '_', '-', '.'")
    root = Path(__file__).resolve().parents[3] / "profiles"
    path = root / name / "config.yaml"
    if not path.is_file():
        have = sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file()) if root.is_dir() else []
        raise ProfileError(f"profile = {name!r}; allowed: {', '.join(have) or 'none (no profiles/ folder)'}")
    return path


def user_profile_dir(name: str) -> Path:
    """Where Snakemake finds the user's profile ``name``."""
    from snakemake.cli import get_appdirs

    return Path(get_appdirs().user_config_dir) / name


def _checked(key: str, value: str | None) -> str | None:
    if value is not None and not re.match(r"^[A-Za-z0-9_.:+-]+$", value):
        raise ProfileError(f"--{key} = {value!r}; allowed: a SLURM name (letters, digits, '_', '-', '.', ':', '+')")
    return value


def install_profile(
    name: str,
    account: str | None = None,
    partition: str | None = None,
    gpu_partition: str | None = None,
    gpu_model: str | None = None,
    dest: Path | None = None,
    force: bool = False,
    gpus: int | None = None,
) -> Path:
    """Write the profile with the given site keys; returns the written ``config.yaml``.

    ``gpus``: GPUs per job of the GPU rules (their ``resources.gpu``, which sets the job's
    device); 0 sends those rules to the CPU partition with no GPU (a cluster without GPUs)."""
    source = profile_source(name)
    account, partition = _checked("account", account), _checked("partition", partition)
    gpu_partition, gpu_model = _checked("gpu-partition", gpu_partition), _checked("gpu-model", gpu_model)
    if gpus is not None and gpus < 0:
        raise ProfileError(f"--gpus = {gpus}; allowed: 0 (GPU rules on the CPU partition) or more")
    data = yaml.safe_load(source.read_text())
    defaults = data.setdefault("default-resources", {})
    if account is not None:
        defaults["slurm_account"] = account
    if partition is not None:
        defaults["slurm_partition"] = partition
    rules = data.setdefault("set-resources", {})
    for rule in GPU_RULES:
        if rule not in rules:
            continue
        if gpus == 0:  # no GPUs: the CPU partition (default-resources), device cpu
            rules[rule]["gpu"] = 0
            rules[rule].pop("slurm_partition", None)
            rules[rule].pop("gpu_model", None)
            continue
        if gpus is not None:
            rules[rule]["gpu"] = gpus
        if gpu_partition is not None:
            rules[rule]["slurm_partition"] = gpu_partition
        if gpu_model is not None:
            rules[rule]["gpu_model"] = gpu_model
    target = (dest or user_profile_dir(name)) / "config.yaml"
    if target.exists() and not force:
        raise ProfileError(f"profile {str(target)!r} exists; allowed: --force to replace it (it was left as it is)")
    if defaults.get("slurm_account") in (None, "CHANGE_ME"):
        raise ProfileError("--account = None; allowed: your SLURM account (sbatch --account)")
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Snakemake profile {name!r}, installed by `lqcdml profile install` from {source}\n"
        "# `snakemake --profile " + name + "` finds it here; edit or reinstall with --force.\n"
    )
    write_text_atomic(target, header + yaml.safe_dump(data, sort_keys=False))
    return target
