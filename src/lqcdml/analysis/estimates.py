"""Tables and figures of ``lqcdml estimate`` results (bias-corrected ML, control variates).

Each estimator kind shows its own result: ``estimate_lines`` and ``plot_estimates`` ask the
kind of each result (an ``EstimateReport``: ``kinds.EstimatorKind`` is one) for its lines
and figures; the built-in kinds' are the functions below. Every improved estimate stands
beside the plain one; where an exact value is known (free
scalar field, 2D U(1)) or a published figure exists (docs/reference.md#published-results),
it is shown too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .exact import free_scalar_zero_momentum_correlator, u1_2d_plaquette  # noqa: E402

__all__ = [
    "EstimateReport",
    "estimate_lines",
    "plot_estimates",
    "bias_corrected_lines",
    "control_variate_lines",
    "plot_bias_corrected_scan",
    "plot_control_variate_training",
    "control_variate_exact",
    "PUBLISHED_CV",
]

#: variance reductions in Bedaque and Oh's logs (docs/reference.md#neural-control-variates;
#: interacting phi^4 at their point):
#: (hidden widths, n_train) -> factor
PUBLISHED_CV = {((), 10_000): 74.0, ((1,), 1_000): 44.0, ((16,), 1_000): 8.0}
ESTIMATOR_ORDER = ("full", "labelled_only", "p1", "p2", "power_tuned", "cross_fit")


def control_variate_exact(theory: dict) -> float | None:
    """Exact ``<O>`` of the control-variate observable where it is known, else None."""
    lattice = [int(n) for n in theory["lattice"]]
    if theory["name"] == "phi4" and theory.get("lam", 0.0) == 0.0 and theory.get("m2", 0.0) > 0:
        c = free_scalar_zero_momentum_correlator(lattice, theory["m2"], theory.get("convention", "flow"))
        return float(c[lattice[0] // 2] / (np.prod(lattice) / lattice[0]))
    if theory["name"] == "u1" and len(lattice) == 2:
        return u1_2d_plaquette(theory["beta"], int(np.prod(lattice)))
    return None


def _pm(d: dict | None, digits: int = 6) -> str:
    if not d:
        return ""
    return f"{d['value']:.{digits}g} +- {d['error']:.2g}"


def bias_corrected_lines(res: dict) -> list[str]:
    """The tables of a bias-corrected estimate: its split and cost, each target's estimators."""
    sp, cost = res["split"], res["cost"]
    lines = [
        f"### `{res['ensemble']}`: bias-corrected ML estimates ({res['regressor']} on {', '.join(res['features'])})",
        "",
        f"N = {sp['N']} configurations; labelled N_LB = {sp['N_LB']} (r_lb = {sp['r_lb']}), of which "
        f"N_TR = {sp['N_TR']} train and N_BC = {sp['N_BC']} correct the bias; N_UL = {sp['N_UL']} unlabelled "
        f"(split seed {sp['seed']}). Expensive measurements made: {cost['expensive_fraction']:.1%}; wall time "
        f"including the cheap features and training: {cost['wall_fraction']:.1%} of measuring every "
        f"configuration ({cost['expensive_seconds_per_config']:.3g} s expensive, "
        f"{cost['cheap_seconds_per_config']:.3g} s cheap per configuration, {cost['training_seconds']:.1f} s training).",
        "",
    ]
    lines += [
        "Targets: trN = Re tr D^-N / V (noise-averaged); tr1_powK = (Re tr D^-1 / V)^K unbiased from "
        "distinct noises; kappaK = V^(K-1) times the K-th cumulant of the condensate, from the estimated "
        "moments.",
        "",
    ]
    kinds = [k for k in ESTIMATOR_ORDER if any(k in v for v in res["estimates"].values())]
    lines += [
        "| target | " + " | ".join(kinds) + " | lambda* | sigma_P2 / sigma_full |",
        "|---|" + "---|" * (len(kinds) + 2),
    ]
    for target, est in res["estimates"].items():
        full, p2 = est.get("full"), est.get("p2")
        ratio = f"{p2['error'] / full['error']:.2f}" if (full and p2 and full["error"] > 0) else ""
        lam = res.get("power_tuned_lambda", {}).get(target)
        lam = "" if lam is None else f"{lam:.3f}"
        lines.append(f"| {target} | " + " | ".join(_pm(est.get(k)) for k in kinds) + f" | {lam} | {ratio} |")
    scan = res.get("scan")
    if scan:
        lines += [
            "",
            f"Scan of (r_lb, r_tr) for {scan['estimator']}: the smallest r_lb with sigma_ML / sigma_full "
            "<= 1.1 and the central-value check at 2 (published: about 1 % labelled, 26 % of the cost):",
            "",
            "| target | r_lb | r_tr | sigma_ML / sigma_full | wall fraction |",
            "|---|---|---|---|---|",
        ]
        for target, best in scan["smallest_r_lb"].items():
            if best is None:
                lines.append(f"| {target} | none on the grid | | | |")
            else:
                lines.append(
                    f"| {target} | {best['r_lb']:g} | {best['r_tr']:g} | {best['sigma_ratio']:.2f} "
                    f"| {best['wall_fraction']:.1%} |"
                )
    return lines + [""]


