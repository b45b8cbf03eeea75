"""Shared timing tools of the benchmarks: timers, the copy bandwidth, the kernel switch."""

from __future__ import annotations

import contextlib
import os
import time

import torch


def timeit(fn, repeat: int, warmup: int = 1) -> float:
    """Mean seconds of ``fn()`` over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def best_of(fn, repeat: int) -> float:
    """The least seconds of ``fn()`` over ``repeat`` calls (no warm-up)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_bandwidth(n_bytes: int = 512 * 2**20, repeat: int = 5) -> float:
    """GB/s of ``y.copy_(x)`` on a large float64 array (read + write counted)."""
    x = torch.ones(n_bytes // 8, dtype=torch.float64)
    y = torch.empty_like(x)
    seconds = timeit(lambda: y.copy_(x), repeat)
    return 2 * n_bytes / seconds / 1e9


def dgemm_gflops(n: int = 1024, repeat: int = 5) -> float:
    """GFLOP/s of a large float64 matrix product (MKL): the machine's practical peak."""
    a = torch.randn(n, n, dtype=torch.float64)
    seconds = timeit(lambda: a @ a, repeat)
    return 2 * n**3 / seconds / 1e9


@contextlib.contextmanager
def kernels(mode: str):
    """Run the enclosed code with ``LQCDML_KERNELS = mode`` (``torch`` or ``extension``)."""
    old = os.environ.get("LQCDML_KERNELS")
    os.environ["LQCDML_KERNELS"] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LQCDML_KERNELS", None)
        else:
            os.environ["LQCDML_KERNELS"] = old
