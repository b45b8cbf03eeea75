"""Flow training benchmark at the flow tutorial's set-up (docs/reference.md): 2D phi^4, L = 8,
m^2 = -4, lambda = 8; 16 affine couplings, Conv(1->8)-Conv(8->8)-Conv(8->2), batch 64.

Trains for a wall-time budget (``--budget`` seconds, the loop stops at the first step past
it) and reports the training steps per second (steps / training seconds), then the ESS
``(sum w)^2 / (N sum w^2)`` and the independence-Metropolis acceptance on ``--samples``
fresh samples, ``log w = -S - log q`` in the training dtype. The learning-rate schedule is
planned for the steps the budget allows at the rate of a short probe run before it.
Prints JSON.

``--peer``: the tutorial's code (a transcription kept for benchmarking only,
``../shared/bench/peer_flow_baseline.py`` from the repository) runs in a second process
at the same time, with the same dtype, threads, batch and budget; both train over the
same wall-clock window (ours starts when the peer starts its training loop). The peer's
ESS is on its fresh samples (``--samples`` rounded up to batches of 1024) and its
acceptance is that of its Metropolis chain of ``--samples`` steps (the first accepted).
The JSON holds both results and the ratios ours / peer; if the peer is absent it says so.

    python benchmarks/flow_training.py                      # 294 s budget, 2 threads
    python benchmarks/flow_training.py --budget 60 --dtype float64
    python benchmarks/flow_training.py --peer --budget 120  # side by side, 1 thread each
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from lqcdml.nn import phi4_flow
from lqcdml.theories import Phi4Action
from lqcdml.train import FlowTrainer, evaluate_flow

PEER = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "peer_flow_baseline.py"
SETUP = "phi4 2D L=8 m2=-4 lambda=8, 16 affine layers, hidden [8, 8], kernel 3"


def probe_rate(dtype: torch.dtype, action, batch: int, seconds: float, seed: int) -> float:
    """Training steps per second of a throw-away trainer (after 10 warm-up steps)."""
    probe = FlowTrainer(phi4_flow((8, 8)).to(dtype), action, steps=1000, batch=batch, seed=seed)
    for _ in range(10):
        probe.step()
    n, t0 = 0, time.perf_counter()
    while n < 20 or time.perf_counter() - t0 < seconds:
        probe.step()
        n += 1
    return n / (time.perf_counter() - t0)


def start_peer(args, log_path: Path, out_path: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(PEER),
        "--threads",
        str(args.threads),
        "--dtype",
        args.dtype,
        "--batch-size",
        str(args.batch),
        "--lr",
        str(args.peer_lr),
        "--steps",
        str(10**9),
        "--time-budget",
        str(args.budget),
        "--ess-samples",
        str(args.samples),
        "--ensemble-size",
        str(args.samples),
        "--n-therm",
        str(min(512, args.samples // 4)),
        "--seed",
        str(args.seed),
        "--out",
        str(out_path),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    log = open(log_path, "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for_training_start(proc: subprocess.Popen, log_path: Path, timeout: float = 300.0) -> None:
    """Until the peer prints its set-up line (it starts training right after)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the peer exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        if "| params" in log_path.read_text():
            return
        time.sleep(0.01)
    raise RuntimeError("the peer did not start training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="default: 1 with --peer, else 2")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="default: FlowTrainer's")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default=None, help="default: FlowTrainer's")
    parser.add_argument("--budget", type=float, default=2500 / 8.5, help="training wall time in seconds")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer", action="store_true", help="run the tutorial's code side by side")
    parser.add_argument("--peer-lr", type=float, default=1e-3, help="the peer's learning rate (the tutorial's)")
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 1 if args.peer else 2
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    action = Phi4Action(m2=-4.0, lam=8.0).action
    options = {k: v for k, v in (("lr", args.lr), ("schedule", args.schedule)) if v is not None}

    rate = probe_rate(dtype, action, args.batch, 3.0, args.seed)
    planned = max(1, int(args.budget * rate))
    torch.manual_seed(args.seed)
    trainer = FlowTrainer(
        phi4_flow((8, 8)).to(dtype), action, steps=planned, batch=args.batch, seed=args.seed, **options
    )

    peer = None
    if args.peer and PEER.is_file():
        tmp = Path(tempfile.mkdtemp(prefix="peer_flow_"))
        log_path, out_path = tmp / "peer.log", tmp / "peer.json"
        peer = start_peer(args, log_path, out_path)
        wait_for_training_start(peer, log_path)

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.budget:
        trainer.step()
    seconds = time.perf_counter() - t0
    quality = evaluate_flow(trainer.model, action, args.samples, args.seed + 1, dtype=None)
    ours = {
        "steps_per_second": trainer.step_count / seconds,
        "trained_steps": trainer.step_count,
        "train_seconds": seconds,
        "planned_steps": planned,
        "probe_steps_per_second": rate,
        "lr": trainer.optimizer.param_groups[0]["initial_lr"],
        "schedule": trainer.schedule,
        "final_loss": sum(trainer.history["loss"][-100:]) / min(100, trainer.step_count),
        "fresh_ess": quality["ess"],
        "fresh_acceptance": quality["acceptance"],
        "fresh_samples": quality["n_samples"],
    }
    result = {
        "setup": SETUP,
        "dtype": args.dtype,
        "threads": args.threads,
        "batch": args.batch,
        "budget_seconds": args.budget,
        "lqcdml": ours,
    }
    if args.peer and peer is None:
        result["peer"] = f"absent: {PEER} not found"
    elif peer is not None:
        peer.wait()
        if peer.returncode != 0:
            raise RuntimeError(f"the peer exited with {peer.returncode}: {log_path.read_text()[-2000:]}")
        p = json.loads(out_path.read_text())
        result["peer"] = {
            "source": p["source"],
            "steps_per_second": p["train_steps_per_s"],
            "trained_steps": p["train_steps"],
            "train_seconds": p["train_wall_s"],
            "lr": p["lr"],
            "schedule": "constant",
            "final_loss": p["final_loss_avg_last100"],
            "fresh_ess": p["ess_per_sample_large_batch"],
            "fresh_ess_samples": p["ess_large_batch_n"],
            "fresh_acceptance": p["mh_acceptance"],
            "fresh_acceptance_chain": p["mh_chain_length"],
        }
        result["ratio"] = {
            k: ours[k] / result["peer"][k] if result["peer"][k] else None
            for k in ("steps_per_second", "fresh_ess", "fresh_acceptance")
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
