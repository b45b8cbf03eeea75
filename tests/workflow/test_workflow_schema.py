"""The Snakemake configuration against workflow/schemas/workflow.schema.yaml: a wrong key or value
stops the parse in one line naming the key, the value and what is allowed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from ..cli.helpers import BIN, REPO, env_with_bin

SNAKEMAKE = str(BIN / "snakemake")
SCHEMA = REPO / "workflow" / "schemas" / "workflow.schema.yaml"


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_default_config_is_valid_and_the_schema_has_every_key_the_workflow_reads():
    schema = yaml.safe_load(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load((REPO / "conf" / "workflow.yaml").read_text()))
    rules = [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    read = {m.group(1) for p in rules for m in re.finditer(r"config(?:\[|\.get\()\"(\w+)\"", p.read_text())}
    assert read and read <= set(schema["properties"]) == set(schema["required"]), read


@pytest.mark.parametrize(
    "entry,message",
    [
        ("scale=huge", "config scale = 'huge'; allowed: full, or smoke"),
        ("job_threads=0", "config job_threads = 0; allowed: an integer >= 1"),
        ("experiment=a/b", "config experiment = 'a/b'; allowed: the name of a file of conf/experiment/"),
        ("overrides=seed=3", "config overrides = 'seed=3'; allowed: a list of Hydra overrides"),
        ("sclae=smoke", "config key 'sclae' is unknown; allowed keys: experiment, overrides, scale, job_threads"),
    ],
)
def test_a_bad_config_value_fails_the_dry_run_naming_the_key(tmp_path, entry, message):
    out = _snakemake(tmp_path, "-n", "--config", entry)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr, out.stderr[-2000:]
    assert "Building DAG" not in out.stdout + out.stderr  # stopped at parse time


def test_a_good_config_passes_the_dry_run(tmp_path):
    out = _snakemake(
        tmp_path,
        "-n",
        "--config",
        "experiment=ci_tiny",
        "scale=full",
        "job_threads=2",
        "overrides=[ensembles.u1.theory.beta=2.5]",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Job stats:" in out.stdout + out.stderr
