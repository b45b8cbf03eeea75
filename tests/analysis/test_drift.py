"""The drift test of the kept chain, pulls of rounding noise, references matched on every
parameter, and the fixed order of summary rows."""

import numpy as np
import pytest
import xarray as xr

from lqcdml.analysis.drift import Z_MAX, drift_test
from lqcdml.analysis.errors import blocked_estimate, estimate_dataarray
from lqcdml.analysis.references import reference_value
from lqcdml.analysis.summary import Row, _order


def _ar1(n, n_rep, tau, seed, trend=0.0):
    """AR(1) chains with integrated autocorrelation time ~tau, plus a linear trend."""
    rng = np.random.default_rng(seed)
    phi = (2 * tau - 1) / (2 * tau + 1)
    x = np.zeros((n, n_rep))
    x[0] = rng.normal(size=n_rep)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * rng.normal(size=n_rep)
    x += trend * np.linspace(1, 0, n)[:, None]
    return xr.DataArray(x, dims=("config", "replica"), coords={"config": np.arange(1, n + 1)})


def test_a_chain_in_equilibrium_passes_and_z_is_standard_normal():
    zs = [drift_test(_ar1(600, 2, 4.0, seed)).z for seed in range(40)]
    assert np.mean(np.abs(np.array(zs)) > Z_MAX) <= 0.05  # at most 2 of 40 (3 sigma: ~0.1 expected)
    assert 0.6 < np.std(zs) < 1.5  # autocorrelation-aware errors: z has unit width
    assert drift_test(_ar1(600, 2, 4.0, 1)).needed_cut == 0


def test_many_chains_shorter_than_a_slow_mode_give_no_false_drift():
    """16 chains of 160 configurations with tau_int ~ 40 (the seed row's Polyakov loop: ~14 in
    120): the Gamma method's window cuts the slow tail off and, alone, made z 2.4 wide (a
    quarter of such chains flagged); with the chains' spread in the error z stays standard."""
    zs = np.array([drift_test(_ar1(160, 16, 40.0, seed)).z for seed in range(30)])
    assert np.sum(np.abs(zs) > Z_MAX) <= 1 and np.std(zs) < 1.3


def test_a_thermalising_chain_is_flagged_with_the_cut_it_needs():
    x = _ar1(600, 2, 3.0, 7)
    relax = 6.0 * np.exp(-np.arange(600) / 40.0)  # an exponential approach to equilibrium
    drifting = x + relax[:, None]
    d = drift_test(drifting)
    assert d.flagged and d.z > Z_MAX
    assert d.needed_cut is not None and 0 < d.needed_cut <= 300
    assert not drift_test(drifting.isel(config=slice(d.needed_cut, None))).flagged
    # a steady trend over the whole chain has no cut that helps
    trend = drift_test(_ar1(600, 2, 3.0, 8, trend=3.0))
    assert trend.flagged and trend.needed_cut is None


def test_a_slow_mode_in_the_middle_of_the_kept_chain_is_flagged_by_the_windows():
    """An approach to equilibrium that overshoots and comes back within the kept chain (all
    16 chains together, as a slow mode of a hot start does): the first quarter and the last
    half agree, so the old test (z alone) passes; the window means do not."""
    n = 500
    t = np.arange(n)
    bump = 1.0 * np.exp(-(((t - 0.375 * n) / (0.06 * n)) ** 2))
    flagged = 0
    for seed in range(5, 10):
        d = drift_test(_ar1(n, 16, 3.0, seed) + bump[:, None])
        assert abs(d.z) <= Z_MAX  # what the first-quarter test alone saw: no drift
        flagged += d.flagged and d.p_windows < 1e-3
    assert flagged >= 4
    quiet = [drift_test(_ar1(n, 16, 3.0, 100 + seed)) for seed in range(20)]
    assert sum(d.flagged for d in quiet) <= 1  # equilibrium chains pass (~3 sigma on each part)


def test_too_short_a_chain_is_not_judged():
    assert drift_test(_ar1(20, 1, 2.0, 0)) is None


def test_no_pull_for_rounding_noise():
    noise = Row("e", "polyakov_loop_im", 1e-17, 5e-18, 0.5, 100, 1, 0.0, 0.0, "exact")
    assert noise.pull is None
    real = Row("e", "polyakov_loop_im", 1e-3, 5e-4, 0.5, 100, 1, 0.0, 0.0, "exact")
    assert real.pull == pytest.approx(2.0)


def test_the_published_slhmc_reference_needs_its_flavour_content():
    theory = {
        "name": "su",
        "n_colors": 2,
        "lattice": [4, 4, 4, 4],
        "beta": 2.7,
        "fermion": "staggered",
        "fermion_mass": 0.3,
        "antiperiodic": True,
        "n_flavours": 4,
    }
    assert reference_value(theory, "chiral_condensate")[0] == 0.4245
    assert reference_value({**theory, "n_flavours": 2}, "chiral_condensate") is None
    assert reference_value({**theory, "beta": 2.45}, "chiral_condensate") is None


def test_summary_rows_have_a_fixed_order():
    labels = [
        "plaquette",
        "correlator[t=10]",
        "correlator[t=2]",
        "wilson_loop[loop=2x2]",
        "acceptance",
        "correlator[t=1]",
        "wilson_loop[loop=1x1]",
    ]
    rows = [Row(e, o, 0, 0, 0, 1, 1) for e in ("b", "a") for o in labels]
    once = [(r.ensemble, r.observable) for r in sorted(rows, key=_order)]
    again = [(r.ensemble, r.observable) for r in sorted(reversed(rows), key=_order)]
    assert once == again
    assert once[:5] == [
        ("a", "acceptance"),
        ("a", "correlator[t=1]"),
        ("a", "correlator[t=2]"),
        ("a", "correlator[t=10]"),
        ("a", "plaquette"),
    ]


def test_the_blocked_error_of_a_heavy_tailed_mean_covers_the_truth():
    """exp(-dH) of an exact sampler: dH ~ N(mu, 2 mu) gives <exp(-dH)> = 1 exactly, with a
    log-normal tail. Over many independent runs the blocked error has the coverage a 1-sigma
    error must have (about 68 %), and agrees with the spread of the run means."""
    rng = np.random.default_rng(11)
    mu = 0.9  # acceptance about 0.5, as SLHMC without a network at the paper point
    pulls, errors, means = [], [], []
    for _ in range(200):
        dh = rng.normal(mu, np.sqrt(2 * mu), size=(300, 16))
        da = xr.DataArray(np.exp(-dh), dims=("config", "replica"))
        est = blocked_estimate(da)
        pulls.append((est.value - 1.0) / est.error)
        errors.append(est.error)
        means.append(est.value)
    assert 0.6 < np.mean(np.abs(pulls) < 1) < 0.76
    assert np.std(means) == pytest.approx(np.median(errors), rel=0.2)
    one = xr.DataArray(np.exp(-rng.normal(mu, np.sqrt(2 * mu), size=(300, 16))), dims=("config", "replica"))
    gamma = estimate_dataarray(one.assign_coords(config=np.arange(1, 301), replica=np.arange(1, 17)), "e")
    assert blocked_estimate(one).error == pytest.approx(gamma.error, rel=0.3)  # no autocorrelation: both agree
