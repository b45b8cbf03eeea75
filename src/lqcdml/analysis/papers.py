"""The published numbers of each paper study beside ours: the first table of its summary.

A paper experiment (``paper_*`` with a file ``published/<experiment>.yaml``, and its reduced
versions ``paper_*_<scale>``) gets a table ``quantity | ours | published | pull | source``
whose rows its file lists (``paper_files``, ``paper_rows``). Where a paper quotes no number
(a qualitative claim, or a point it did not run), the column says so and the comparison is
with an exact value or with our own HMC at the same point. Other experiments compare every
summary row that has an exact value or reference.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence

from .comparison import Comparison, flagged, value_error
from .paper_files import load_paper, paper_names
from .paper_rows import ROW_KINDS, Results, paired_loss_difference
from .summary import Row

__all__ = [
    "Comparison",
    "paper_of",
    "paper_comparisons",
    "comparison_table",
    "comparison_lines",
    "paired_loss_difference",
    "reference_comparisons",
    "write_comparison_csv",
    "value_error",
]


def paper_of(experiment: str) -> tuple[str, str | None] | None:
    """``(paper, scale)`` of a paper experiment (``paper_x`` or ``paper_x_<scale>``), else None."""
    papers = paper_names()
    if experiment in papers:
        return experiment, None
    m = re.fullmatch(r"(.+)_([a-z]+)", experiment)
    if m and m.group(1) in papers:
        return m.group(1), m.group(2)
    return None


def paper_comparisons(
    experiment: str,
    rows: Sequence[Row],
    estimates: Sequence[dict] = (),
    theories: dict[str, dict] | None = None,
    histories: dict[str, dict] | None = None,
) -> list[Comparison]:
    """The comparison rows of a paper experiment ([] for other experiments). ``estimates``: the
    JSON of ``lqcdml estimate``; ``theories``: each ensemble's resolved theory (exact values);
    ``histories``: each trained model's loss history by ensemble (``lqcdml train`` manifests)."""
    paper = paper_of(experiment)
    if paper is None:
        return []
    res = Results(rows, estimates, theories or {}, histories or {})
    return [c for spec in load_paper(paper[0]).rows for c in ROW_KINDS[spec["kind"]].build(spec, res)]


def comparison_table(
    experiment: str,
    rows: Sequence[Row],
    estimates: Sequence[dict] = (),
    theories: dict[str, dict] | None = None,
    histories: dict[str, dict] | None = None,
) -> list[Comparison]:
    """The paper table of a paper experiment, else every row with a reference."""
    if paper_of(experiment):
        return paper_comparisons(experiment, rows, estimates, theories, histories)
    return reference_comparisons(rows)


def comparison_lines(experiment: str, table: Sequence[Comparison]) -> list[str]:
    """Markdown of a paper experiment's ``comparison_table``: the heading, a scale warning
    for reduced runs, and the table ([] for other experiments)."""
    paper = paper_of(experiment)
    if paper is None:
        return []
    name, scale = paper
    lines = [f"## Published results beside ours: {load_paper(name).title}", ""]
    if scale is not None:
        lines += [
            f"**Scale `{scale}`**: a reduced rerun of `{name}` (smaller lattices, shorter chains and "
            "training). Its numbers test the pipeline, not the physics: only the full study "
            f"(`snakemake -c2 {name}`) is compared with the paper.",
            "",
        ]
    lines += ["| quantity | ours | published | pull | source |", "|---|---|---|---|---|"]
    for c in table:
        published = c.published_text or value_error(c.published, c.published_error, as_quoted=True)
        pull = "" if c.pull is None else f"{c.pull:+.1f}" if abs(c.pull) < 1e3 else f"{c.pull:+.1e}"
        lines.append(f"| {c.quantity} | {value_error(c.ours, c.ours_error)} | {published} | {pull} | {c.source} |")
    return lines + [""]


def reference_comparisons(rows: Sequence[Row]) -> list[Comparison]:
    """Every summary row with an exact value or reference (the comparison of a non-paper experiment)."""
    return [
        Comparison(
            flagged(f"{r.ensemble}: {r.observable}", r),
            r.value,
            r.comparison_error,
            r.reference,
            r.reference_error or 0.0,
            r.source,
        )
        for r in rows
        if r.reference is not None
    ]


def write_comparison_csv(path: str | os.PathLike, table: Sequence[Comparison]) -> None:
    """``comparison.csv`` of a ``comparison_table``."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["quantity", "ours", "ours_error", "published", "published_error", "published_text", "pull", "source"]
        )
        for c in table:
            writer.writerow(
                [c.quantity, c.ours, c.ours_error, c.published, c.published_error, c.published_text, c.pull, c.source]
            )
