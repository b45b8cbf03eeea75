"""The kinds of row of a paper's comparison table, read from its data file
(``paper_files``): each kind takes the keys of one row and our results, and gives its lines.

Every kind names the experiment's ensemble (``ensemble``) it reads; what else it reads:

- ``measured``: our summary row of ``observable`` (times ``factor``, default 1: the paper's
  normalisation) beside ``published`` ``[value, error or null]``;
- ``our_ensemble``: beside our own row of ``against`` (no published number);
- ``exact``: beside the exact value the summary row carries;
- ``tau_int``: our integrated autocorrelation time (the paper's claim is ``text``);
- ``difference``: our ``ensemble`` minus ``minus`` (errors combined);
- ``paired_loss``: training loss of ``ensemble`` minus ``minus``, step by step
  (``paired_loss_difference``; ``quantity`` may name ``{first}`` and ``{last}`` step);
- ``variance_reduction``: of the control-variate run with ``hidden`` widths and ``n_train``;
- ``improved_vs_exact``: every control-variate run's ``<O - f>`` beside the exact ``<O>``
  (``quantity`` names ``{network}`` and ``{n_train}``);
- ``labelled_fraction``, ``wall_fraction``: of a bias-corrected estimate;
- ``central_value_check``: each of ``targets`` by P2 beside the full measurement
  (``quantity`` names ``{target}``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..estimators.bias_corrected import central_value_check_values
from .comparison import Comparison, flagged, value_error
from .errors import estimate
from .estimates import control_variate_exact
from .summary import Row

__all__ = ["Results", "RowKind", "ROW_KINDS", "paired_loss_difference"]


@dataclass(frozen=True)
class Results:
    """What a table compares: the summary rows, the estimates (JSON of ``lqcdml estimate``),
    each ensemble's resolved theory and each trained model's loss history by ensemble."""

    rows: Sequence[Row]
    estimates: Sequence[dict]
    theories: dict[str, dict]
    histories: dict[str, dict]  # {"step": [...], "loss": [...]}

    def row(self, ensemble: str, observable: str) -> Row | None:
        return next((r for r in self.rows if r.ensemble == ensemble and r.observable == observable), None)

    def estimate(self, ensemble: str) -> dict | None:
        return next((e for e in self.estimates if e.get("ensemble") == ensemble), None)


def _published(spec: dict) -> tuple[float | None, float | None]:
    value, error = spec.get("published") or (None, None)
    return value, error


def _measured(spec: dict, res: Results) -> list[Comparison]:
    r, factor = res.row(spec["ensemble"], spec["observable"]), spec.get("factor", 1.0)
    ours: tuple[float | None, float | None] = (
        (None, None) if r is None else (factor * r.value, factor * r.comparison_error)
    )
    return [Comparison(flagged(spec["quantity"], r), *ours, *_published(spec), spec["source"], spec.get("text", ""))]


def _our_ensemble(spec: dict, res: Results) -> list[Comparison]:
    h = res.row(spec["against"], spec["observable"])
    against = (None, None) if h is None else (h.value, h.comparison_error)
    return _measured({**spec, "published": against}, res)


def _exact(spec: dict, res: Results) -> list[Comparison]:
    r = res.row(spec["ensemble"], spec["observable"])
    quantity = flagged(spec["quantity"], r)
    if r is None or r.reference is None:
        ours: tuple[float | None, float | None] = (None, None) if r is None else (r.value, r.comparison_error)
        return [Comparison(quantity, *ours, None, None, "no exact value at this point")]
    return [Comparison(quantity, r.value, r.comparison_error, r.reference, r.reference_error or 0.0, r.source)]


def _tau_int(spec: dict, res: Results) -> list[Comparison]:
    r = res.row(spec["ensemble"], spec["observable"])
    tau = None if r is None else r.tau_int
    return [Comparison(spec["quantity"], tau, None, None, None, spec["source"], spec["text"])]


def _difference(spec: dict, res: Results) -> list[Comparison]:
    a, b = res.row(spec["ensemble"], spec["observable"]), res.row(spec["minus"], spec["observable"])
    if a is None or b is None:
        return []
    error = math.hypot(a.comparison_error, b.comparison_error)
    return [Comparison(spec["quantity"], a.value - b.value, error, None, None, spec["source"], spec["text"])]


def _paired_loss(spec: dict, res: Results) -> list[Comparison]:
    paired = paired_loss_difference(res.histories.get(spec["minus"]), res.histories.get(spec["ensemble"]))
    if paired is None:
        return []
    quantity = spec["quantity"].format(first=paired[2], last=paired[3])
    return [Comparison(quantity, paired[0], paired[1], None, None, spec["source"], spec["text"])]


def paired_loss_difference(first: dict | None, second: dict | None) -> tuple[float, float, int, int] | None:
    """``(mean, error, first step, last step)`` of ``loss(second) - loss(first)`` over the second
    half of training, step by step, with its Gamma-method error.

    Paired, because offline SLHMC training draws step ``k``'s batch and pseudofermions from
    ``(train.seed, k)``: two networks trained with one seed see the same data at every step,
    and the difference cancels the batch-to-batch noise both losses share. ``None`` where a
    history is missing or the two were recorded at other steps."""
    if not first or not second or list(first.get("step", [])) != list(second.get("step", [])):
        return None
    steps = np.asarray(first["step"])
    half = steps > steps[-1] / 2 if len(steps) else steps.astype(bool)
    if half.sum() < 4:
        return None
    diff = np.asarray(second["loss"], dtype=float)[half] - np.asarray(first["loss"], dtype=float)[half]
    est = estimate(diff, "loss")
    return est.value, est.error, int(steps[half][0]), int(steps[half][-1])


def _runs(res: Results, ensemble: str) -> list[dict]:
    return (res.estimate(ensemble) or {}).get("runs", [])


def _variance_reduction(spec: dict, res: Results) -> list[Comparison]:
    hidden, n_train = tuple(spec["hidden"]), spec["n_train"]
    run = next(
        (r for r in _runs(res, spec["ensemble"]) if tuple(r["hidden"]) == hidden and r["n_train"] == n_train), None
    )
    text = spec["text"] + ("" if run else " (not run at this scale)")
    return [
        Comparison(
            spec["quantity"], run["variance_reduction"] if run else None, None, *_published(spec), spec["source"], text
        )
    ]


def _improved_vs_exact(spec: dict, res: Results) -> list[Comparison]:
    theory = res.theories.get(spec["ensemble"])
    exact = None if theory is None else control_variate_exact(theory)
    out = []
    for run in _runs(res, spec["ensemble"]):
        imp = run["improved"]
        out.append(
            Comparison(
                spec["quantity"].format(network=run["network"], n_train=run["n_train"]),
                imp["value"],
                imp["error"],
                exact,
                None if exact is None else 0.0,
                spec["source"],
            )
        )
    return out


def _labelled_fraction(spec: dict, res: Results) -> list[Comparison]:
    est = res.estimate(spec["ensemble"])
    if est is None:
        return []
    sp = est["split"]
    return [Comparison(spec["quantity"], sp["N_LB"] / sp["N"], None, *_published(spec), spec["source"], spec["text"])]


def _wall_fraction(spec: dict, res: Results) -> list[Comparison]:
    est = res.estimate(spec["ensemble"])
    if est is None:
        return []
    return [
        Comparison(
            spec["quantity"], est["cost"]["wall_fraction"], None, *_published(spec), spec["source"], spec["text"]
        )
    ]


def _central_value_check(spec: dict, res: Results) -> list[Comparison]:
    est = res.estimate(spec["ensemble"])
    out: list[Comparison] = []
    if est is None:
        return out
    for target in spec["targets"]:
        e = est["estimates"].get(target)
        if not e or "p2" not in e or "full" not in e:
            continue
        p2, full = e["p2"], e["full"]
        check = central_value_check_values(p2["value"], p2["error"], full["value"], full["error"])
        out.append(
            Comparison(
                spec["quantity"].format(target=target),
                p2["value"],
                p2["error"],
                full["value"],
                full["error"],
                spec["source"],
                f"our full measurement {value_error(full['value'], full['error'])}; check {check}",
            )
        )
    return out


@dataclass(frozen=True)
class RowKind:
    """How a kind of row is built, the keys it needs beside ``kind`` and ``ensemble``, the
    ones it may have, and the ``{names}`` its ``quantity`` may use."""

    build: Callable[[dict, Results], list[Comparison]]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()


ROW_KINDS: dict[str, RowKind] = {
    "measured": RowKind(_measured, ("observable", "published", "source"), ("factor", "text")),
    "our_ensemble": RowKind(_our_ensemble, ("observable", "against", "source")),
    "exact": RowKind(_exact, ("observable",)),
    "tau_int": RowKind(_tau_int, ("observable", "source", "text")),
    "difference": RowKind(_difference, ("observable", "minus", "source", "text")),
    "paired_loss": RowKind(_paired_loss, ("minus", "source", "text"), placeholders=("first", "last")),
    "variance_reduction": RowKind(_variance_reduction, ("hidden", "n_train", "published", "source", "text")),
    "improved_vs_exact": RowKind(_improved_vs_exact, ("source",), placeholders=("network", "n_train")),
    "labelled_fraction": RowKind(_labelled_fraction, ("published", "source", "text")),
    "wall_fraction": RowKind(_wall_fraction, ("published", "source", "text")),
    "central_value_check": RowKind(_central_value_check, ("targets", "source"), placeholders=("target",)),
}

#: the type each key of a row must have (``[t]``: a list of ``t``; ``published``: ``[value, error or null]``)
KEY_TYPES: dict[str, Any] = {
    "quantity": str,
    "ensemble": str,
    "observable": str,
    "against": str,
    "minus": str,
    "source": str,
    "text": str,
    "factor": float,
    "n_train": int,
    "hidden": [int],
    "targets": [str],
    "published": "published",
}
