"""Summary rows of an experiment: estimate, error, tau_int, reference; Markdown and CSV."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

from .drift import MIN_CHAINS, P_WINDOWS, WINDOWS, Z_MAX, drift_test
from .errors import BLOCKS, blocked_estimate, derived_dataarray_estimate, estimate_dataarray
from .references import reference_value
from .replicas import P_MIN, replica_test

__all__ = [
    "Row",
    "summarize_ensemble",
    "write_tables",
    "thermalized",
    "scalar_series",
    "drift_lines",
    "replica_lines",
    "SAMPLER_DIAGNOSTICS",
    "equal_to_rounding",
]

_SKIP = {"delta_H"}  # summarised as exp(-dH), whose mean is exactly 1
#: below this (relative to the reference's size) value and error are rounding noise
ROUNDING = 1e-12


def equal_to_rounding(difference: float, sigma: float, scale: float) -> bool:
    """A difference and its error both rounding noise at the size ``scale`` (e.g. two
    imaginary parts that vanish exactly): nothing to compare."""
    noise = ROUNDING * max(1.0, scale)
    return sigma <= noise and abs(difference) <= noise


@dataclass(frozen=True)
class Row:
    """One summary row. ``error``: the Gamma-method error, or with ``MIN_CHAINS`` or more chains
    the larger of it and the chains' spread (``replica_error``); for heavy-tailed series also
    at least the block means' error."""

    ensemble: str
    observable: str
    value: float
    error: float
    tau_int: float
    n_configs: int
    n_replicas: int
    reference: float | None = None
    reference_error: float | None = None
    source: str = ""
    drift_z: float | None = None
    needed_cut: int | None = None  # configurations past chain.n_therm the drift test asks for
    drift_p: float | None = None  # p of the window stationarity test (analysis.drift)
    replica_chi2: float | None = None  # spread of the replica means over the error (analysis.replicas)
    replica_dof: int | None = None
    replica_error: float | None = None  # the error of the mean that the spread alone implies

    @property
    def pull(self) -> float | None:
        """Deviation from the reference in units of the combined error; ``None`` where value,
        error and reference agree to rounding (an exactly vanishing observable)."""
        if self.reference is None:
            return None
        sigma = float(np.hypot(self.comparison_error, self.reference_error or 0.0))
        if equal_to_rounding(self.value - self.reference, sigma, abs(self.reference)):
            return None
        return (self.value - self.reference) / sigma if sigma > 0 else None

    @property
    def drifting(self) -> bool:
        return self.drift_z is not None and (not abs(self.drift_z) <= Z_MAX or self.windows_move)

    @property
    def windows_move(self) -> bool:
        """The window means of the kept chain differ beyond their errors (``p < P_WINDOWS``)."""
        return self.drift_p is not None and not self.drift_p >= P_WINDOWS

    @property
    def replicas_disagree(self) -> bool:
        """The replica means scatter far beyond the Gamma-method error (``p < P_MIN``)."""
        if self.replica_chi2 is None or not self.replica_dof:
            return False
        return bool(stats.chi2.sf(self.replica_chi2, self.replica_dof) < P_MIN)

    @property
    def comparison_error(self) -> float:
        """The error a comparison uses: the Gamma-method error, or where the replica means
        disagree the larger error their spread implies (the Gamma method never sees it)."""
        if self.replicas_disagree and self.replica_error is not None:
            return max(self.error, self.replica_error)
        return self.error


