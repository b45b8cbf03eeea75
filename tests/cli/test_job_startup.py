"""What a workflow job loads before its work: only the libraries its command uses (every
Snakemake job is a fresh `lqcdml` process and pays for each import), with the packages'
names still there on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lqcdml.driver
import lqcdml.store

from .helpers import REPO


def _loaded_after(code: str) -> set[str]:
    """The top-level names and lqcdml packages in ``sys.modules`` after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


def test_an_ensemble_store_job_loads_no_xarray_and_no_gauge_file_readers():
    loaded = _loaded_after("from lqcdml.store import EnsembleStore, StoreError, writer_lock")
    assert "lqcdml.store.ensemble" in loaded and "lqcdml.store.lock" in loaded
    assert not {"xarray", "pandas", "lqcdml.store.observables", "lqcdml.store.ildg", "lqcdml.store.nersc"} & loaded


def test_measure_loads_no_sampler_and_no_network():
    loaded = _loaded_after("import lqcdml.driver.measure")
    assert "lqcdml.store.observables" in loaded
    assert not {"lqcdml.driver.chain", "lqcdml.samplers", "lqcdml.nn", "lqcdml.train"} & loaded


def test_a_job_on_a_resolved_config_loads_no_hydra(tmp_path):
    path = tmp_path / "config.yaml"
    code = f"from lqcdml.config import compose_experiment, dump\ndump(compose_experiment('ci_tiny'), {str(path)!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    loaded = _loaded_after(
        f"from lqcdml.config import load, merge_overrides\nmerge_overrides(load({str(path)!r}), ['threads=1'])"
    )
    assert "omegaconf" in loaded and "hydra" not in loaded


@pytest.mark.parametrize("package", [lqcdml.store, lqcdml.driver], ids=lambda p: p.__name__)
def test_every_exported_name_is_there_on_first_use(package):
    for name in package.__all__:
        value = getattr(package, name)
        module = package._EXPORTS[name]
        assert value is getattr(sys.modules[f"{package.__name__}.{module}"], name)
        assert name in dir(package)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018
    assert sorted(package._EXPORTS) == sorted(package.__all__)
