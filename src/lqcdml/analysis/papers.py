"""The published numbers of each paper study beside ours: the first table of its summary.

A paper experiment (``paper_*``, and its reduced versions ``paper_*_<scale>``) gets a table
``quantity | ours | published | pull | source``. The published numbers are REFERENCE.md's;
where a paper quotes none (a qualitative claim, or a point it did not run), the column says so
and the comparison is with an exact value or with our own HMC at the same point. The pull is
``(ours - published) / sqrt(err_ours^2 + err_published^2)`` where both have errors.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..estimators.bias_corrected import central_value_check_values
from .errors import estimate
from .estimates import PUBLISHED_CV, control_variate_exact
from .references import SLHMC_HMC_ROW, TUTORIAL_HMC
from .summary import Row

__all__ = ["Comparison", "paper_of", "paper_comparisons", "comparison_table", "comparison_lines",
           "paired_loss_difference",
           "reference_comparisons", "write_comparison_csv", "value_error", "PAPERS"]

SLHMC_PAPER = "Nagai, Tomiya arXiv:2103.11965"
CASK_PAPER = "CASK, arXiv:2501.16955"
TUTORIAL = "flow tutorial arXiv:2101.08176 (REFERENCE.md's HMC values)"
KANWAR = "Kanwar et al. arXiv:2003.06413"
CV_PAPER = "Bedaque, Oh arXiv:2312.08228 (authors' logs)"
AMA_PAPERS = "Choi, Ohno, Sumimoto, Tomiya arXiv:2411.18170, 2602.21617"


@dataclass(frozen=True)
class Comparison:
    """One line of the table: ours and the published value; ``None`` where there is none."""

    quantity: str
    ours: float | None
    ours_error: float | None
    published: float | None
    published_error: float | None
    source: str
    published_text: str = ""  # what the paper says where it is not one number

    @property
    def pull(self) -> float | None:
        if None in (self.ours, self.ours_error, self.published, self.published_error):
            return None
        sigma = math.hypot(self.ours_error, self.published_error)
        return (self.ours - self.published) / sigma if sigma > 0 else None


def value_error(value: float | None, error: float | None, as_quoted: bool = False) -> str:
    """``0.70199(30)``: the error's two leading digits in parentheses; ``value`` alone without
    error. ``as_quoted``: as few digits as the error has (a published ``0.7025(1)`` stays so)."""
    if value is None:
        return "not measured"
    if error is None or not math.isfinite(error) or error <= 0:
        return f"{value:.6g}"
    scale = math.floor(math.log10(abs(value) if value else error))
    if scale < -3 or scale > 5:  # 1.49(26)e-33
        return f"{value_error(value / 10**scale, error / 10**scale, as_quoted)}e{scale}"
    digits = max(0, 1 - math.floor(math.log10(error)))
    if as_quoted:  # one digit if the error has one (0.0001), two if it has two (8.5e-6)
        digits = next((d for d in range(max(0, -math.floor(math.log10(error))), digits + 1)
                       if abs(error * 10**d - round(error * 10**d)) < 1e-6), digits)
    scaled = round(error * 10**digits)
    if digits == 0:
        return f"{value:.0f}({scaled})"
    return f"{value:.{digits}f}({scaled})"


@dataclass(frozen=True)
class _Results:
    rows: Sequence[Row]
    estimates: Sequence[dict]
    theories: dict[str, dict]
    histories: dict[str, dict]  # training histories by ensemble ({"step": [...], "loss": [...]})

    def row(self, ensemble: str, observable: str) -> Row | None:
        return next((r for r in self.rows if r.ensemble == ensemble and r.observable == observable), None)

    def estimate(self, ensemble: str) -> dict | None:
        return next((e for e in self.estimates if e.get("ensemble") == ensemble), None)


def _measured(res: _Results, quantity: str, ens: str, obs: str, published: float | None, error: float | None,
              source: str, factor: float = 1.0, text: str = "") -> Comparison:
    r = res.row(ens, obs)
    ours = None if r is None else (factor * r.value, factor * r.comparison_error)
    return Comparison(_flagged(quantity, r), *(ours or (None, None)), published, error, source, text)


def _flagged(quantity: str, r: Row | None) -> str:
    """``quantity``, marked where the error is the replica spread's (``Row.comparison_error``)."""
    return f"{quantity} (error from the replica spread: the replicas disagree)" if r and r.replicas_disagree \
        else quantity