def thermalized(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without its first ``n_therm_configs`` configurations (by trajectory number)."""
    cut = int(ds.attrs.get("n_therm_configs", 0)) * int(ds.attrs.get("save_every", 1))
    return ds.sel(config=ds["config"] > cut)


def scalar_series(ds: xr.Dataset) -> Iterable[tuple[str, xr.DataArray]]:
    """``(label, DataArray(config, replica))`` for every scalar and every vector element."""
    for key, da in ds.data_vars.items():
        name = str(key)
        if name in _SKIP:
            continue
        extra = [d for d in da.dims if d not in ("config", "replica")]
        if not extra:
            yield name, da
            continue
        if len(extra) > 1:
            continue
        dim = extra[0]
        values = da[dim].values
        if dim == "flow_time":
            values = values[-1:]  # the end of the flow
        elif dim == "t":
            values = values[: len(values) // 2 + 1]
        for v in values:
            label = f"{name}[{dim}={v:.4g}]" if isinstance(v, (float, np.floating)) else f"{name}[{dim}={v}]"
            yield label, da.sel({dim: v}).drop_vars([dim])


def summarize_ensemble(ensemble: str, ds: xr.Dataset) -> list[Row]:
    """One row per observable (vector observables element by element)."""
    ds = thermalized(ds)
    theory = json.loads(ds.attrs["theory"])
    rows = []
    for label, da in scalar_series(ds):
        gamma = est = estimate_dataarray(da, ensemble)
        if (
            label in HEAVY_TAILED and da.sizes["config"] >= BLOCKS
        ):  # the blocked error where the Gamma method's runs low
            blocked = blocked_estimate(da)
            est = replace(est, error=max(est.error, blocked.error))
        base, coord = label.split("[", 1) if "[" in label else (label, None)
        coord_value = coord.split("=", 1)[1].rstrip("]") if coord else None
        ref = reference_value(theory, base, coord_value)
        drift = drift_test(da, ensemble) if base not in SAMPLER_DIAGNOSTICS else None
        spread = replica_test(da, ensemble, error=gamma.error)
        if spread is not None and spread.dof + 1 >= MIN_CHAINS:
            # enough independent chains for their spread to be an error in its own right: it
            # holds whatever the autocorrelation, and takes in a slow mode that the Gamma
            # method's window cuts off (its error ran 1.3-1.4x low for the seed row's condensate)
            est = replace(est, error=max(est.error, spread.error_between))
        rows.append(
            Row(
                ensemble=ensemble,
                observable=label,
                value=est.value,
                error=est.error,
                tau_int=est.tau_int,
                n_configs=int(np.isfinite(da.values).sum()),
                n_replicas=int(da.sizes["replica"]),
                reference=None if ref is None else ref[0],
                reference_error=None if ref is None else ref[1],
                source="" if ref is None else ref[2],
                drift_z=None if drift is None else float(drift.z),
                needed_cut=None if drift is None else drift.needed_cut,
                drift_p=None if drift is None else drift.p_windows,
                replica_chi2=None if spread is None else spread.chi2,
                replica_dof=None if spread is None else spread.dof,
                replica_error=None if spread is None else spread.error_between,
            )
        )
    chi = plaquette_susceptibility_row(ensemble, ds, theory)
    if chi is not None:
        rows.append(chi)
    return sorted(rows, key=_order)


#: the derived row of a gauge theory's plaquette series (``plaquette_susceptibility_row``)
PLAQUETTE_SUSCEPTIBILITY = "plaquette_susceptibility"


def plaquette_susceptibility_row(ensemble: str, ds: xr.Dataset, theory: dict, s_tau: float = 2.0) -> Row | None:
    """``chi_P = V (<p^2> - <p>^2)`` of the per-configuration mean plaquette ``p`` of a gauge
    theory (``V`` plaquettes per plane summed over: the lattice volume), a function of two means
    with its Gamma-method error propagated by pyerrors (autocorrelations of both series and their
    correlation included); ``None`` without a plaquette series. ``ds``: thermalised."""
    if theory.get("name") not in ("u1", "su") or "plaquette" not in ds.data_vars:
        return None
    da = ds["plaquette"]
    if tuple(da.dims) != ("config", "replica"):
        return None
    volume = float(np.prod(theory["lattice"]))
    est = derived_dataarray_estimate(lambda p, p2: volume * (p2 - p * p), [da, da**2], ensemble, s_tau)
    ref = reference_value(theory, PLAQUETTE_SUSCEPTIBILITY)
    return Row(
        ensemble=ensemble,
        observable=PLAQUETTE_SUSCEPTIBILITY,
        value=est.value,
        error=est.error,
        tau_int=est.tau_int,
        n_configs=int(np.isfinite(da.values).sum()),
        n_replicas=int(da.sizes["replica"]),
        reference=None if ref is None else ref[0],
        reference_error=None if ref is None else ref[1],
        source="" if ref is None else ref[2],
    )


#: heavy-tailed series: their error is the larger of the Gamma method's and the block means' spread
HEAVY_TAILED = frozenset({"exp_minus_delta_H"})

#: series of the sampler, not of the distribution it samples: no drift test, and ensembles of
#: one theory drawn by different samplers differ in them by design
SAMPLER_DIAGNOSTICS = frozenset({"acceptance", "exp_minus_delta_H"})


def _order(row: Row) -> tuple:
    """Rows by ensemble, observable name, then coordinate (numbers in numeric order)."""
    base, _, coord = row.observable.partition("[")
    value = coord.rstrip("]").partition("=")[2]
    try:
        key: tuple = (0, float(value), "")
    except ValueError:
        key = (1, 0.0, value)
    return (row.ensemble, base, *key)


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)


def _drift(r: Row) -> str:
    chi2, dof, replicas = r.replica_chi2, r.replica_dof, ""
    if r.replicas_disagree and chi2 is not None and dof:
        replicas = f"**replicas disagree: chi2/dof {chi2 / dof:.3g}**"
    if r.drift_z is None:
        return replicas
    if not r.drifting:
        text = f"{r.drift_z:+.1f}"
    else:
        need = "a longer chain" if r.needed_cut is None else f"n_therm + {r.needed_cut}"
        windows = f", windows p = {r.drift_p:.1g}" if r.windows_move else ""
        text = f"**{r.drift_z:+.1f}{windows}: drifts, needs {need}**"
    return f"{text}; {replicas}" if replicas else text


def drift_lines(rows: Sequence[Row]) -> list[str]:
    """Notes (and log lines) for every row whose kept chain drifts."""
    out = []
    for r in rows:
        if r.drifting:
            need = (
                "no cut within half the kept chain passes: a longer chain is needed"
                if r.needed_cut is None
                else f"dropping {r.needed_cut} more configurations per replica passes"
            )
            parts = []
            if r.drift_z is not None and not abs(r.drift_z) <= Z_MAX:
                parts.append(
                    f"first quarter vs last half of the kept chain differ by {r.drift_z:+.1f} sigma (|z| > {Z_MAX:g})"
                )
            if r.windows_move:
                parts.append(
                    f"its {WINDOWS} window means differ beyond their errors (p = {r.drift_p:.2g} < {P_WINDOWS:g})"
                )
            out.append(f"- DRIFT: `{r.ensemble}` {r.observable}: {'; '.join(parts)}; {need}. Not a final number.")
    return out


def replica_lines(rows: Sequence[Row]) -> list[str]:
    """Notes (and log lines) for every row whose replica means disagree beyond their error."""
    out = []
    for r in rows:
        if r.replicas_disagree and r.replica_chi2 is not None and r.replica_dof:
            out.append(
                f"- REPLICAS: `{r.ensemble}` {r.observable}: the {r.replica_dof + 1} replica means scatter by "
                f"chi2/dof = {r.replica_chi2 / r.replica_dof:.3g} about the Gamma-method error {r.error:.2g}; "
                f"their spread alone implies an error of {r.replica_error:.2g}. The chains do not sample one "
                "distribution within their length (stuck, trapped in a sector, or too short): "
                "not a final number."
            )
    return out


def write_tables(
    rows: Sequence[Row],
    out_dir: str | os.PathLike,
    title: str,
    notes: Sequence[str] = (),
    appendix: Sequence[str] = (),
) -> None:
    """``summary.md`` (notes, the table, then ``appendix`` lines) and ``summary.csv`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", *notes, ""] if notes else [f"# {title}", ""]
    lines += [
        "| ensemble | observable | value | error | tau_int | configs x replicas | exact / reference | pull | source "
        "| drift (z) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = ""
        if r.reference is not None:
            ref = f"{r.reference:.6g}" + (f" +- {r.reference_error:.2g}" if r.reference_error else "")
        lines.append(
            f"| {r.ensemble} | {r.observable} | {r.value:.6g} | {r.error:.2g} | {r.tau_int:.2f} "
            f"| {r.n_configs // max(r.n_replicas, 1)} x {r.n_replicas} | {ref} | {_fmt(r.pull, '+.2f')} | {r.source} "
            f"| {_drift(r)} |"
        )
    if appendix:
        lines += ["", *appendix]
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    with open(out_dir / "summary.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        fields = list(asdict(rows[0]).keys()) + ["pull"] if rows else ["ensemble"]
        writer.writerow(fields)
        for r in rows:
            writer.writerow(list(asdict(r).values()) + [r.pull])
