"""The eight paper studies at smoke scale, run once per test session (`snakemake -c2 papers
--config scale=smoke`) and shared, read-only, by the tests of their summaries, their
reproducibility and their report. Under pytest-xdist the workers share one run: the first
to ask runs it under a file lock, the others wait for it and read the same folder."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from ..cli.helpers import BIN, REPO, env_with_bin


def _session_root(tmp_path_factory) -> Path:
    """A folder of this test session that every xdist worker sees (the workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def smoke_papers(tmp_path_factory) -> Path:
    """The folder in which every paper target ran at smoke scale (run on first use)."""
    root = _session_root(tmp_path_factory)
    work, done = root / "papers_smoke", root / "papers_smoke.done"
    with open(root / "papers_smoke.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            work.mkdir(exist_ok=True)
            out = subprocess.run(
                [
                    str(BIN / "snakemake"),
                    "-s",
                    str(REPO / "Snakefile"),
                    "-d",
                    str(work),
                    "-c2",
                    "papers",
                    "--config",
                    "scale=smoke",
                ],
                env=env_with_bin(),
                capture_output=True,
                text=True,
                timeout=3600,
            )
            assert out.returncode == 0, out.stderr[-4000:]
            done.touch()
    return work