def _exact(res: _Results, quantity: str, ens: str, obs: str) -> Comparison:
    """Ours against the exact value the summary row carries (e.g. Bessel functions for 2D U(1))."""
    r = res.row(ens, obs)
    if r is None or r.reference is None:
        return Comparison(_flagged(quantity, r), r and r.value, r and r.comparison_error, None, None,
                          "no exact value at this point")
    return Comparison(_flagged(quantity, r), r.value, r.comparison_error, r.reference, r.reference_error or 0.0,
                      r.source)


# ---- the studies ---------------------------------------------------------------------------------------

# the paper's rows, in lqcdml's normalisation (Polyakov loop tr P / N; the paper's tr P is twice it)
_HMC_ROW = SLHMC_HMC_ROW
_SLHMC_ROW = {"plaquette": (0.7023, 2e-4), "polyakov_loop_re": (0.415, 0.005), "chiral_condensate": (0.4241, 5e-4)}


def _two_colour_rows(res: _Results, ens: str, label: str, published: dict, source: str) -> list[Comparison]:
    return [
        _measured(res, f"{label}: plaquette", ens, "plaquette", *published["plaquette"], source),
        # the paper's Polyakov loop is tr P; lqcdml's is tr P / N (N = 2): both shown as the paper's
        _measured(res, f"{label}: Polyakov loop tr P (twice lqcdml's Re tr P / N)", ens, "polyakov_loop_re",
                  *(2 * x for x in published["polyakov_loop_re"]), source, factor=2.0),
        _measured(res, f"{label}: chiral condensate", ens, "chiral_condensate", *published["chiral_condensate"],
                  source),
    ]


def _slhmc_hmc(res: _Results) -> list[Comparison]:
    out = []
    for ens, label in (("nf2", "HMC, Nf = 2 (rooted; the paper's text)"), ("nf4", "HMC, Nf = 4 (a public recipe)")):
        out += _two_colour_rows(res, ens, label, _HMC_ROW, f"{SLHMC_PAPER}, HMC row")
    return out


def _slhmc(res: _Results) -> list[Comparison]:
    out = _two_colour_rows(res, "hmc", "HMC", _HMC_ROW, f"{SLHMC_PAPER}, HMC row")
    out += _two_colour_rows(res, "stout", "SLHMC, covariant net", _SLHMC_ROW, f"{SLHMC_PAPER}, SLHMC row")
    out += _two_colour_rows(res, "cask", "SLHMC, CASK", _SLHMC_ROW, f"{SLHMC_PAPER}, SLHMC row (CASK: no table)")
    out += _two_colour_rows(res, "thin", "SLHMC, no network (not in the paper)", _HMC_ROW,
                            f"{SLHMC_PAPER}, HMC row (exact chains agree with it)")
    out.append(_measured(res, "SLHMC acceptance, covariant net", "stout", "acceptance", 0.40, None,
                         f"{SLHMC_PAPER} (no error quoted)", text="about 40 %"))
    stout, cask = res.row("stout", "acceptance"), res.row("cask", "acceptance")
    if stout is not None and cask is not None:
        diff = cask.value - stout.value
        error = math.hypot(cask.comparison_error, stout.comparison_error)
        out.append(Comparison("SLHMC acceptance, CASK minus covariant net", diff, error,
                              None, None, CASK_PAPER, "higher than the covariant net (no number quoted)"))
    paired = paired_loss_difference(res.histories.get("stout"), res.histories.get("cask"))
    if paired is not None:
        out.append(Comparison(f"training loss, CASK minus covariant net at equal steps (steps {paired[2]}-{paired[3]}, "
                              "paired: the same batches and pseudofermions)", paired[0], paired[1], None, None,
                              CASK_PAPER, "lower than the covariant net (no number quoted)"))
    return out


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


