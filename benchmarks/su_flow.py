"""SU(N) flows: closed-form eigenphases, single-matrix phase flows, lattice ``su_flow`` rates.

Three parts (``--parts``), in one process on ``--threads`` torch threads; prints JSON with the
machine's load average before and after (and each finished case as one line on stderr).

``eigenphases``: ``su3_phases`` / ``su2_angle`` (``lattice.spectral``, closed form) against
``torch.linalg.eigvals`` on ``--matrices`` Haar-random matrices, in complex128 and complex64,
beside one matrix product and the three products of a plaquette (``a b c^dag d^dag``) on as many
matrices (the yardstick): the median of ``--repeats`` timings each, the calls interleaved
within a repeat. Accuracy: the largest distance of a closed-form eigenvalue ``e^{i theta}`` from
the nearest eigenvalue of a complex128 ``eigvals`` of the same matrix (for complex64 also that
of complex64 ``eigvals``).

``single``: flows of one matrix, Haar prior pushed through the phase flows of
``nn.su_phase_flows`` by ``nn.su_spectral_maps``, trained by the reverse KL for ``--steps``
Adam steps at batch ``--batch`` on (a) the SU(3) benchmark density
``p(U) ~ exp[(beta/3) sum_n c_n Re tr U^n]``, ``beta = 9``, ``c = (0.17, -0.65, 1.22)`` (a public
flow library reports ESS 0.94 after 200 steps at batch 100; target >= 0.9), with
``SU3PhaseFlow(layers=4, bins=8, hidden=32)``; (b) one plaquette's density
``exp((beta/N) Re tr U)`` for SU(2) (``SU2PhaseFlow(bins=8)``, beta 2, 4, 6) and SU(3) (beta 4, 6,
9); target >= 0.99. Recipes, each from the same initial flow and the same training draws:
``constant`` (Adam at a fixed learning rate, the public library's recipe), ``cosine`` (cosine
decay to 2 % over the steps), ``cosine_path`` (the same with the path gradient: ``log q`` of
the sample evaluated through the inverse map with the parameters held fixed, so the gradient
runs along the samples' paths only and vanishes where ``q = p``). Learning rates: ``--lr3``
for SU(3) (networks), ``--lr2`` for SU(2) (its 25 free spline parameters: Adam moves each by
about the learning rate per step, and the beta = 6 spline needs logits several units apart).
Reported per seed: the ESS ``(sum w)^2 / (N sum w^2)`` on ``--samples`` fresh samples with its
delta-method standard error, the training wall seconds; beside them the ESS of the Haar prior
alone.

``lattice``: ``nn.su_flow(shape, n, --layers, --hidden, --bins)`` with the Wilson action: training
steps per second (``train.FlowTrainer``, reverse KL, batch ``--lattice-batch``) and sampling
configurations per second (``FlowModel.sample``: draw, forward pass and log density, no
gradient) for 2D SU(2) and SU(3) at ``L = 8`` and 4D SU(3) on ``4^4``, float32 and float64
interleaved (rounds of one training step and one sampling batch per dtype, after a warm-up
step of each, at least two rounds and ``--lattice-seconds`` timed per dtype). A shape ``su_flow`` rejects with
``ValueError`` is reported as ``{"status": "unsupported: <message>"}``, one whose construction
fails otherwise as ``{"status": "error: <type>: <message>"}``.

    python benchmarks/su_flow.py                                    # all parts, 2 threads
    python benchmarks/su_flow.py --parts eigenphases --threads 1
    python benchmarks/su_flow.py --parts single --seeds 0 1 2 3 4 --recipes constant cosine
    python benchmarks/su_flow.py --parts lattice --lattice-seconds 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.spectral import su2_angle, su3_phases
from lqcdml.nn import su_flow
from lqcdml.nn.prior import HaarPrior, cast_precision
from lqcdml.nn.su_phase_flows import SU2PhaseFlow, SU3PhaseFlow
from lqcdml.nn.su_spectral_maps import su2_spectral_map, su3_spectral_map
from lqcdml.theories import WilsonGaugeAction
from lqcdml.train import FlowTrainer

PARTS = ("eigenphases", "single", "lattice")
RECIPES = ("constant", "cosine", "cosine_path")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
BENCH_BETA, BENCH_C = 9.0, (0.17, -0.65, 1.22)
PLAQUETTE_BETAS = {2: (2.0, 4.0, 6.0), 3: (4.0, 6.0, 9.0)}
TARGETS = {"benchmark": 0.9, "plaquette": 0.99}
LATTICES = ((2, (8, 8), 2.0), (3, (8, 8), 4.0), (3, (4, 4, 4, 4), 5.5))  # (N, shape, beta)
MIN_LR_RATIO = 0.02


def progress(entry: dict) -> None:
    """One line per finished case on stderr (the JSON goes to stdout at the end)."""
    print(json.dumps(entry), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- eigenphases


def _median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall milliseconds of each call, after one warm-up call each; the calls take turns."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(1e3 * (time.perf_counter() - t0))
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def _max_distance(lam: torch.Tensor, ref: torch.Tensor) -> float:
    """``max_k min_j |lam_k - ref_j|`` over all matrices (eigenvalues ``[M, N]`` each)."""
    d = (lam.to(torch.complex128)[..., :, None] - ref.to(torch.complex128)[..., None, :]).abs()
    return float(d.min(-1).values.max())


def eigenphases(matrices: int, repeats: int, seed: int) -> dict:
    results = []
    for cdtype in (torch.complex128, torch.complex64):
        u3 = SU(3).haar(make_generators(seed, 1), (4, matrices))[0]
        u2 = SU(2).haar(make_generators(seed + 1, 1), (matrices,))[0]
        a, b, c, d = (x.to(cdtype) for x in u3)  # complex128 draws rounded: the same matrices
        v2 = u2.to(cdtype)
        ms = _median_ms(
            {
                "su3_phases": lambda: su3_phases(a),
                "su3_eigvals": lambda: torch.linalg.eigvals(a),
                "su2_angle": lambda: su2_angle(v2),
                "su2_eigvals": lambda: torch.linalg.eigvals(v2),
                "su3_product": lambda: a @ b,
                "su3_plaquette": lambda: a @ b @ c.mH @ d.mH,
            },
            repeats,
        )
        ref3, ref2 = torch.linalg.eigvals(u3[0]), torch.linalg.eigvals(u2)
        theta2 = su2_angle(v2).to(torch.float64)
        entry = {
            "dtype": str(cdtype).removeprefix("torch."),
            "ms": ms,
            "eigvals_over_closed_form": {
                "su3": round(ms["su3_eigvals"] / ms["su3_phases"], 2),
                "su2": round(ms["su2_eigvals"] / ms["su2_angle"], 2),
            },
            "max_deviation_closed_form": {
                "su3": _max_distance(torch.exp(1j * su3_phases(a).to(torch.float64)), ref3),
                "su2": _max_distance(torch.exp(1j * torch.stack([theta2, -theta2], -1)), ref2),
            },
        }
        if cdtype != torch.complex128:
            entry["max_deviation_eigvals"] = {
                "su3": _max_distance(torch.linalg.eigvals(a), ref3),
                "su2": _max_distance(torch.linalg.eigvals(v2), ref2),
            }
        results.append(entry)
        progress(entry)
    return {"matrices": matrices, "repeats": repeats, "results": results}


# ---------------------------------------------------------------------------- single matrix


def _re_trace(u: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(u, dim1=-2, dim2=-1).sum(-1).real


def benchmark_log_p(u: torch.Tensor) -> torch.Tensor:
    """``(beta/3) sum_n c_n Re tr U^n`` (unnormalised)."""
    out, power = torch.zeros_like(_re_trace(u)), u
    for k, ck in enumerate(BENCH_C, 1):
        if k > 1:
            power = power @ u
        out = out + ck * _re_trace(power)
    return BENCH_BETA / 3 * out


def plaquette_log_p(n: int, beta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda u: (beta / n) * _re_trace(u)


def ess_and_error(log_w: torch.Tensor) -> tuple[float, float]:
    """``(sum w)^2 / (N sum w^2)`` and its delta-method standard error (``a^2 / b`` with
    ``a``, ``b`` the means of ``w`` and ``w^2``)."""
    w = torch.exp(log_w - log_w.max()).double()
    a, b = w.mean(), (w * w).mean()
    ess = a * a / b
    influence = (2 * a / b) * (w - a) - (a * a / (b * b)) * (w * w - b)
    return float(ess), float(influence.std() / math.sqrt(len(w)))


def train_phase_flow(
    n: int,
    log_p: Callable[[torch.Tensor], torch.Tensor],
    recipe: str,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    dtype: torch.dtype,
) -> tuple[torch.nn.Module, float]:
    """A phase flow of SU(``n``) trained on ``log_p`` by the reverse KL; ``(flow, seconds)``.
    The initial flow (``torch.manual_seed(seed)``) and the training draws depend on ``seed``
    only, not on the recipe."""
    torch.manual_seed(seed)
    flow = SU3PhaseFlow(layers=4, bins=8, hidden=32, dtype=dtype) if n == 3 else SU2PhaseFlow(bins=8, dtype=dtype)
    spectral = su3_spectral_map if n == 3 else su2_spectral_map
    prior = cast_precision(HaarPrior((n, n)), dtype)
    gen = torch.Generator().manual_seed(seed)
    params = list(flow.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = None
    if recipe != "constant":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * MIN_LR_RATIO)
    t0 = time.perf_counter()
    for _ in range(steps):
        v, log_det = spectral(prior.sample(batch, gen), flow)  # log q(V) = log Haar - log_det = -log_det
        if recipe == "cosine_path":
            for p in params:
                p.requires_grad_(False)
            _, log_q = spectral(v, flow.inverse)  # log q(V) with the parameters held fixed
            for p in params:
                p.requires_grad_(True)
        else:
            log_q = -log_det
        loss = (log_q - log_p(v)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return flow, time.perf_counter() - t0


@torch.no_grad()
def fresh_log_weights(
    n: int, flow: torch.nn.Module | None, log_p: Callable[[torch.Tensor], torch.Tensor], samples: int, seed: int
) -> torch.Tensor:
    """``log p - log q`` (unnormalised) of ``samples`` fresh float64 draws (``flow`` ``None``: Haar)."""
    u = HaarPrior((n, n)).double().sample(samples, torch.Generator().manual_seed(seed))
    if flow is None:
        return log_p(u)
    spectral = su3_spectral_map if n == 3 else su2_spectral_map
    v, log_det = spectral(u, flow.double())
    return log_p(v) + log_det


def single(args, dtype: torch.dtype) -> dict:
    densities: list[tuple[str, int, float, Callable]] = [("benchmark", 3, BENCH_BETA, benchmark_log_p)]
    for n in (2, 3):
        densities += [("plaquette", n, beta, plaquette_log_p(n, beta)) for beta in PLAQUETTE_BETAS[n]]
    results = []
    for density, n, beta, log_p in densities:
        eval_seed = 10_000 + args.seed
        haar_ess, haar_se = ess_and_error(fresh_log_weights(n, None, log_p, args.samples, eval_seed))
        lr = args.lr3 if n == 3 else args.lr2
        for recipe in args.recipes:
            if recipe == "constant" and density != "benchmark":
                continue
            ess, se, seconds = [], [], []
            for seed in args.seeds:
                flow, sec = train_phase_flow(n, log_p, recipe, args.steps, args.batch, lr, args.seed + seed, dtype)
                e, s = ess_and_error(fresh_log_weights(n, flow, log_p, args.samples, eval_seed + seed))
                ess.append(round(e, 4))
                se.append(round(s, 4))
                seconds.append(round(sec, 2))
            results.append(
                {
                    "density": density,
                    "group": f"SU({n})",
                    "beta": beta,
                    "recipe": recipe,
                    "lr": lr,
                    "ess": ess,
                    "ess_se": se,
                    "ess_mean": round(statistics.mean(ess), 4),
                    "ess_min": min(ess),
                    "target": TARGETS[density],
                    "target_met": min(ess) >= TARGETS[density],
                    "train_seconds": seconds,
                    "haar_ess": round(haar_ess, 4),
                }
            )
            progress(results[-1])
    return {
        "steps": args.steps,
        "batch": args.batch,
        "samples": args.samples,
        "seeds": [args.seed + s for s in args.seeds],
        "dtype": str(dtype).removeprefix("torch."),
        "results": results,
    }


# ---------------------------------------------------------------------------- lattice


def lattice(args) -> dict:
    results = []
    for n, shape, beta in LATTICES:
        entry: dict = {"group": f"SU({n})", "shape": list(shape), "beta": beta}
        try:
            models = {name: su_flow(shape, n, args.layers, args.hidden, args.bins) for name in DTYPES}
        except ValueError as exc:
            results.append({**entry, "status": f"unsupported: {exc}"})
            progress(results[-1])
            continue
        except Exception as exc:  # a failure of the model code: said, and the other cases still run
            results.append({**entry, "status": f"error: {type(exc).__name__}: {exc}"})
            progress(results[-1])
            continue
        action = WilsonGaugeAction(beta, SU(n)).action
        trainers, gens = {}, {}
        for name, dtype in DTYPES.items():
            cast_precision(models[name], dtype)
            trainers[name] = FlowTrainer(models[name], action, steps=10**6, batch=args.lattice_batch, seed=args.seed)
            gens[name] = torch.Generator().manual_seed(args.seed)
        train_s = dict.fromkeys(DTYPES, 0.0)
        sample_s = dict.fromkeys(DTYPES, 0.0)
        rounds = 0

        def sample(name: str) -> None:
            with torch.no_grad():
                models[name].sample(args.lattice_batch, gens[name])

        for name in DTYPES:  # warm-up
            trainers[name].step()
            sample(name)
        while rounds < 2 or min(train_s[k] + sample_s[k] for k in DTYPES) < args.lattice_seconds:
            for name in DTYPES:
                t0 = time.perf_counter()
                trainers[name].step()
                t1 = time.perf_counter()
                sample(name)
                train_s[name] += t1 - t0
                sample_s[name] += time.perf_counter() - t1
            rounds += 1
        for name in DTYPES:
            results.append(
                {
                    **entry,
                    "dtype": name,
                    "status": "ok",
                    "rounds": rounds,
                    "train_steps_per_second": round(rounds / train_s[name], 3),
                    "sample_configs_per_second": round(rounds * args.lattice_batch / sample_s[name], 2),
                }
            )
            progress(results[-1])
    return {
        "layers": args.layers,
        "hidden": args.hidden,
        "bins": args.bins,
        "batch": args.lattice_batch,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matrices", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="offsets of --seed, one flow each")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10_000, help="fresh samples for each ESS")
    parser.add_argument("--lr3", type=float, default=1e-2, help="Adam learning rate, SU(3) phase flows")
    parser.add_argument("--lr2", type=float, default=5e-2, help="Adam learning rate, SU(2) phase flows")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float64", help="single-matrix training dtype")
    parser.add_argument("--layers", type=int, default=16, help="su_flow coupling layers")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--lattice-batch", type=int, default=32)
    parser.add_argument("--lattice-seconds", type=float, default=10.0, help="least timed seconds per dtype and case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
    }
    t0 = time.perf_counter()
    if "eigenphases" in args.parts:
        out["eigenphases"] = eigenphases(args.matrices, args.repeats, args.seed)
    if "single" in args.parts:
        out["single"] = single(args, DTYPES[args.dtype])
    if "lattice" in args.parts:
        out["lattice"] = lattice(args)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
