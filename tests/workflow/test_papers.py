"""Paper targets: each study reruns with one command; `--config scale=smoke` in minutes, with
the published numbers beside ours, provenance recorded, and the same seed giving the same numbers."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from lqcdml.analysis.paper_files import paper_names
from lqcdml.provenance import RECORDED_PACKAGES

from ..cli.helpers import BIN, REPO, env_with_bin
from .smoke import smoke_papers

SNAKEMAKE = str(BIN / "snakemake")
#: the studies with a paper file: the workflow's paper targets (workflow/rules/common.smk)
PAPERS = list(paper_names())
#: a published value each paper's table must show (docs/reference.md#published-results)
PUBLISHED = {
    "paper_slhmc_hmc": "0.7025(1)",
    "paper_slhmc": "0.4241(5)",
    "paper_flow_phi4": "0.7447(5)",
    "paper_flow_u1": "exact (Bessel functions)",
    "paper_cv_phi4": "about 74",
    "paper_ama": "about 0.26",
    "paper_flow_sun": "exact (character expansion, finite volume)",
    "fthmc": "exact (Bessel functions)",
}


def _snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _job_counts(text: str) -> dict[str, int]:
    """The `Job stats` table of a dry run."""
    lines = text[text.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for ln in lines:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.parametrize("paper", PAPERS)
def test_each_paper_is_a_target_of_its_own_full_study(tmp_path, paper):
    out = _snakemake(tmp_path, "-n", paper)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    counts = _job_counts(text)
    assert counts[paper] == 1 and counts["analyze"] == 1 and counts["compose_config"] == 1
    assert f"results/{paper}/summary.md" in text and f"results/{paper}_smoke/" not in text


def test_all_papers_at_smoke_scale_in_one_dag(tmp_path):
    out = _snakemake(tmp_path, "-n", "papers", "--config", "scale=smoke")
    assert out.returncode == 0, out.stderr[-2000:]
    counts = _job_counts(out.stdout + out.stderr)
    assert counts["analyze"] == len(PAPERS) and counts["compose_config"] == len(PAPERS)
    for paper in PAPERS:
        assert f"results/{paper}_smoke/summary.md" in out.stdout


def test_a_scale_without_a_file_names_the_experiments_that_have_it(tmp_path):
    out = _snakemake(tmp_path, "-n", "--config", "experiment=quickstart", "scale=smoke")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "scale = 'smoke' for experiment 'quickstart': no conf/experiment/quickstart_smoke.yaml" in text
    assert "allowed: scale=full, or scale=smoke for fthmc, paper_ama, paper_cv_phi4" in text


def test_smoke_files_change_only_sizes_of_their_study():
    """A smoke experiment is its paper's file with sizes shrunk: the same ensembles, theories' kinds
    and samplers (so the smoke run exercises the study's own code paths)."""
    from lqcdml.config import compose_experiment

    for paper in PAPERS:
        full, smoke = compose_experiment(paper), compose_experiment(f"{paper}_smoke")
        assert smoke.experiment == f"{paper}_smoke"
        assert sorted(full.ensembles) == sorted(smoke.ensembles), paper
        for name, ens in full.ensembles.items():
            small = smoke.ensembles[name]
            assert (small.theory.name, small.sampler.name, small.estimator.kind) == (
                ens.theory.name,
                ens.sampler.name,
                ens.estimator.kind,
            ), (paper, name)
            assert small.chain.n_configs * small.chain.n_chains <= ens.chain.n_configs * ens.chain.n_chains


def test_job_device_follows_its_gpu_resource(tmp_path):
    """The same DAG on a laptop and on a GPU partition: each GPU rule passes the GPUs it was granted."""
    cpu = _snakemake(tmp_path, "-n", "-p", "--config", "experiment=ci_tiny")
    assert cpu.returncode == 0, cpu.stderr[-2000:]
    assert "--gpus 0" in cpu.stdout and "--gpus 1" not in cpu.stdout
    gpu = _snakemake(
        tmp_path, "-n", "-p", "--config", "experiment=ci_tiny", "--set-resources", "generate:gpu=1", "train:gpu=1"
    )
    assert gpu.returncode == 0, gpu.stderr[-2000:]
    shells = [ln for ln in gpu.stdout.splitlines() if ln.startswith("lqcdml ")]
    assert all("--gpus 1" in s for s in shells if s.startswith(("lqcdml generate", "lqcdml train")))
    assert all("--gpus 0" in s for s in shells if s.startswith("lqcdml measure"))


# ---- the smoke studies, run once ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """`snakemake -c2 papers --config scale=smoke` in a fresh folder: every paper at smoke scale."""
    return smoke_papers(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("paper", PAPERS)
def test_smoke_study_writes_its_summary_with_the_published_numbers_beside_ours(smoke, paper):
    exp = smoke / "results" / f"{paper}_smoke"
    summary = (exp / "summary.md").read_text()
    assert summary.index("## Published results beside ours") < summary.index("| ensemble | observable |")
    assert "**Scale `smoke`**" in summary and PUBLISHED[paper] in summary
    with open(exp / "comparison.csv") as fh:
        table = list(csv.DictReader(fh))
    assert table, paper
    measured = [r for r in table if r["ours"] not in ("", "None")]
    assert measured and all(math.isfinite(float(r["ours"])) for r in measured), paper
    # provenance: resolved config with its digest, seeds, commit, versions
    assert "## Provenance" in summary and f"resolved config: `results/{paper}_smoke/config.yaml`" in summary
    assert "seeds: chain " in summary and "this analysis: git commit " in summary
    assert all(f"{name} " in summary for name in ("torch", "numpy", "pyerrors"))
    manifests = sorted((exp / "ensembles").glob("*/r*.json"))
    assert manifests
    config = yaml.safe_load((exp / "config.yaml").read_text())
    for path in manifests:
        rec = json.loads(path.read_text())["provenance"]
        ens = path.parent.name
        assert (
            rec["config"] == config["ensembles"][ens]
            and rec["seeds"]["chain"] == config["ensembles"][ens]["chain"]["seed"]
        )
        assert set(RECORDED_PACKAGES) <= set(rec["versions"]) and rec["git_commit"]
        manifest = json.loads(path.read_text())
        if "model_digest" in manifest:  # a model sampler: its chain hash names the trained model
            assert f"chain hash {manifest['config_hash']} (model {manifest['model_digest']})" in summary


@pytest.mark.slow
def test_smoke_studies_rerun_with_the_same_seeds_give_the_same_numbers(smoke, tmp_path):
    """Two of the studies (flow training and sampling; control-variate training) rerun from nothing
    in another folder: every number of the summary and every estimate is the same, bit for bit."""
    papers = ["paper_flow_phi4", "paper_cv_phi4"]
    out = _snakemake(tmp_path, "-c2", *papers, "--config", "scale=smoke")
    assert out.returncode == 0, out.stderr[-4000:]
    for paper in papers:
        a, b = smoke / "results" / f"{paper}_smoke", tmp_path / "results" / f"{paper}_smoke"
        assert (a / "summary.csv").read_text() == (b / "summary.csv").read_text(), paper
        assert (a / "comparison.csv").read_text() == (b / "comparison.csv").read_text(), paper
        for est in sorted((a / "estimates").glob("*.json")):
            first, second = (json.loads(p.read_text()) for p in (est, b / "estimates" / est.name))
            for run_a, run_b in zip(first["runs"], second["runs"], strict=True):
                for key in ("plain", "improved", "variance_reduction", "final_loss", "loss"):
                    assert run_a[key] == run_b[key], (paper, est.name, key)
