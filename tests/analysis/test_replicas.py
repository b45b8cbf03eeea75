"""The replica test: the spread of replica means against the Gamma-method error, which sees
only the fluctuations within each chain (a stuck chain has error zero)."""

import json

import numpy as np
import pytest
import xarray as xr

from lqcdml.analysis.replicas import P_MIN, replica_test
from lqcdml.analysis.summary import replica_lines, summarize_ensemble

THEORY = {"name": "su", "n_colors": 2, "lattice": [4, 4, 4, 4], "beta": 2.0, "fermion": "none"}


def _series(x):
    return xr.DataArray(x, dims=("config", "replica"), coords={"config": np.arange(1, x.shape[0] + 1)})


def test_independent_replicas_in_equilibrium_give_chi2_per_dof_one():
    rng = np.random.default_rng(3)
    ratios = [(t := replica_test(_series(rng.normal(size=(200, 16))))).chi2 / t.dof for _ in range(50)]
    # chi2/dof of 15 dof has width sqrt(2/15) = 0.37; the mean of 50 has width 0.05 (+ the
    # error's own scatter): 0.2 is four of those
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.2)
    assert max(ratios) < 4.0  # p(chi2_15 > 60) ~ 1e-7, below P_MIN: no set is flagged


def test_stuck_chains_are_flagged_with_the_error_their_spread_implies():
    rng = np.random.default_rng(0)
    starts = rng.normal(size=16)
    stuck = replica_test(_series(np.tile(starts, (6, 1))))  # every proposal rejected
    assert stuck.flagged and stuck.chi2 == np.inf and stuck.dof == 15
    # equal lengths: the spread implies std(m_r) / sqrt(R)
    assert stuck.error_between == pytest.approx(np.std(starts, ddof=1) / 4, rel=1e-12)


def test_identical_frozen_replicas_and_single_replicas_are_not_flagged():
    assert not replica_test(_series(np.full((10, 4), 0.5))).flagged
    assert replica_test(_series(np.random.default_rng(1).normal(size=(50, 1)))) is None


def test_replicas_trapped_in_two_sectors_are_flagged():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 8))
    x[:, :4] += 1.0  # half the chains in another sector: 1 is 14 errors of a 400-config replica mean
    assert replica_test(_series(x)).p < P_MIN


def test_unequal_replicas_weight_their_means_by_length():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6))
    x[200:, :3] = np.nan  # three chains cut short
    t = replica_test(_series(x))
    n = np.array([200] * 3 + [300] * 3)
    m = np.nanmean(x, axis=0)
    mean = (n * m).sum() / n.sum()
    assert t.error_between == pytest.approx(np.sqrt((n * (m - mean) ** 2).sum() / (5 * n.sum())), rel=1e-12)
    assert not t.flagged


def test_the_summary_marks_a_stuck_ensemble():
    rng = np.random.default_rng(5)
    ds = xr.Dataset(
        {
            "plaquette": _series(np.tile(0.7 + 0.01 * rng.normal(size=8), (6, 1))),
            "acceptance": _series(np.zeros((6, 8))),
        },
        attrs={"theory": json.dumps(THEORY), "n_therm_configs": 0},
    )
    rows = {r.observable: r for r in summarize_ensemble("stuck", ds)}
    # the Gamma method sees no fluctuation at all; the stated error is the chains' spread
    assert rows["plaquette"].replicas_disagree and rows["plaquette"].error == rows["plaquette"].replica_error > 1e-3
    assert not rows["acceptance"].replicas_disagree  # zero everywhere: the replicas agree
    lines = replica_lines(rows.values())
    assert len(lines) == 1 and "`stuck` plaquette" in lines[0] and "not a final number" in lines[0]


def test_comparisons_use_the_error_the_replica_spread_implies():
    from lqcdml.analysis.summary import Row

    agree = Row(
        "a",
        "plaquette",
        0.70,
        1e-4,
        1.0,
        100,
        32,
        reference=0.7005,
        replica_chi2=30.0,
        replica_dof=31,
        replica_error=1.1e-4,
    )
    stuck = Row(
        "a",
        "plaquette",
        0.70,
        1e-4,
        1.0,
        100,
        32,
        reference=0.7005,
        replica_chi2=31 * 7.4,
        replica_dof=31,
        replica_error=2.7e-4,
    )
    assert agree.comparison_error == 1e-4 and agree.pull == pytest.approx(-5.0)  # a fluctuation: Gamma error
    assert stuck.replicas_disagree and stuck.comparison_error == 2.7e-4
    assert stuck.pull == pytest.approx(-5e-4 / 2.7e-4)


def _offset_chains(rng, n_chains: int, n_configs: int = 100, offset: float = 0.3) -> xr.Dataset:
    """Chains about 0 with a mode slower than any of them (a constant offset per chain): the
    Gamma method, which subtracts each chain's own mean, cannot see it."""
    x = offset * rng.normal(size=(1, n_chains)) + rng.normal(size=(n_configs, n_chains))
    return xr.Dataset({"plaquette": _series(x)}, attrs={"theory": json.dumps(THEORY), "n_therm_configs": 0})


def test_with_eight_or_more_chains_the_error_takes_in_a_mode_slower_than_the_chains():
    rng = np.random.default_rng(6)
    pulls = []
    for _ in range(40):
        (row,) = [r for r in summarize_ensemble("slow", _offset_chains(rng, 16)) if r.observable == "plaquette"]
        assert row.error == max(row.replica_error, row.error) and row.error >= row.replica_error
        pulls.append(row.value / row.error)
    # the true mean is 0; the spread error of 16 chains makes the pull Student-t with 15 dof,
    # |pull| < 2 with probability 0.936 (37.4 of 40, sd 1.5). The Gamma error alone,
    # sqrt(1 + 100 * 0.09) ~ 3.2x too small, gives 0.47 (19 of 40).
    assert np.sum(np.abs(pulls) < 2) >= 32
    # fewer chains: their spread is too uncertain to state; the Gamma-method error stays
    (few,) = [
        r
        for r in summarize_ensemble("slow", _offset_chains(np.random.default_rng(7), 4))
        if r.observable == "plaquette"
    ]
    assert few.error < few.replica_error
