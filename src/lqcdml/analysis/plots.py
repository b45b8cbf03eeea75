"""Figures of a Monte Carlo series: history, autocorrelation function, histogram.

The autocorrelation function and its summation window are pyerrors' (Gamma method).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .errors import dataarray_to_obs  # noqa: E402

__all__ = ["plot_series", "plot_training"]


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")


#: fixed margins (figure fractions) of the series figures: ``tight_layout`` draws each figure once
#: more to measure its text, a third of an analysis's time with ~50 series of three figures each
_SERIES_MARGINS = {"left": 0.21, "right": 0.97, "bottom": 0.16, "top": 0.88}


def _save_series_figure(fig, path: Path, title: str, fontsize: float = 9, left: float | None = None) -> Path:
    # a figure title: an axes title would be placed by measuring the tick labels first
    fig.suptitle(title, fontsize=fontsize)
    fig.subplots_adjust(**{**_SERIES_MARGINS, **({"left": left} if left is not None else {})})
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_series(da: xr.DataArray, ensemble: str, label: str, out_dir: str | os.PathLike) -> list[Path]:
    """History, autocorrelation and histogram PNGs of a ``(config, replica)`` series."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe(ensemble)}__{_safe(label)}"
    configs = da["config"].values
    paths = []

    fig, ax = plt.subplots(figsize=(6, 3))
    for r in da["replica"].values:
        ax.plot(configs, da.sel(replica=r).values, lw=0.6, label=f"r{int(r):02d}")
    ax.set_xlabel("trajectory")
    ax.set_ylabel(label)
    if da.sizes["replica"] <= 8:
        ax.legend(fontsize=6, ncol=4)
    paths.append(
        _save_series_figure(
            fig, out_dir / f"{stem}__history.png", f"{ensemble}: Monte Carlo history", fontsize=11, left=0.12
        )
    )

    fig, ax = plt.subplots(figsize=(4, 3))
    obs = dataarray_to_obs(da, ensemble)
    obs.gamma_method(S=2.0)
    rho = np.asarray(obs.e_rho[ensemble])
    window = int(obs.e_windowsize[ensemble])
    lags = np.arange(min(rho.size, max(3 * window, 10)))
    ax.plot(lags, rho[lags], marker=".")
    ax.axvline(window, color="C1", lw=0.8, label=f"window W = {window}")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_xlabel("lag (configuration index units)")
    ax.set_ylabel("rho(t)")
    paths.append(_save_series_figure(fig, out_dir / f"{stem}__autocorrelation.png", f"{ensemble}: {label}"))

    fig, ax = plt.subplots(figsize=(4, 3))
    values = da.values[np.isfinite(da.values)]
    counts, edges = np.histogram(values, bins=40)
    ax.stairs(counts, edges, fill=True)  # one patch (``hist`` draws 40 bars)
    ax.set_xlabel(label)
    paths.append(_save_series_figure(fig, out_dir / f"{stem}__histogram.png", f"{ensemble}: histogram"))
    return paths


#: the second panel of a training figure: history key -> axis label
_TRAINING_PANELS = {"ess": "batch ESS", "acceptance": "SLHMC acceptance per trajectory"}
_LOSS_LABELS: dict[str | None, str] = {"ess": "reverse KL loss (mean log q + S)", "acceptance": "(S_f - S_f^eff)^2"}


def plot_training(
    history: dict, ensemble: str, out_dir: str | os.PathLike, kl: Callable[[np.ndarray], np.ndarray] | None = None
) -> Path:
    """Loss, and the batch ESS (flows) or the acceptance (online SLHMC) if recorded, against the
    training step (from a train manifest's history). ``kl``: the map of a flow's loss to ``KL(q || p)``
    per plaquette (``references.kl_per_plaquette``), shown instead of the loss (log scale)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loss = np.asarray(history["loss"])
    if kl is not None:
        loss = kl(loss)
    steps = np.asarray(history.get("step", np.arange(1, len(loss) + 1)))
    panel = next((k for k in _TRAINING_PANELS if history.get(k)), None)
    fig, axes = plt.subplots(1, 2 if panel else 1, figsize=(8 if panel else 4.5, 3))
    a = axes[0] if panel else axes
    a.plot(steps, loss, lw=0.6)
    a.set_xlabel("training step")
    a.set_ylabel("KL(q||p) per plaquette" if kl else _LOSS_LABELS.get(panel, "(S_f - S_f^eff)^2"))
    if panel == "acceptance" or panel is None or (kl is not None and np.all(loss > 0)):
        a.set_yscale("log")
    if panel:
        b = axes[1]
        b.plot(steps, np.asarray(history[panel]), lw=0.6)
        b.set_xlabel("training step")
        b.set_ylabel(_TRAINING_PANELS[panel])
        b.set_ylim(0, 1)
    fig.suptitle(f"{ensemble}: training")
    fig.tight_layout()
    path = out_dir / f"{_safe(ensemble)}__training.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_losses(histories: dict[str, dict], out_dir: str | os.PathLike, name: str = "training_loss") -> Path:
    """The loss histories of several models on one axis, against the training step (log scale)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, (label, history) in enumerate(sorted(histories.items())):
        loss = np.asarray(history["loss"], dtype=float)
        steps = np.asarray(history.get("step", np.arange(1, len(loss) + 1)))
        colour = f"C{i}"
        ax.plot(steps, loss, lw=0.5, alpha=0.3, color=colour)
        window = max(1, len(loss) // 12)  # the batches are noisy: a running mean beside them
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.2, color=colour, label=f"{label} (running mean of {window})")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (S_f - S_f^eff - c)^2")
    ax.legend(fontsize=8)
    return _save(fig, Path(out_dir) / f"{_safe(name)}.png")


def plot_acceptance_scan(
    points: dict[str, list[tuple[float, float, float]]], out_dir: str | os.PathLike, name: str = "acceptance_vs_m_eff"
) -> Path:
    """Acceptance against ``m_eff``: ``points[label] = [(m_eff, acceptance, error), ...]``."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, pts in sorted(points.items()):
        pts = sorted(pts)
        ax.errorbar(
            [p[0] for p in pts],
            [p[1] for p in pts],
            yerr=[p[2] for p in pts],
            marker="o",
            ms=3,
            capsize=2,
            lw=0.8,
            label=label,
        )
    ax.set_xlabel("m_eff (molecular dynamics)")
    ax.set_ylabel("acceptance")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _save(fig, Path(out_dir) / f"{_safe(name)}.png")
