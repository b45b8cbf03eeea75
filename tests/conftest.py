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


#: the files that take longest (``make test PYTEST_ARGS=--durations=0``), first: pytest-xdist hands
#: whole files to the workers in collection order (``--dist loadfile``), so a long file collected
#: last (tests/workflow sorts last) leaves one worker running it alone at the end
SLOW_FILES_FIRST = (
    "tests/workflow/test_papers.py",
    "tests/workflow/test_cluster.py",
    "tests/workflow/test_snakemake.py",
    "tests/cli/test_estimate_cli.py",
    "tests/cli/test_slhmc_cli.py",
)


def pytest_collection_modifyitems(config, items):
    """Run ``SLOW_FILES_FIRST`` first, every file's tests in their own order (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_terminal_summary(terminalreporter):
    if HOSTILE_CASES:
        terminalreporter.write_sep("-", "hostile-input cases tried (hypothesis)")
        for name, n in sorted(HOSTILE_CASES.items()):
            terminalreporter.write_line(f"{name}: {n} cases")
