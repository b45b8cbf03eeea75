"""`snakemake <target> --report report.html` of a finished experiment: one self-contained HTML
file (every figure and table a data: URI), opened in headless Chromium (tests/workflow/browser.py):
the page loads without errors, every figure renders, the comparison and summary tables are there."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from ..cli.helpers import BIN, REPO, env_with_bin
from . import browser
from .smoke import smoke_papers

SNAKEMAKE = str(BIN / "snakemake")

pytestmark = pytest.mark.slow

# the kinds of figure of `lqcdml analyze` (analysis/plots.py, analysis/estimates.py) by file name
KINDS = {
    "history": lambda name: name.endswith("__history.png"),
    "autocorrelation": lambda name: name.endswith("__autocorrelation.png"),
    "histogram": lambda name: name.endswith("__histogram.png"),
    "training curve": lambda name: "training" in name,
    "heat map": lambda name: "__scan_" in name,
}
# what an attribute of the page may point at: the page itself, scripts of the page, data: URIs
# and (links only) the web
_ALLOWED = ("data:", "#", "javascript:", "https://", "http://", "mailto:")


def _snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        check=False,
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def finished_experiment(tmp_path_factory) -> tuple[Path, str]:
    """(workdir, experiment): paper_ama at smoke scale, from the session's run of every paper
    at smoke scale (tests/workflow/smoke.py); the report only reads it."""
    return smoke_papers(tmp_path_factory), "paper_ama_smoke"


@pytest.fixture(scope="module")
def report(finished_experiment, tmp_path_factory) -> tuple[Path, Path]:
    """(report.html, the experiment's results folder): the report of the experiment's summary
    as target, which asks for nothing to be rerun."""
    workdir, experiment = finished_experiment
    exp = workdir / "results" / experiment
    assert (exp / "summary.md").is_file(), exp
    path = tmp_path_factory.mktemp("report") / "report.html"
    out = _snakemake(workdir, f"results/{experiment}/summary.md", "--report", str(path), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return path, exp


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_the_report_is_one_self_contained_html_file(report):
    path, exp = report
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    html = path.read_text(encoding="utf-8")
    pointers = [m.group(2) for m in re.finditer(r"\b(?:src|href)\s*=\s*([\"'])(.*?)\1", html)]
    assert not [p for p in pointers if not p.startswith(_ALLOWED)], "references to files"
    assert str(exp.parent.parent) not in html  # the workdir: no absolute path either
    # every result embedded: the report's data, one data: URI per result
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html, re.DOTALL).group(1))
    assert results and all(r["data_uri"].startswith("data:") for r in results.values())
    figures = sorted(p.name for p in (exp / "figures").glob("*.png"))
    assert sorted(r["name"] for r in results.values() if r["mime_type"] == "image/png") == figures
    assert {"summary.csv", "comparison.csv"} <= {r["name"] for r in results.values()}


@pytest.mark.browser
@pytest.mark.skipif(browser.missing() is not None, reason=f"no headless browser: {browser.missing()}")
def test_the_report_in_chromium_shows_every_figure_and_the_comparison_table(report):
    path, exp = report
    page = browser.show_report(path)
    assert page.title == "Snakemake Report"
    assert page.errors == []
    assert page.requests == []  # nothing fetched: the page is its own file
    # every result of every category and subcategory was opened by clicking through the menus
    listed = {p for subcats in page.categories.values() for paths in subcats.values() for p in paths}
    assert {s.path for s in page.shown} == listed
    figures = sorted(p.name for p in (exp / "figures").glob("*.png"))
    rendered = sorted(s.name for s in page.images())
    assert rendered == figures, "figures that did not render: " + ", ".join(sorted(set(figures) - set(rendered)))
    kinds = {kind for kind, match in KINDS.items() if any(match(name) for name in figures)}
    assert {"history", "autocorrelation", "histogram"} <= kinds
    if exp.name.startswith("paper_ama"):
        assert "heat map" in kinds  # the (r_lb, r_tr) scan
    for kind in kinds:
        assert any(KINDS[kind](name) for name in rendered), kind
    # the tables, in the description of their results
    tables = {s.name: s.tables for s in page.shown if s.image is None}
    for name in ("comparison.csv", "summary.csv"):
        rows = _csv_rows(exp / name)
        assert len(rows) > 1, name
        assert len(tables[name]) == 1, name
        shown = tables[name][0]
        assert shown == rows, name
    quantity = _csv_rows(exp / "comparison.csv")[1][0]
    assert quantity in next(s.caption for s in page.shown if s.name == "comparison.csv")