def control_variate_lines(res: dict, theory: dict | None) -> list[str]:
    """The table of a control-variate estimate: per network and training size, plain and
    improved values, the variance reduction, and the exact value where one is known."""
    exact = control_variate_exact(theory) if theory else None
    lines = [
        f"### `{res['ensemble']}`: Schwinger-Dyson control variates for {res['observable']}",
        "",
        f"g trained by Adam (lr {res['lr']}, batch {res['batch']}, {res['steps']} steps, {res['divergence']} "
        "divergence) on the first n_train configurations; estimates on the other chains. Variance reduction "
        "Var(O) / Var(O - f) per configuration; error reduction the ratio of squared Gamma-method errors."
        + (f" Exact <O> = {exact:.10g}." if exact is not None else ""),
        "",
        "| g | n_train | n_eval | plain <O> | <O - f> | <f> (zero) | variance reduction | error reduction "
        "| published | training s |"
        + (" pull of <O - f> vs exact (error floor 1e-12 relative) |" if exact is not None else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if exact is not None else ""),
    ]
    for r in res["runs"]:
        interacting_phi4 = bool(theory and theory["name"] == "phi4" and theory.get("lam", 0.0) > 0)
        pub = PUBLISHED_CV.get((tuple(r["hidden"]), r["n_train"])) if interacting_phi4 else None
        row = (
            f"| {r['network']} | {r['n_train']} | {r['n_eval']} | {_pm(r['plain'])} | {_pm(r['improved'])} "
            f"| {_pm(r['zero_mean'], 3)} | {r['variance_reduction']:.3g} | {r['error_reduction']:.3g} "
            f"| {'' if pub is None else f'{pub:g}'} | {r['training_seconds']:.0f} |"
        )
        if exact is not None:
            # a zero-variance control variate (free field, linear g) leaves only rounding: floor the error
            sigma = max(r["improved"]["error"], 1e-12 * abs(exact))
            row += f" {(r['improved']['value'] - exact) / sigma:+.2f} |"
        lines.append(row)
    return lines + [""]


class EstimateReport(Protocol):
    """How the summary shows the result of one estimator kind."""

    def report(self, result: dict, theory: dict | None) -> list[str]:
        """Markdown lines (``theory``: the ensemble's resolved theory section, or None)."""
        ...

    def figures(self, result: dict, out_dir: Path) -> list[Path]:
        """Write the result's figures into ``out_dir``; their paths."""
        ...


def estimate_lines(results: list[dict], theories: dict[str, dict], kinds: Mapping[str, EstimateReport]) -> list[str]:
    """Markdown sections for the summary, one per estimate JSON, each from its kind."""
    if not results:
        return []
    lines = ["## Cheaper measurements without bias", ""]
    for res in results:
        lines += kinds[res["kind"]].report(res, theories.get(res["ensemble"]))
    return lines


def plot_estimates(res: dict, out_dir: str | os.PathLike, kinds: Mapping[str, EstimateReport]) -> list[Path]:
    """The figures of one estimate JSON, from its kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return kinds[res["kind"]].figures(res, out_dir)


def plot_bias_corrected_scan(res: dict, out_dir: Path) -> list[Path]:
    """Heat maps of a bias-corrected (r_lb, r_tr) scan: sigma_ML / sigma_full and the
    central-value check per target (none without a scan)."""
    paths = []
    if res.get("scan"):
        scan = res["scan"]
        targets = list(scan["sigma_ratio"])
        for what, cmap in (("sigma_ratio", "viridis"), ("check", "RdYlGn")):
            n_col = min(4, len(targets))
            n_row = -(-len(targets) // n_col)
            fig, axes = plt.subplots(n_row, n_col, figsize=(3.0 * n_col, 2.8 * n_row), squeeze=False)
            for ax in axes.flat[len(targets) :]:
                ax.set_visible(False)
            for ax, t in zip(axes.flat, targets):
                grid = np.array([[np.nan if v is None else v for v in row] for row in scan[what][t]], dtype=float)
                im = ax.imshow(
                    grid,
                    origin="lower",
                    cmap=cmap,
                    aspect="auto",
                    vmin=0 if what == "check" else None,
                    vmax=2 if what == "check" else None,
                )
                ax.set_xticks(range(len(scan["r_tr"])), [f"{r:g}" for r in scan["r_tr"]])
                ax.set_yticks(range(len(scan["r_lb"])), [f"{r:g}" for r in scan["r_lb"]])
                ax.set_xlabel("r_tr")
                ax.set_ylabel("r_lb")
                ax.set_title(t, fontsize=9)
                for i in range(grid.shape[0]):
                    for j in range(grid.shape[1]):
                        if np.isfinite(grid[i, j]):
                            ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=7, color="w")
                fig.colorbar(im, ax=ax, fraction=0.046)
            label = "sigma_ML / sigma_full" if what == "sigma_ratio" else "central-value check"
            fig.suptitle(f"{res['ensemble']}: {label} ({scan['estimator']})", fontsize=10)
            fig.tight_layout()
            path = out_dir / f"{res['ensemble']}__scan_{what}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def plot_control_variate_training(res: dict, out_dir: Path) -> list[Path]:
    """Training losses (relative to Var(O)) of every control-variate run."""
    paths = []
    if res["runs"]:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in res["runs"]:
            steps = np.arange(len(r["loss"])) * r["loss_stride"]
            ax.semilogy(
                steps, np.asarray(r["loss"]) / r["var_o"], lw=0.8, label=f"{r['network']}, n_train {r['n_train']}"
            )
        ax.set_xlabel("Adam step")
        ax.set_ylabel("loss / Var(O)")
        ax.set_title(f"{res['ensemble']}: control-variate training", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{res['ensemble']}__control_variate_training.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
