"""The bias-corrected ML estimate (``estimator.kind = bias_corrected``).

Reads the cheap observable stores (features on every configuration) and the expensive ones
(``lqcdml measure --expensive``: targets on the labelled configurations of the split, on
every configuration when the estimator scans). Targets ``tr1..tr4`` and ``tr1_pow2..`` are
each estimated on their own, target ``k`` with the seed ``estimator.seed + 100 k``; the
cumulants of the condensate ``kappa1..kappa4`` are functions of those estimates. With
``scan_r_lb``/``scan_r_tr`` the estimator ``scan_estimator`` is also computed on the grid of
splits, against the plain estimate on every configuration.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .bias_corrected import (
    central_value_check,
    cross_fit,
    full_estimate,
    labelled_estimate,
    p1,
    p2,
    power_tuned,
    train_on_split,
)
from .cumulants import cumulants_from_moments
from .pipeline_features import cost_per_entry, feature, layout, targets
from .pipeline_inputs import EnsembleConfig, EstimateInputError, EstimatorSources, Log, obs_summary
from .pipeline_split import label_split
from .regressors import make_regressor

__all__ = ["run_bias_corrected"]


def run_bias_corrected(ens: EnsembleConfig, sources: EstimatorSources, log: Log) -> dict:
    """Every estimator of every target at the production split (and the scan); the split's
    sizes and the cost of the estimate beside measuring every configuration."""
    es, name = ens.estimator, sources.ensemble
    if ens.measure.n_noise < 2:
        raise EstimateInputError(
            f"ensembles.{name}.measure.n_noise = {ens.measure.n_noise}; allowed: >= 2 for "
            "estimator.kind = bias_corrected (the unbiased square of tr D^-1 needs two noises)"
        )
    cheap, exp = sources.observables()
    idx, split = layout(cheap, name), label_split(es, sources.n_measured)
    if len(idx) != split.n or not np.array_equal(layout(exp, name).config, idx.config):
        raise EstimateInputError(
            f"estimate: the observable stores hold {len(idx)} entries, the split of "
            f"ensembles.{name} expects {split.n}: measure every replica to the chain's length"
        )
    x = np.stack([feature(cheap, f) for f in es.features], axis=1)
    ys = targets(exp)
    scanning = bool(es.scan_r_lb)
    measured = np.isfinite(ys["tr1"])
    want_measured = np.ones(len(idx), dtype=bool) if scanning else np.isin(np.arange(len(idx)), split.labelled)
    if not np.array_equal(measured, want_measured):
        raise EstimateInputError(
            "estimate: the expensive measurement does not cover the labelled configurations "
            "of the split (measured with another estimator config?): rerun `lqcdml measure "
            "--expensive`"
        )
    volume = int(np.prod(ens.theory.lattice))
    t_cheap, t_exp = cost_per_entry(cheap), cost_per_entry(exp)

    # the production point
    names = list(ys)
    est, train_seconds, lambdas = {}, 0.0, {}
    for k, target in enumerate(names):
        est[target], s, lambdas[target] = _estimators(idx, x, ys[target], split, es, es.seed + 100 * k)
        if scanning:
            est[target]["full"] = full_estimate(idx, ys[target])
        train_seconds += s
    est.update(_cumulants(est, volume))
    n = split.n
    result = {
        "kind": "bias_corrected",
        "ensemble": name,
        "features": list(es.features),
        "regressor": es.regressor,
        "split": split.sizes | {"r_lb": es.r_lb, "r_tr": es.r_tr, "seed": es.seed},
        "estimates": {t: {k: obs_summary(o) for k, o in d.items()} for t, d in est.items()},
        "power_tuned_lambda": lambdas,
        "cost": {
            "cheap_seconds_per_config": t_cheap,
            "expensive_seconds_per_config": t_exp,
            "training_seconds": train_seconds,
            "expensive_fraction": len(split.labelled) / n,
            "wall_fraction": (len(split.labelled) * t_exp + n * t_cheap + train_seconds) / (n * t_exp),
        },
    }
    if scanning:
        full = {t: d["full"] for t, d in est.items()}  # the reference of every grid point
        result["scan"] = _scan(idx, x, ys, full, es, volume, t_cheap, t_exp, n, log)
    result["targets"] = names
    return result


def _estimators(ens_idx, x, y, split, es, seed, only: str | None = None) -> tuple[dict, float, float | None]:
    """The estimators of one target at one split (every one, or ``only`` that one); the
    training seconds; the power-tuned lambda (None when it was not computed)."""
    out, seconds, lam = {}, 0.0, None
    if only != "cross_fit":
        t0 = time.perf_counter()
        f = train_on_split(x, y, split, make_regressor(es.regressor, seed))
        seconds = time.perf_counter() - t0
        if only is None:
            out["labelled_only"] = labelled_estimate(ens_idx, y, split)
        if only in (None, "p1"):
            out["p1"] = p1(ens_idx, y, f, split)
        if only in (None, "p2"):
            out["p2"] = p2(ens_idx, y, f, split)
        if only in (None, "power_tuned"):
            pt = power_tuned(ens_idx, y, f, split)
            out["power_tuned"], lam = pt.estimate, pt.lam
    if es.folds >= 2 and only in (None, "cross_fit"):
        t0 = time.perf_counter()
        out["cross_fit"] = cross_fit(
            ens_idx, x, y, split, lambda k: make_regressor(es.regressor, seed + 1 + k), es.folds
        ).estimate
        seconds += time.perf_counter() - t0
    return out, seconds, lam


def _cumulants(est: dict[str, dict], volume: int) -> dict[str, dict]:
    """``kappa1..kappa4`` of the condensate for every estimator of tr1 and its powers."""
    out: dict[str, dict] = {}
    for kind in est["tr1"]:
        moments = {1: est["tr1"][kind]}
        moments.update({k: est[f"tr1_pow{k}"][kind] for k in (2, 3, 4) if kind in est.get(f"tr1_pow{k}", {})})
        for k, kappa in cumulants_from_moments(moments, volume).items():
            out.setdefault(f"kappa{k}", {})[kind] = kappa
    return out


def _scan(idx, x, ys, full, es, volume, t_cheap, t_exp, n, log: Log) -> dict:
    """sigma_ML / sigma_full and the central-value check of ``scan_estimator`` on the grid
    (the data of the heat maps); ``full``: the plain estimate of every target and cumulant on
    all configurations."""
    names = list(full)
    shape = (len(es.scan_r_lb), len(es.scan_r_tr))
    ratio = {t: np.full(shape, np.nan) for t in names}
    check = {t: np.zeros(shape, dtype=int) for t in names}
    cost = np.full(shape, np.nan)
    for o in full.values():
        o.gamma_method()
    for i, r_lb in enumerate(es.scan_r_lb):
        for j, r_tr in enumerate(es.scan_r_tr):
            try:
                split = label_split(es, n, r_lb, r_tr)
                est, seconds = {}, 0.0
                for k, t in enumerate(ys):
                    e, s, _ = _estimators(idx, x, ys[t], split, es, es.seed + 100 * k, only=es.scan_estimator)
                    est[t], seconds = e, seconds + s
            except ValueError:  # too few labelled entries for this point (pyerrors needs 5 per replica)
                continue
            est.update(_cumulants(est, volume))
            for t in names:
                o = est[t][es.scan_estimator]
                o.gamma_method()
                ratio[t][i, j] = float(o.dvalue) / float(full[t].dvalue)
                check[t][i, j] = central_value_check(o, full[t])
            cost[i, j] = (len(split.labelled) * t_exp + n * t_cheap + seconds) / (n * t_exp)
        log(f"estimate: scan r_lb = {r_lb:g} done")
    best = {}
    for t in names:
        ok = [
            (r_lb, r_tr, float(ratio[t][i, j]), float(cost[i, j]))
            for i, r_lb in enumerate(es.scan_r_lb)
            for j, r_tr in enumerate(es.scan_r_tr)
            if ratio[t][i, j] <= 1.1 and check[t][i, j] == 2
        ]
        best[t] = min(ok, default=None)
    return {
        "estimator": es.scan_estimator,
        "r_lb": list(es.scan_r_lb),
        "r_tr": list(es.scan_r_tr),
        "sigma_ratio": {t: _json_grid(ratio[t]) for t in names},
        "check": {t: check[t].tolist() for t in names},
        "wall_fraction": _json_grid(cost),
        "full": {t: obs_summary(o) for t, o in full.items()},
        "smallest_r_lb": {
            t: (None if b is None else {"r_lb": b[0], "r_tr": b[1], "sigma_ratio": b[2], "wall_fraction": b[3]})
            for t, b in best.items()
        },
    }


def _json_grid(a: np.ndarray) -> list:
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]
