"""``lqcdml estimate``: the ensemble's ``estimator`` (bias-corrected ML or control variates).

Writes one JSON (``--out``) that ``lqcdml analyze`` turns into tables and figures
(``driver.estimate``; each estimator kind makes its estimate: ``kinds.estimators``).

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

import argparse
import sys
from pathlib import Path

from ..config import select_ensemble
from .args import add_config_args, add_gpus_arg, config_from_args, new_path, path

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="bias-corrected ML or control-variate estimates (the ensemble's estimator)")
    add_config_args(p)
    add_gpus_arg(p)
    p.add_argument("--out", type=new_path, required=True, help="JSON to write")
    p.add_argument("--obs", type=path, nargs="*", default=[], help="observable stores (cheap features)")
    p.add_argument("--expensive-obs", type=path, nargs="*", default=[], help="stores of `lqcdml measure --expensive`")
    p.add_argument(
        "--store", type=path, nargs="*", default=[], help="ensemble stores (control variates read the fields)"
    )
    p.set_defaults(run=run)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..driver.estimate import estimate

    cfg = config_from_args(args)
    name, _ = select_ensemble(cfg, args.ensemble)
    result = estimate(
        cfg,
        name,
        Path(args.out),
        [Path(p) for p in args.obs],
        [Path(p) for p in args.expensive_obs],
        [Path(p) for p in args.store],
        _log,
    )
    print(f"{result['kind']} estimates of {name} -> {args.out}")
    return 0
