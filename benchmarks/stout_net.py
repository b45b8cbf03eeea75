"""The gauge-covariant networks on the compiled kernels against the torch path, SU(2) and
SU(3); prints one JSON document.

One forward pass and its vector-Jacobian product (what every SLHMC fermion force adds) of the
``slhmc_light`` net (2 stout layers, plaquette and Polyakov-line staples, weights 0.02) and of
one CASK block (the same loops, rectangles up to 1 x 2) on ``L^4`` links, three ways,
interleaved in rounds so that a busy machine slows all alike:

- ``kernels``: every kernel on (staples, stout updates and CASK's rotation, small products);
- ``torch_update``: the same, but the stout updates and the rotation by the torch reference
  (``SU(N).expi`` through autograd): what the update kernels save;
- ``torch``: ``LQCDML_KERNELS=torch``, the reference everywhere.

The minimum over repeats of each round is kept; the JSON gives every round's minimum.

Usage: ``python benchmarks/stout_net.py [--threads 1] [--chains 16] [--extent 4] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
from kernel_timing import best_of, kernels

import lqcdml.nn.cask as cask
import lqcdml.nn.stout as stout
from lqcdml.kernels import matmul
from lqcdml.lattice import SU, make_generators


def torch_update(group, links: torch.Tensor, staple: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """The stout update by the torch reference (``nn.stout.stout_update`` without its kernel)."""
    w = links if target is None else target
    return matmul(group.expi(-group.traceless_hermitian(matmul(links, staple))), w)


def seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    return best_of(fn, repeat)


def case(n: int, kind: str, args) -> dict:
    group = SU(n)
    links = group.haar(make_generators(1, args.chains), (4, *[args.extent] * 4)).contiguous()
    loops = ("plaquette", "polyakov")
    if kind == "stout":
        net = stout.stout_net(group, 4, 2, loops, init=0.02).requires_grad_(False)
    else:
        net = cask.cask_net(group, 4, 1, loops, extent=2, init=0.02).requires_grad_(False)
    cotangent = torch.randn(links.shape, dtype=links.dtype, generator=torch.Generator().manual_seed(2))

    def fwd_vjp():
        u = links.clone().requires_grad_(True)
        return torch.autograd.grad(net(u), u, cotangent)[0]

    kernel_update = stout.stout_update
    rounds: dict[str, list[float]] = {"kernels": [], "torch_update": [], "torch": []}
    for _ in range(args.rounds):
        with kernels("extension"):
            rounds["kernels"].append(seconds(fwd_vjp, args.repeat))
            stout.stout_update = cask.stout_update = torch_update
            try:
                rounds["torch_update"].append(seconds(fwd_vjp, args.repeat))
            finally:
                stout.stout_update = cask.stout_update = kernel_update
        with kernels("torch"):
            rounds["torch"].append(seconds(fwd_vjp, args.repeat))
    best = {k: min(v) for k, v in rounds.items()}
    return {
        "group": f"SU({n})",
        "net": kind,
        "seconds_per_round": rounds,
        "best_seconds": best,
        "update_kernel_speedup": best["torch_update"] / best["kernels"],
        "all_kernels_speedup": best["torch"] / best["kernels"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--extent", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 chains, 1 round of 1")
    args = ap.parse_args()
    if args.quick:
        args.chains, args.rounds, args.repeat = 2, 1, 1
    torch.set_num_threads(args.threads)
    cases = [case(n, kind, args) for kind in ("stout", "cask") for n in (2, 3)]
    print(
        json.dumps(
            {
                "benchmark": "stout_net",
                "machine": platform.machine(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "lattice": [args.extent] * 4,
                "chains": args.chains,
                "nets": {
                    "stout": "2 stout layers, plaquette + Polyakov staples, weights 0.02",
                    "cask": "1 CASK block, plaquette + Polyakov staples, rectangles 1 x 1, 1 x 2, weights 0.02",
                },
                "dtype": "complex128",
                "cases": cases,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
