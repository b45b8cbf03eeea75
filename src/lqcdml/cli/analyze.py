"""``lqcdml analyze``: tables and figures of an experiment from its observable stores."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..analysis.plots import plot_series
from ..analysis.summary import scalar_series, summarize_ensemble, thermalized, write_tables
from ..config import RootConfig
from ..store import combine_replicas, read_observables

__all__ = ["analyze"]


def analyze(cfg: RootConfig, observable_stores: list[Path], out_dir: Path, figures: bool = True) -> list:
    """Summary (``summary.md``, ``summary.csv``) and figures (``figures/``) in ``out_dir``."""
    by_ensemble = defaultdict(list)
    for path in observable_stores:
        ds = read_observables(path)
        if ds.attrs.get("experiment") != cfg.experiment:
            raise ValueError(
                f"observable store {str(path)!r} belongs to experiment {ds.attrs.get('experiment')!r}, "
                f"not {cfg.experiment!r}"
            )
        by_ensemble[ds.attrs["ensemble"]].append(ds)
    rows = []
    for ensemble in sorted(by_ensemble):
        if ensemble not in cfg.ensembles:
            raise ValueError(f"observable stores of ensemble {ensemble!r}, which the config does not define")
        ds = combine_replicas(by_ensemble[ensemble])
        rows += summarize_ensemble(ensemble, ds)
        if figures:
            for label, da in scalar_series(thermalized(ds)):
                plot_series(da, ensemble, label, out_dir / "figures")
    notes = [
        f"Experiment `{cfg.experiment}`. Errors and tau_int (in units of stored configurations) by "
        "the Gamma method (pyerrors), each chain a replica; thermalisation cut per ensemble "
        "(chain.n_therm). The pull compares with the exact value or reference "
        "(errors combined).",
    ]
    notes += agreement_lines(rows)
    write_tables(rows, out_dir, f"lqcdml summary: {cfg.experiment}", notes)
    return rows


def agreement_lines(rows) -> list[str]:
    """Per ensemble: how many estimates agree with their exact value or reference (|pull| < 3)."""
    lines = []
    for ensemble in sorted({r.ensemble for r in rows}):
        checked = [r for r in rows if r.ensemble == ensemble and r.pull is not None]
        if not checked:
            continue
        good = [r for r in checked if abs(r.pull) < 3]
        bad = ", ".join(f"{r.observable} ({r.pull:+.1f} sigma)" for r in checked if abs(r.pull) >= 3)
        lines.append(
            f"- `{ensemble}`: {len(good)} of {len(checked)} compared values within 3 sigma"
            + (f"; off: {bad}" if bad else "")
        )
    return ["", "Agreement with exact values and references:", "", *lines] if lines else []
