"""The provenance record of every job's output."""

from __future__ import annotations

import platform

from lqcdml.config import compose_experiment, replica_seed, to_container
from lqcdml.identity.provenance import job_provenance
from lqcdml.provenance import RECORDED_PACKAGES, git_commit, package_versions


def test_versions_name_python_and_every_recorded_package():
    import numpy
    import torch

    v = package_versions()
    assert v["python"] == platform.python_version() and set(RECORDED_PACKAGES) <= set(v)
    assert v["torch"] == torch.__version__ and v["numpy"] == numpy.__version__


def test_job_record_has_the_resolved_config_its_seeds_and_where_it_ran():
    cfg = compose_experiment("ci_tiny", ["ensembles.u1.chain.seed=77"])
    rec = job_provenance(cfg, "u1", replica=2)
    assert rec["config"] == to_container(cfg.ensembles["u1"])
    # an HMC ensemble trains no model: no training seed
    assert rec["seeds"] == {
        "chain": 77,
        "estimator": cfg.ensembles["u1"].estimator.seed,
        "replica_stream": replica_seed(77, 2),
    }
    flow = job_provenance(cfg, "flow")
    assert flow["seeds"]["train"] == cfg.ensembles["flow"].train.seed
    assert (rec["device"], rec["dtype"], rec["experiment"], rec["ensemble"]) == ("cpu", cfg.dtype, "ci_tiny", "u1")
    assert rec["git_commit"] == git_commit() and rec["versions"] == package_versions()
    from lqcdml.kernels import build

    assert rec["kernels"] == {"mode": "auto", "build": build.tag(), "arch": "portable"}


def test_the_record_names_the_loaded_build_not_the_source_on_disk(monkeypatch):
    from lqcdml.kernels import build
    from lqcdml.provenance import kernels_record

    loaded = build.tag()
    assert kernels_record()["build"] == loaded
    monkeypatch.setattr(build, "tag", lambda: "0123456789abcdef")  # the source edited under a running job
    assert kernels_record()["build"] == loaded


def test_the_record_says_when_the_torch_path_ran(monkeypatch):
    from lqcdml.provenance import kernels_record

    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    assert kernels_record() == {"mode": "torch", "build": None, "arch": None}