def _flow_phi4(res: _Results) -> list[Comparison]:
    tutorial = TUTORIAL_HMC
    names = {"chi2": "chi_2 = <M^2> / V", "abs_magnetization": "<|M|> / V", "phi2": "<phi^2>"}
    out = []
    for ens, label in (("flow_2d", "2D flow"), ("hmc_2d", "2D HMC")):
        for obs, (value, error) in tutorial.items():
            out.append(_measured(res, f"{label}: {names[obs]}", ens, obs, value, error, TUTORIAL))
    for obs in tutorial:  # no published 3D numbers: the flow against our HMC at the same point
        h = res.row("hmc_3d", obs)
        out.append(_measured(res, f"3D flow: {names[obs]}", "flow_3d", obs, h and h.value, h and h.comparison_error,
                             "no published value: our HMC at L = 4 (hmc_3d)"))
    return out


def _flow_u1(res: _Results) -> list[Comparison]:
    out = []
    for ens, label in (("flow", "plaquette-coordinate flow"), ("flow_local", "local equivariant flow"), ("hmc", "HMC")):
        out.append(_exact(res, f"{label}: plaquette", ens, "plaquette"))
        out.append(_exact(res, f"{label}: chi_t", ens, "chi_t"))
    for ens, label in (("flow", "plaquette-coordinate flow"), ("flow_local", "local equivariant flow"), ("hmc", "HMC")):
        r = res.row(ens, "topological_charge")
        text = "flow: tau_int of Q near 1 at beta = 6, HMC's grows by orders of magnitude (figures; no table)"
        out.append(Comparison(f"{label}: tau_int of Q (configurations)", r and r.tau_int, None, None, None, KANWAR, text))
    return out


def _cv_phi4(res: _Results) -> list[Comparison]:
    out = []
    runs = (res.estimate("phi4") or {}).get("runs", [])
    for (hidden, n_train), published in PUBLISHED_CV.items():
        run = next((r for r in runs if tuple(r["hidden"]) == hidden and r["n_train"] == n_train), None)
        label = "linear g" if not hidden else f"MLP {'x'.join(map(str, hidden))}"
        out.append(Comparison(f"variance reduction, {label}, {n_train} training configurations",
                              run and run["variance_reduction"], None, published, None, CV_PAPER,
                              f"about {published:g}" + ("" if run else " (not run at this scale)")))
    for ens, label in (("free", "free field (lambda = 0): <O - f>"), ("u1", "2D U(1): <plaquette - f>")):
        theory = res.theories.get(ens)
        exact = None if theory is None else control_variate_exact(theory)
        for run in (res.estimate(ens) or {}).get("runs", []):
            imp = run["improved"]
            out.append(Comparison(f"{label}, {run['network']}, {run['n_train']} training", imp["value"], imp["error"],
                                  exact, None if exact is None else 0.0, "exact value (REFERENCE.md: 0.1378072225 at "
                                  "the paper's point)" if ens == "free" else "exact (Bessel functions)"))
    return out


def _ama(res: _Results) -> list[Comparison]:
    out = []
    for ens, label in (("nf4", "two-colour QCD"), ("u1", "2D U(1), quenched staggered")):
        est = res.estimate(ens)
        if est is None:
            continue
        sp, cost = est["split"], est["cost"]
        out.append(Comparison(f"{label}: labelled fraction N_LB / N", sp["N_LB"] / sp["N"], None, 0.01, None,
                              AMA_PAPERS, "about 0.01"))
        out.append(Comparison(f"{label}: wall time of the ML estimate / measuring every configuration",
                              cost["wall_fraction"], None, 0.26, None, AMA_PAPERS, "about 0.26"))
        for target in ("tr1", "kappa2", "kappa3", "kappa4"):
            e = est["estimates"].get(target)
            if not e or "p2" not in e or "full" not in e:
                continue
            check = central_value_check_values(e["p2"]["value"], e["p2"]["error"], e["full"]["value"],
                                               e["full"]["error"])
            out.append(Comparison(f"{label}: {target} P2 vs full (central-value check, 2 = consistent)",
                                  e["p2"]["value"], e["p2"]["error"], e["full"]["value"], e["full"]["error"],
                                  f"{AMA_PAPERS}: consistent with full measurement",
                                  f"our full measurement {value_error(e['full']['value'], e['full']['error'])}; "
                                  f"check {check}"))
    return out


