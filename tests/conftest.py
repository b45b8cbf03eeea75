"""Shared fixtures: thread count and the groups under test."""

from __future__ import annotations

import os

import pytest
import torch

from lqcdml.lattice import SU, U1, make_generators

# one thread per pytest-xdist worker (make test runs one worker per core), else two
THREADS = int(os.environ.get("LQCDML_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"))
torch.set_num_threads(THREADS)


@pytest.fixture
def gens():
    """Two per-chain generators with a fixed seed."""
    return make_generators(1234, 2)


GAUGE_CASES = [
    pytest.param(U1(), (2, 4, 6), id="u1-2d"),
    pytest.param(U1(), (4, 3, 4, 3, 4), id="u1-4d"),
    pytest.param(SU(2), (4, 3, 4, 3, 4), id="su2-4d"),
    pytest.param(SU(3), (4, 4, 3, 3, 4), id="su3-4d"),
    pytest.param(SU(3), (3, 4, 3, 5), id="su3-3d"),
]


# --- hostile-input case counts (property-based tests report how much they tried) -------
HOSTILE_CASES: dict[str, int] = {}


def count_case(name: str) -> None:
    HOSTILE_CASES[name] = HOSTILE_CASES.get(name, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if HOSTILE_CASES:
        terminalreporter.write_sep("-", "hostile-input cases tried (hypothesis)")
        for name, n in sorted(HOSTILE_CASES.items()):
            terminalreporter.write_line(f"{name}: {n} cases")
