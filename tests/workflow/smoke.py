"""The six paper studies at smoke scale, run once per test session (`snakemake -c2 papers
--config scale=smoke`) and shared, read-only, by the tests of their summaries, their
reproducibility and their report."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..cli.helpers import BIN, REPO, env_with_bin

_DONE: dict[str, Path] = {}


def smoke_papers(tmp_path_factory) -> Path:
    """The folder in which every paper target ran at smoke scale (run on first use)."""
    if "work" not in _DONE:
        work = tmp_path_factory.mktemp("papers_smoke")
        out = subprocess.run([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(work), "-c2", "papers",
                              "--config", "scale=smoke"], env=env_with_bin(), capture_output=True, text=True,
                             timeout=3600)
        assert out.returncode == 0, out.stderr[-4000:]
        _DONE["work"] = work
    return _DONE["work"]