PAPERS: dict[str, tuple[str, Callable[[_Results], list[Comparison]]]] = {
    "paper_slhmc_hmc": (f"{SLHMC_PAPER}: the HMC row", _slhmc_hmc),
    "paper_slhmc": (f"{SLHMC_PAPER} and {CASK_PAPER}: SLHMC for two-colour QCD", _slhmc),
    "paper_flow_phi4": ("Flow-based MCMC for phi^4 (arXiv:1904.12072, the tutorial arXiv:2101.08176)", _flow_phi4),
    "paper_flow_u1": (f"{KANWAR}: gauge-equivariant flows for 2D U(1)", _flow_u1),
    "paper_cv_phi4": (f"{CV_PAPER}: neural control variates", _cv_phi4),
    "paper_ama": (f"ML bias-corrected estimators ({AMA_PAPERS})", _ama),
}


def paper_of(experiment: str) -> tuple[str, str | None] | None:
    """``(paper, scale)`` of a paper experiment (``paper_x`` or ``paper_x_<scale>``), else None."""
    if experiment in PAPERS:
        return experiment, None
    m = re.fullmatch(r"(.+)_([a-z]+)", experiment)
    if m and m.group(1) in PAPERS:
        return m.group(1), m.group(2)
    return None


def paper_comparisons(experiment: str, rows: Sequence[Row], estimates: Sequence[dict] = (),
                      theories: dict[str, dict] | None = None,
                      histories: dict[str, dict] | None = None) -> list[Comparison]:
    """The comparison rows of a paper experiment ([] for other experiments). ``estimates``: the
    JSON of ``lqcdml estimate``; ``theories``: each ensemble's resolved theory (exact values);
    ``histories``: each trained model's loss history by ensemble (``lqcdml train`` manifests)."""
    paper = paper_of(experiment)
    if paper is None:
        return []
    return PAPERS[paper[0]][1](_Results(rows, estimates, theories or {}, histories or {}))


def comparison_table(experiment: str, rows: Sequence[Row], estimates: Sequence[dict] = (),
                     theories: dict[str, dict] | None = None,
                     histories: dict[str, dict] | None = None) -> list[Comparison]:
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
    lines = [f"## Published results beside ours: {PAPERS[name][0]}", ""]
    if scale is not None:
        lines += [f"**Scale `{scale}`**: a reduced rerun of `{name}` (smaller lattices, shorter chains and "
                  "training). Its numbers test the pipeline, not the physics: only the full study "
                  f"(`snakemake -c2 {name}`) is compared with the paper.", ""]
    lines += ["| quantity | ours | published | pull | source |", "|---|---|---|---|---|"]
    for c in table:
        published = c.published_text or value_error(c.published, c.published_error, as_quoted=True)
        pull = "" if c.pull is None else f"{c.pull:+.1f}" if abs(c.pull) < 1e3 else f"{c.pull:+.1e}"
        lines.append(f"| {c.quantity} | {value_error(c.ours, c.ours_error)} | {published} | {pull} | {c.source} |")
    return lines + [""]


def reference_comparisons(rows: Sequence[Row]) -> list[Comparison]:
    """Every summary row with an exact value or reference (the comparison of a non-paper experiment)."""
    return [Comparison(_flagged(f"{r.ensemble}: {r.observable}", r), r.value, r.comparison_error, r.reference,
                       r.reference_error or 0.0, r.source) for r in rows if r.reference is not None]


def write_comparison_csv(path: str | os.PathLike, table: Sequence[Comparison]) -> None:
    """``comparison.csv`` of a ``comparison_table``."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["quantity", "ours", "ours_error", "published", "published_error", "published_text", "pull",
                         "source"])
        for c in table:
            writer.writerow([c.quantity, c.ours, c.ours_error, c.published, c.published_error, c.published_text,
                             c.pull, c.source])
