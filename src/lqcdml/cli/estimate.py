"""``lqcdml estimate``: the ensemble's ``estimator`` (bias-corrected ML or control variates).

Writes one JSON (``--out``) that ``lqcdml analyze`` turns into tables and figures. Every
estimate is reported with the plain one beside it, as ``value``/``error``/``tau_int``
from pyerrors' Gamma method.

- ``bias_corrected`` reads the cheap observable stores (``--obs``: features on every
  configuration) and the expensive ones (``--expensive-obs``, from ``lqcdml measure
  --expensive``). Targets: ``tr1..tr4`` (``Re tr D^-n / V`` averaged over noise) and
  ``tr1_pow2..tr1_pow4`` (``(Re tr D^-1 / V)^k`` unbiased from distinct noises, ``k <= n_noise``),
  each estimated on its own; the cumulants of the condensate ``kappa1..kappa4``
  (``estimators.cumulants``) are functions of those estimates.
- ``control_variate`` reads the ensemble stores (``--store``: the configurations), trains
  each ``g`` on the first chains and estimates on the others.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .. import __version__
from ..atomic import write_json_atomic
from ..config.records import job_provenance
from ..config import RootConfig, ensemble_hash, matches_chain
from ..config.estimators import measured_configs
from .labels import label_split
from ..estimators.cumulants import cumulants_from_moments, distinct_noise_powers
from ..estimators import (
    EnsembleIndex,
    central_value_check,
    control_variate_estimate,
    control_variate_terms,
    cross_fit,
    full_estimate,
    labelled_estimate,
    make_regressor,
    p1,
    p2,
    power_tuned,
    strided_split,
    train_control_variate,
    train_on_split,
)
from ..store import EnsembleStore, StoreError, read_observables

__all__ = ["estimate"]


def _obs_summary(obs) -> dict:
    obs.gamma_method()
    taus = [float(t) for t in getattr(obs, "e_tauint", {}).values()]
    return {"value": float(obs.value), "error": float(obs.dvalue), "tau_int": max(taus) if taus else 0.5}


def _flat(ds_list: list[xr.Dataset], name: str) -> np.ndarray:
    """Variable ``name`` (or ``name:coord`` of its one extra axis) flattened replica-major."""
    base, _, coord = name.partition(":")
    parts = []
    for ds in ds_list:
        if base not in ds:
            available = ", ".join(sorted(v for v in ds.data_vars))
            raise StoreError(f"estimator feature {name!r}: no variable {base!r} in the observable store; "
                             f"allowed: {available}")
        da = ds[base]
        extra = [d for d in da.dims if d not in ("config", "replica")]
        if coord:
            if len(extra) != 1:
                raise StoreError(f"estimator feature {name!r}: {base!r} has axes {extra}; 'name:coord' needs one")
            values = [str(v) for v in da[extra[0]].values]
            if coord not in values:
                raise StoreError(f"estimator feature {name!r}: {extra[0]} = {coord!r}; allowed: {', '.join(values)}")
            da = da.isel({extra[0]: values.index(coord)})
        elif extra:
            raise StoreError(f"estimator feature {name!r}: {base!r} has axes {extra}; name one element as "
                             f"'{base}:<{extra[0]}>'")
        parts.append(np.asarray(da.transpose("replica", "config").values, dtype=float))
    return np.concatenate(parts, axis=0).reshape(-1)


def _layout(ds_list: list[xr.Dataset], ensemble: str) -> EnsembleIndex:
    replica, config = [], []
    for ds in ds_list:
        cfgs = np.asarray(ds["config"].values, dtype=np.int64)
        for r in np.asarray(ds["replica"].values, dtype=np.int64):
            replica.append(np.full(len(cfgs), r))
            config.append(cfgs)
    return EnsembleIndex(ensemble, np.concatenate(replica), np.concatenate(config))


def _shared_model(records: list[tuple[str, dict]], ens, dtype: str, what: str) -> str | None:
    """Check that every ``(name, record)`` (store metadata or observable-store attributes)
    comes from the chain of ``ens``; the model digest they share (``None``: no model)."""
    for name, rec in records:
        if not matches_chain(rec, ens, dtype):
            raise StoreError(f"{what} {name} was not made on this ensemble of this config (chain hash differs)")
    digests = sorted({str(rec.get("model_digest")) for _, rec in records})
    if len(digests) > 1:
        raise StoreError(f"{what}s of one ensemble were sampled with the models {', '.join(digests)}; "
                         "allowed: one trained model for every replica")
    return records[0][1].get("model_digest") if records else None


def _by_replica(stores: list[xr.Dataset]) -> list[xr.Dataset]:
    return sorted(stores, key=lambda ds: int(ds["replica"].values[0]))


def _targets(expensive: list[xr.Dataset]) -> dict[str, np.ndarray]:
    """Per-entry targets, flat replica-major: tr1..tr4 and the unbiased powers tr1_pow2.."""
    parts = [np.asarray(ds["trace_inverse_noise_re"].transpose("replica", "config", "noise", "power").values)
             for ds in expensive]
    t = np.concatenate(parts, axis=0)  # [replica, config, noise, power]
    t = t.reshape(-1, *t.shape[2:])
    out = {f"tr{n}": t[:, :, n - 1].mean(axis=1) for n in range(1, 5)}
    for k, v in distinct_noise_powers(t[:, :, 0], 4).items():
        if k > 1:
            out[f"tr1_pow{k}"] = v
    return out


def _cost(ds_list: list[xr.Dataset]) -> float:
    """Seconds per measured (configuration, chain) entry of a set of observable stores."""
    seconds = sum(float(ds.attrs.get("measure_seconds", 0.0)) for ds in ds_list)
    entries = sum(int(ds.attrs.get("measured_entries", 0)) for ds in ds_list)
    return seconds / entries if entries else float("nan")


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
        out["cross_fit"] = cross_fit(ens_idx, x, y, split, lambda k: make_regressor(es.regressor, seed + 1 + k),
                                     es.folds).estimate
        seconds += time.perf_counter() - t0
    return out, seconds, lam


def _cumulants(est: dict[str, dict], volume: int) -> dict[str, dict]:
    """``kappa1..kappa4`` of the condensate for every estimator of tr1 and its powers."""
    out = {}
    for kind in est["tr1"]:
        moments = {1: est["tr1"][kind]}
        moments.update({k: est[f"tr1_pow{k}"][kind] for k in (2, 3, 4) if kind in est.get(f"tr1_pow{k}", {})})
        for k, kappa in cumulants_from_moments(moments, volume).items():
            out.setdefault(f"kappa{k}", {})[kind] = kappa
    return out


def _bias_corrected(cfg: RootConfig, ensemble: str, obs: list[Path], expensive: list[Path]) -> dict:
    ens = cfg.ensembles[ensemble]
    es = ens.estimator
    if ens.measure.n_noise < 2:
        raise StoreError(f"ensembles.{ensemble}.measure.n_noise = {ens.measure.n_noise}; allowed: >= 2 for "
                         "estimator.kind = bias_corrected (the unbiased square of tr D^-1 needs two noises)")
    opened = {p: read_observables(p) for p in [*obs, *expensive]}
    digest = _shared_model([(repr(str(p)), dict(ds.attrs)) for p, ds in opened.items()], ens, cfg.dtype,
                           f"observable store of ensemble {ensemble!r}")
    cheap, exp = _by_replica([opened[p] for p in obs]), _by_replica([opened[p] for p in expensive])
    idx, split = _layout(cheap, ensemble), label_split(ens)
    if len(idx) != split.n or not np.array_equal(_layout(exp, ensemble).config, idx.config):
        raise StoreError(f"estimate: the observable stores hold {len(idx)} entries, the split of "
                         f"ensembles.{ensemble} expects {split.n}: measure every replica to the chain's length")
    x = np.stack([_flat(cheap, name) for name in es.features], axis=1)
    ys = _targets(exp)
    scanning = bool(es.scan_r_lb)
    measured = np.isfinite(ys["tr1"])
    want_measured = np.ones(len(idx), dtype=bool) if scanning else np.isin(np.arange(len(idx)), split.labelled)
    if not np.array_equal(measured, want_measured):
        raise StoreError("estimate: the expensive measurement does not cover the labelled configurations of the "
                         "split (measured with another estimator config?): rerun `lqcdml measure --expensive`")
    volume = int(np.prod(ens.theory.lattice))
    t_cheap, t_exp = _cost(cheap), _cost(exp)

    # the production point
    targets = list(ys)
    est, train_seconds, lambdas = {}, 0.0, {}
    for k, name in enumerate(targets):
        est[name], s, lambdas[name] = _estimators(idx, x, ys[name], split, es, es.seed + 100 * k)
        if scanning:
            est[name]["full"] = full_estimate(idx, ys[name])
        train_seconds += s
    est.update(_cumulants(est, volume))
    n = split.n
    result = {
        "kind": "bias_corrected",
        "ensemble": ensemble,
        "features": list(es.features),
        "regressor": es.regressor,
        "split": split.sizes | {"r_lb": es.r_lb, "r_tr": es.r_tr, "seed": es.seed},
        "estimates": {t: {k: _obs_summary(o) for k, o in d.items()} for t, d in est.items()},
        "power_tuned_lambda": lambdas,
        "cost": {"cheap_seconds_per_config": t_cheap, "expensive_seconds_per_config": t_exp,
                 "training_seconds": train_seconds,
                 "expensive_fraction": len(split.labelled) / n,
                 "wall_fraction": (len(split.labelled) * t_exp + n * t_cheap + train_seconds) / (n * t_exp)},
    }
    if scanning:
        full = {t: d["full"] for t, d in est.items()}  # the reference of every grid point
        result["scan"] = _scan(idx, x, ys, full, es, volume, t_cheap, t_exp, n)
    result["targets"] = targets
    return result | ({} if digest is None else {"model_digest": digest})


def _scan(idx, x, ys, full, es, volume, t_cheap, t_exp, n) -> dict:
    """sigma_ML / sigma_full and the central-value check of ``scan_estimator`` on the grid;
    ``full``: the plain estimate of every target and cumulant on all configurations."""
    targets = list(ys)
    names = list(full)
    ratio = {t: np.full((len(es.scan_r_lb), len(es.scan_r_tr)), np.nan) for t in names}
    check = {t: np.zeros((len(es.scan_r_lb), len(es.scan_r_tr)), dtype=int) for t in names}
    cost = np.full((len(es.scan_r_lb), len(es.scan_r_tr)), np.nan)
    for o in full.values():
        o.gamma_method()
    for i, r_lb in enumerate(es.scan_r_lb):
        for j, r_tr in enumerate(es.scan_r_tr):
            try:
                split = strided_split(n, r_lb, r_tr, es.seed)
                est, seconds = {}, 0.0
                for k, t in enumerate(targets):
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
        print(f"estimate: scan r_lb = {r_lb:g} done", file=sys.stderr, flush=True)
    best = {}
    for t in names:
        ok = [(r_lb, r_tr, float(ratio[t][i, j]), float(cost[i, j]))
              for i, r_lb in enumerate(es.scan_r_lb) for j, r_tr in enumerate(es.scan_r_tr)
              if ratio[t][i, j] <= 1.1 and check[t][i, j] == 2]
        best[t] = min(ok, default=None)
    return {"estimator": es.scan_estimator, "r_lb": list(es.scan_r_lb), "r_tr": list(es.scan_r_tr),
            "sigma_ratio": {t: _json_grid(ratio[t]) for t in names},
            "check": {t: check[t].tolist() for t in names},
            "wall_fraction": _json_grid(cost),
            "full": {t: _obs_summary(o) for t, o in full.items()},
            "smallest_r_lb": {t: (None if b is None else {"r_lb": b[0], "r_tr": b[1], "sigma_ratio": b[2],
                                                           "wall_fraction": b[3]}) for t, b in best.items()}}


def _json_grid(a: np.ndarray) -> list:
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]


def _configurations(cfg: RootConfig, ensemble: str,
                    stores: list[Path]) -> tuple[torch.Tensor, EnsembleIndex, str | None]:
    """Measured configurations of every replica store, flattened replica-major, and the
    model digest of their chain (``None``: no model)."""
    ens = cfg.ensembles[ensemble]
    per_chain = measured_configs(ens)
    opened = sorted((EnsembleStore.open(p) for p in stores), key=lambda s: int(s.meta["replica"]))
    digest = _shared_model([(f"of replica {st.meta.get('replica')}", st.meta) for st in opened], ens, cfg.dtype,
                           f"ensemble store of {ensemble!r}")
    fields, replica, config = [], [], []
    for st in opened:
        n = st.n_committed
        if n < ens.chain.n_configs:
            raise StoreError(f"store of replica {st.meta['replica']} holds {n} of {ens.chain.n_configs} "
                             "configurations: finish the chain first")
        first = n - per_chain
        block = np.stack([st.read_fields(i) for i in range(first, first + per_chain)])  # [n, B, ...]
        traj = st.read_records("trajectory")[first:first + per_chain].astype(np.int64)
        n_b = block.shape[1]
        for b in range(n_b):
            fields.append(block[:, b])
            replica.append(np.full(per_chain, (int(st.meta["replica"]) - 1) * n_b + b + 1))
            config.append(traj)
    x = torch.from_numpy(np.concatenate(fields))
    return x, EnsembleIndex(ensemble, np.concatenate(replica), np.concatenate(config)), digest


def _control_variate(cfg: RootConfig, ensemble: str, stores: list[Path]) -> dict:
    from ..config.build import build_action, build_group, torch_device
    from ..nn import PlaquetteVectorField, ShiftedMLP
    from ..observables import plaquette, timeslice_correlator

    ens = cfg.ensembles[ensemble]
    es, th = ens.estimator, ens.theory
    x, idx, digest = _configurations(cfg, ensemble, stores)
    x = x.to(torch_device(cfg.device))
    action = build_action(th)
    if th.name == "phi4":
        observable, o = f"timeslice_correlator(t = {th.lattice[0] // 2})", timeslice_correlator(x, th.lattice[0] // 2)
    else:
        observable, o = "plaquette", plaquette(x, build_group(th))
    per_chain = measured_configs(ens)
    runs = []
    for n_train in es.n_train:
        n_chains_train = -(-n_train // per_chain)
        evaluate = np.arange(n_chains_train * per_chain, len(idx))
        eval_idx = EnsembleIndex(ensemble, idx.replica[evaluate], idx.config[evaluate])
        for widths in es.networks:
            torch.manual_seed(es.seed)
            g = (ShiftedMLP(tuple(th.lattice), tuple(widths), dtype=x.dtype) if th.name == "phi4"
                 else PlaquetteVectorField(tuple(widths), dtype=x.dtype)).to(x.device)
            t0 = time.perf_counter()
            hist = train_control_variate(g, action.force, x[:n_train], o[:n_train], es.steps, es.lr, es.batch,
                                         es.seed, es.divergence, es.n_probe, es.schedule)
            seconds = time.perf_counter() - t0
            f = control_variate_terms(g, action.force, x[evaluate], divergence=es.divergence, seed=es.seed + 1,
                                      n_probe=es.n_probe)
            res = control_variate_estimate(eval_idx, o[evaluate].cpu().numpy(), f)
            stride = max(1, len(hist.loss) // 200)
            print(f"estimate {ensemble}: g {widths or 'linear'}, n_train {n_train}: variance reduction "
                  f"{res.variance_reduction:.3g}, {seconds:.0f} s training", file=sys.stderr, flush=True)
            runs.append({
                "network": "linear" if not widths else "mlp " + "-".join(str(w) for w in widths),
                "hidden": list(widths), "n_train": n_train, "n_eval": int(len(evaluate)),
                "plain": _obs_summary(res.plain), "improved": _obs_summary(res.improved),
                "zero_mean": _obs_summary(res.zero_mean),
                "variance_reduction": res.variance_reduction, "error_reduction": res.error_reduction,
                "training_seconds": seconds, "final_loss": float(np.mean(hist.loss[-stride:])), "var_o": hist.var_o,
                "loss": [float(v) for v in np.asarray(hist.loss)[::stride]], "loss_stride": stride,
            })
    return {"kind": "control_variate", "ensemble": ensemble, "observable": observable, "runs": runs,
            "divergence": es.divergence, "steps": es.steps, "lr": es.lr, "batch": es.batch,
            **({} if digest is None else {"model_digest": digest})}


def estimate(cfg: RootConfig, ensemble: str, out: Path, obs: list[Path], expensive: list[Path],
             stores: list[Path]) -> dict:
    """Run the ensemble's estimator; writes ``out`` (JSON) and returns its content."""
    ens = cfg.ensembles[ensemble]
    torch.set_num_threads(cfg.threads)
    kind = ens.estimator.kind
    if kind == "bias_corrected":
        result = _bias_corrected(cfg, ensemble, obs, expensive)
    elif kind == "control_variate":
        result = _control_variate(cfg, ensemble, stores)
    else:
        raise StoreError(f"ensembles.{ensemble}.estimator.kind = {kind!r}; allowed: bias_corrected, "
                         "control_variate (nothing to estimate)")
    digest = result.get("model_digest")  # the trained model of the chain the inputs come from
    result |= {"experiment": cfg.experiment, "lqcdml_version": __version__,
               "config_hash": ensemble_hash(ens, cfg.dtype, digest),
               "provenance": job_provenance(cfg, ensemble, model_digest=digest)}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, result)
    return result
