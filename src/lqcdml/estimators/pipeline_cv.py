"""Schwinger-Dyson control variates (``estimator.kind = control_variate``).

Reads the ensemble's configurations; for each ``n_train`` and each network of
``estimator.networks`` trains ``g`` on the first whole chains that hold ``n_train``
configurations and estimates ``<O>`` on the other chains. The observable and the network
are the theory's (``sources.control_variate()``, an ``estimators.cv_problems`` problem named
by the theory kind: phi^4 the timeslice correlator at ``T / 2`` with a shifted MLP, U(1) the
plaquette with a plaquette vector field).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .control_variates import control_variate_estimate, control_variate_terms, train_control_variate
from .ensemble import EnsembleIndex
from .pipeline_inputs import EnsembleConfig, EstimatorSources, Log, obs_summary

__all__ = ["run_control_variate"]


def run_control_variate(ens: EnsembleConfig, sources: EstimatorSources, log: Log) -> dict:
    """Plain and improved ``<O>``, variance and error reduction of every (``n_train``, network)."""
    es, th, name = ens.estimator, ens.theory, sources.ensemble
    x, idx = sources.configurations()
    action = sources.action()
    problem = sources.control_variate()
    observable, o = problem.observable(th, x, sources.group())
    per_chain = sources.per_chain
    runs = []
    for n_train in es.n_train:
        n_chains_train = -(-n_train // per_chain)
        evaluate = np.arange(n_chains_train * per_chain, len(idx))
        eval_idx = EnsembleIndex(name, idx.replica[evaluate], idx.config[evaluate])
        for widths in es.networks:
            torch.manual_seed(es.seed)
            g = problem.network(th, tuple(widths), x)
            t0 = time.perf_counter()
            hist = train_control_variate(
                g,
                action.force,
                x[:n_train],
                o[:n_train],
                es.steps,
                es.lr,
                es.batch,
                es.seed,
                es.divergence,
                es.n_probe,
                es.schedule,
            )
            seconds = time.perf_counter() - t0
            f = control_variate_terms(
                g, action.force, x[evaluate], divergence=es.divergence, seed=es.seed + 1, n_probe=es.n_probe
            )
            res = control_variate_estimate(eval_idx, o[evaluate].cpu().numpy(), f)
            stride = max(1, len(hist.loss) // 200)
            log(
                f"estimate {name}: g {widths or 'linear'}, n_train {n_train}: variance reduction "
                f"{res.variance_reduction:.3g}, {seconds:.0f} s training"
            )
            runs.append(
                {
                    "network": "linear" if not widths else "mlp " + "-".join(str(w) for w in widths),
                    "hidden": list(widths),
                    "n_train": n_train,
                    "n_eval": int(len(evaluate)),
                    "plain": obs_summary(res.plain),
                    "improved": obs_summary(res.improved),
                    "zero_mean": obs_summary(res.zero_mean),
                    "variance_reduction": res.variance_reduction,
                    "error_reduction": res.error_reduction,
                    "training_seconds": seconds,
                    "final_loss": float(np.mean(hist.loss[-stride:])),
                    "var_o": hist.var_o,
                    "loss": [float(v) for v in np.asarray(hist.loss)[::stride]],
                    "loss_stride": stride,
                }
            )
    return {
        "kind": "control_variate",
        "ensemble": name,
        "observable": observable,
        "runs": runs,
        "divergence": es.divergence,
        "steps": es.steps,
        "lr": es.lr,
        "batch": es.batch,
    }
