"""The Snakemake DAG: dry runs, lint, a tiny end-to-end run, the report, a killed run."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lqcdml.cli.generate import generate
from lqcdml.config import compose_experiment

from ..cli.helpers import BIN, REPO, assert_same_chain, env_with_bin, store_digest

SNAKEMAKE = str(BIN / "snakemake")


def _snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "experiment,jobs", [("quickstart", 15), ("ci_tiny", 17), ("ci_estimators", 16), ("paper_cv_phi4", 12)]
)
def test_dry_run_of_the_whole_dag(tmp_path, experiment, jobs):
    out = _snakemake(tmp_path, "-n", "--config", f"experiment={experiment}")
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert f"total{' ' * 1}" in text or "total" in text
    total = [ln for ln in text.splitlines() if ln.strip().startswith("total")]
    assert total and int(total[-1].split()[-1]) == jobs, total


def test_dry_run_with_a_bad_override_fails_with_the_key(tmp_path):
    out = _snakemake(tmp_path, "-n", "--config", "experiment=ci_tiny", "overrides=[ensembles.u1.theory.beta=-1]")
    assert out.returncode != 0
    assert "ensembles.u1.theory.beta = -1.0; allowed: beta > 0" in out.stdout + out.stderr


def test_lint_is_clean(tmp_path):
    out = _snakemake(tmp_path, "--lint")
    assert out.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr


@pytest.mark.slow
def test_tiny_end_to_end_run_and_report(tmp_path):
    out = _snakemake(tmp_path, "-c2", "--config", "experiment=ci_tiny")
    assert out.returncode == 0, out.stderr[-3000:]
    exp = tmp_path / "results" / "ci_tiny"
    summary = (exp / "summary.md").read_text()
    for row in (
        "| u1 | plaquette |",
        "| su2 | plaquette |",
        "| su2 | flow_t2E[flow_time=0.2] |",
        "| su2 | wilson_loop[loop=2x2] |",
        "exact (Bessel functions)",
        "| stag | chiral_condensate |",
        "| stag | trace_inverse_re[power=4] |",
        "| stag | pion_correlator[t=1] |",
        "| flow | abs_magnetization |",
        "| u1flow | topological_charge |",
        "Sampling cost",
        "| flow | flow |",
        "| u1 | hmc |",
    ):
        assert row in summary, row
    trained = json.loads((exp / "models" / "flow.json").read_text())
    assert trained["steps"] == 40 and (exp / "models" / "flow.pt").exists()
    assert len(list((exp / "figures").glob("*.png"))) >= 30
    manifest = json.loads((exp / "ensembles" / "u1" / "r02.json").read_text())
    assert manifest["n_committed"] == 30
    # nothing to do on a second run
    again = _snakemake(tmp_path, "-c2", "--config", "experiment=ci_tiny")
    assert "Nothing to be done" in again.stdout + again.stderr
    report = _snakemake(tmp_path, "--report", str(tmp_path / "report.zip"), "--config", "experiment=ci_tiny")
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "report.zip").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.slow
def test_estimate_rules_end_to_end(tmp_path):
    """generate -> measure -> measure_expensive -> estimate -> analyze for ci_estimators (shrunk):
    the summary has the estimator tables, the heat maps and the training curves."""
    shrink = [
        "ensembles.ama.chain.n_configs=60",
        "ensembles.ama.chain.n_therm=5",
        "ensembles.ama.chain.n_chains=2",
        "ensembles.ama.chain.replicas=1",
        "ensembles.ama.estimator.r_lb=0.5",
        "ensembles.ama.estimator.scan_r_lb=[0.3,0.5]",
        "ensembles.ama.estimator.scan_r_tr=[0.5]",
        "ensembles.cv_phi4.estimator.steps=50",
        "ensembles.cv_u1.estimator.steps=50",
    ]
    out = _snakemake(tmp_path, "-c2", "--config", "experiment=ci_estimators", f"overrides={shrink}")
    assert out.returncode == 0, out.stderr[-3000:]
    exp = tmp_path / "results" / "ci_estimators"
    summary = (exp / "summary.md").read_text()
    for text in (
        "## Cheaper measurements without bias",
        "### `ama`: bias-corrected ML estimates",
        "| kappa2 |",
        "### `cv_phi4`: Schwinger-Dyson control variates",
        "### `cv_u1`: Schwinger-Dyson control variates for plaquette",
        "Exact <O> = 0.6992519268",
    ):
        assert text in summary, text
    figures = {p.name for p in (exp / "figures").iterdir()}
    assert {"ama__scan_sigma_ratio.png", "ama__scan_check.png", "cv_phi4__control_variate_training.png"} <= figures
    assert json.loads((exp / "estimates" / "ama.json").read_text())["scan"]["r_lb"] == [0.3, 0.5]


def test_snakemake_killed_mid_generation_resumes_to_the_uninterrupted_chain(tmp_path):
    overrides = 'overrides=["ensembles.u1.chain.n_configs=400","ensembles.u1.theory.lattice=[8,8]"]'
    target = "results/ci_tiny/ensembles/u1/r01.json"
    store = tmp_path / "results" / "ci_tiny" / "ensembles" / "u1" / "r01.zarr"
    cmd = [
        SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
        "-c1",
        "--config",
        "experiment=ci_tiny",
        overrides,
        "--",
        target,
    ]
    proc = subprocess.Popen(
        cmd, env=env_with_bin(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            n = json.loads((store / "zarr.json").read_text())["attributes"]["n_committed"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            n = 0
        if n >= 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "snakemake finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / target).exists()
    # a killed Snakemake leaves its lock: unlock (as a user would), then rerun
    unlock = subprocess.run([*cmd[:-2], "--unlock"], env=env_with_bin(), capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = subprocess.run(cmd, env=env_with_bin(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = json.loads((tmp_path / target).read_text())
    assert manifest["resumed_from"] >= 40 and manifest["n_committed"] == 400

    cfg = compose_experiment("ci_tiny", ["ensembles.u1.chain.n_configs=400", "ensembles.u1.theory.lattice=[8,8]"])
    generate(cfg, "u1", 1, tmp_path / "reference.zarr", progress=False)
    assert_same_chain(store_digest(tmp_path / "reference.zarr"), store_digest(store))
