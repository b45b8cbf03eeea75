"""``lqcdml profile install`` into a temporary HOME, then ``snakemake --profile cluster -n`` as typed."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from .helpers import BIN, REPO, env_with_bin


def _env(home):
    env = env_with_bin()
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def test_installed_profile_is_found_by_name_and_keeps_the_site_keys(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    cmd = [
        str(BIN / "lqcdml"),
        "profile",
        "install",
        "cluster",
        "--account",
        "lattice42",
        "--partition",
        "short",
        "--gpu-partition",
        "gpu-a100",
        "--gpu-model",
        "a100",
    ]
    out = subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    installed = home / ".config" / "snakemake" / "cluster" / "config.yaml"
    prof = yaml.safe_load(installed.read_text())
    assert prof["executor"] == "slurm" and prof["slurm-status-command"] == "squeue"
    assert prof["default-resources"]["slurm_account"] == "lattice42"
    assert prof["default-resources"]["slurm_partition"] == "short"
    assert prof["set-resources"]["generate"]["slurm_partition"] == "gpu-a100"
    assert prof["set-resources"]["generate"]["gpu_model"] == "a100"
    # the command users type, from a working folder that has no profiles/
    dry = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "cluster", "-n", "-s", str(REPO / "Snakefile"), "-d", str(work)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    text = dry.stdout + dry.stderr
    assert "slurm_account=lattice42" in text and "slurm_partition=gpu-a100" in text
    # an existing profile is kept unless --force
    before = installed.read_text()
    again = subprocess.run(
        cmd[:4] + ["--account", "other"], env=_env(home), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and "exists; allowed: --force" in again.stderr
    assert installed.read_text() == before


def test_profile_install_refuses_bad_input_in_one_line(tmp_path, capsys):
    from lqcdml.cli.main import main

    dest = ["--dest", str(tmp_path)]
    assert main(["profile", "install", "nosuch", "--account", "a", *dest]) == 2
    assert "profile = 'nosuch'; allowed: cluster, default" in capsys.readouterr().err
    assert main(["profile", "install", "cluster", *dest]) == 2
    assert "--account = None; allowed: your SLURM account" in capsys.readouterr().err
    assert main(["profile", "install", "cluster", "--account", "a b", *dest]) == 2
    assert "--account = 'a b'; allowed: a SLURM name" in capsys.readouterr().err
    assert not os.listdir(tmp_path)
    assert main(["profile", "install", "cluster", "--account", "a", *dest]) == 0
    assert (tmp_path / "cluster" / "config.yaml").is_file()


def test_gpu_check_rule_reports_the_devices_a_job_sees(tmp_path):
    import json

    out = subprocess.run(
        [str(BIN / "snakemake"), "-c1", "gpu_check", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)],
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "results" / "gpu_check.json").read_text())
    import torch

    assert report["cuda_available"] == torch.cuda.is_available()
    assert len(report["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert report["torch"] == torch.__version__


def test_profile_install_sets_the_gpus_of_the_gpu_rules_or_sends_them_to_the_cpu_partition(tmp_path):
    from lqcdml.cli.main import main
    from lqcdml.driver.profiles import GPU_RULES

    assert (
        main(
            [
                "profile",
                "install",
                "cluster",
                "--account",
                "a",
                "--gpu-partition",
                "g",
                "--gpus",
                "2",
                "--dest",
                str(tmp_path / "two"),
            ]
        )
        == 0
    )
    prof = yaml.safe_load((tmp_path / "two" / "cluster" / "config.yaml").read_text())
    assert all(
        prof["set-resources"][r]["gpu"] == 2 and prof["set-resources"][r]["slurm_partition"] == "g" for r in GPU_RULES
    )
    assert (
        main(
            [
                "profile",
                "install",
                "cluster",
                "--account",
                "a",
                "--partition",
                "cpu1",
                "--gpus",
                "0",
                "--dest",
                str(tmp_path / "none"),
            ]
        )
        == 0
    )
    prof = yaml.safe_load((tmp_path / "none" / "cluster" / "config.yaml").read_text())
    assert all(
        prof["set-resources"][r]["gpu"] == 0 and "slurm_partition" not in prof["set-resources"][r] for r in GPU_RULES
    )
    assert prof["default-resources"]["slurm_partition"] == "cpu1"
    assert main(["profile", "install", "cluster", "--account", "a", "--gpus", "-1", "--dest", str(tmp_path / "x")]) == 2


@pytest.mark.parametrize(
    "gpus,configured,device",
    [(0, "cuda", "cpu"), (0, "cpu", "cpu"), (1, "cpu", "cuda"), (1, "cuda:1", "cuda:1"), (2, "cuda", "cuda")],
)
def test_a_job_runs_on_the_device_its_granted_gpus_say(tmp_path, gpus, configured, device):
    """`lqcdml <command> --gpus N` (Snakemake's resources.gpu) after the config and its overrides."""
    from lqcdml.cli.main import _config, _parser

    args = _parser().parse_args(
        [
            "generate",
            "--ensemble",
            "u1",
            "--store",
            "x.zarr",
            "+experiment=ci_tiny",
            f"device={configured}",
            "--gpus",
            str(gpus),
        ]
    )
    assert _config(args).device == device
