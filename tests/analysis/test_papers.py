"""The published-comparison table of paper experiments."""

from __future__ import annotations

import csv
import math

import pytest

from lqcdml.analysis.paper_files import paper_names
from lqcdml.analysis.papers import (
    comparison_lines,
    comparison_table,
    paired_loss_difference,
    paper_comparisons,
    paper_of,
    value_error,
    write_comparison_csv,
)
from lqcdml.analysis.summary import Row


@pytest.mark.parametrize(
    "value,error,text",
    [
        (0.701992, 0.0003, "0.70199(30)"),
        (0.4245, 0.0005, "0.42450(50)"),
        (87.46, 2.3, "87.5(23)"),
        (1234.0, 56.0, "1234(56)"),
        (0.5, None, "0.5"),
        (None, None, "not measured"),
        (0.3, float("nan"), "0.3"),
    ],
)
def test_value_error_shows_two_digits_of_the_error(value, error, text):
    assert value_error(value, error) == text


def test_paper_of_knows_each_paper_and_its_reduced_versions():
    assert len(paper_names()) == 8
    for paper in paper_names():
        assert paper_of(paper) == (paper, None)
        assert paper_of(f"{paper}_smoke") == (paper, "smoke")
    assert paper_of("quickstart") is None and paper_of("paper_unknown_smoke") is None


def _row(ens, obs, value, error, tau=1.0, reference=None, reference_error=None, source=""):
    return Row(ens, obs, value, error, tau, 100, 1, reference, reference_error, source)


def test_two_colour_table_doubles_the_polyakov_loop_and_pulls_against_the_published_row():
    rows = [
        _row("nf4", "plaquette", 0.7022, 0.0003),
        _row("nf4", "polyakov_loop_re", 0.415, 0.008),
        _row("nf4", "chiral_condensate", 0.4250, 0.0005),
    ]
    table = {c.quantity: c for c in paper_comparisons("paper_slhmc_hmc", rows)}
    poly = next(c for q, c in table.items() if q.startswith("HMC, Nf = 4") and "Polyakov" in q)
    assert poly.ours == pytest.approx(0.83) and poly.ours_error == pytest.approx(0.016)
    assert poly.pull == pytest.approx((0.83 - 0.82) / math.hypot(0.016, 0.01))
    plaq = next(c for q, c in table.items() if q.startswith("HMC, Nf = 4") and "plaquette" in q)
    assert plaq.pull == pytest.approx((0.7022 - 0.7025) / math.hypot(0.0003, 0.0001))
    nf2 = [c for q, c in table.items() if q.startswith("HMC, Nf = 2")]
    assert len(nf2) == 3 and all(c.ours is None and c.pull is None for c in nf2)  # not measured: no pull


def test_paired_loss_difference_cancels_the_noise_both_networks_share():
    """Two loss histories with a common batch noise (the same batches at every step) and a
    true gap of 0.05 in the second half: the paired difference finds the gap to a few of its
    errors, where the noise alone (sd 1) would hide it in unpaired means (error ~0.1)."""
    import numpy as np

    rng = np.random.default_rng(3)
    steps = np.arange(1, 401)
    shared = rng.normal(0.0, 1.0, steps.size) + 2.0 / steps
    own = rng.normal(0.0, 0.01, steps.size)
    first = {"step": steps.tolist(), "loss": (1.0 + shared).tolist()}
    second = {"step": steps.tolist(), "loss": (1.0 + shared + own - 0.05 * (steps > 200)).tolist()}
    mean, error, lo, hi = paired_loss_difference(first, second)
    assert (lo, hi) == (201, 400)
    assert error == pytest.approx(0.01 / np.sqrt(200), rel=0.5)  # the networks' own noise, not the batches'
    assert abs(mean + 0.05) < 5 * error
    assert paired_loss_difference(first, {**second, "step": (steps + 1).tolist()}) is None  # other steps
    assert paired_loss_difference(first, None) is None
    table = {c.quantity: c for c in paper_comparisons("paper_slhmc", [], histories={"stout": first, "cask": second})}
    row = next(c for q, c in table.items() if q.startswith("training loss, CASK minus covariant net"))
    assert (row.ours, row.ours_error) == (mean, error) and "steps 201-400" in row.quantity


def test_control_variate_table_finds_the_published_runs_and_the_exact_free_value():
    run = {
        "hidden": [],
        "n_train": 10_000,
        "network": "linear",
        "variance_reduction": 80.0,
        "improved": {"value": 0.13781, "error": 0.00002},
    }
    estimates = [{"ensemble": "phi4", "runs": [run]}, {"ensemble": "free", "runs": [run]}]
    theories = {"free": {"name": "phi4", "lattice": [40, 10], "m2": 0.01, "lam": 0.0, "convention": "standard"}}
    table = paper_comparisons("paper_cv_phi4", [], estimates, theories)
    linear = next(c for c in table if "linear g, 10000" in c.quantity)
    assert linear.ours == 80.0 and linear.published == 74.0 and linear.pull is None
    missing = next(c for c in table if "MLP 16" in c.quantity)
    assert missing.ours is None and "not run at this scale" in missing.published_text
    free = next(c for c in table if c.quantity.startswith("free field"))
    assert free.published == pytest.approx(
        0.1378072225, abs=1e-10
    )  # the exact value of docs/reference.md#neural-control-variates


def test_smoke_table_says_it_is_not_the_paper_and_the_csv_matches(tmp_path):
    rows = [_row("hmc_2d", "chi2", 0.745, 0.002), _row("flow_2d", "chi2", 0.742, 0.004)]
    table = comparison_table("paper_flow_phi4_smoke", rows)
    lines = comparison_lines("paper_flow_phi4_smoke", table)
    text = "\n".join(lines)
    assert "**Scale `smoke`**" in text and "| 2D HMC: chi_2 = <M^2> / V | 0.7450(20) | 0.7447(5) | +0.1 |" in text
    write_comparison_csv(tmp_path / "c.csv", table)
    with open(tmp_path / "c.csv") as fh:
        back = list(csv.DictReader(fh))
    assert [r["quantity"] for r in back] == [c.quantity for c in table]


def test_other_experiments_compare_every_row_with_a_reference(tmp_path):
    rows = [
        _row("u1", "plaquette", 0.5, 0.01, reference=0.49, reference_error=0.0, source="exact"),
        _row("u1", "acceptance", 0.9, 0.01),
    ]
    table = comparison_table("quickstart", rows)
    assert comparison_lines("quickstart", table) == []
    write_comparison_csv(tmp_path / "c.csv", table)
    assert [c.quantity for c in table] == ["u1: plaquette"] and table[0].pull == pytest.approx(1.0)


@pytest.mark.parametrize(
    "value,error,text",
    [
        (0.7025, 1e-4, "0.7025(1)"),
        (0.1434576, 8.5e-6, "0.1434576(85)"),
        (0.82, 0.01, "0.82(1)"),
        (0.08691, 9e-5, "0.08691(9)"),
    ],
)
def test_published_values_keep_their_quoted_digits(value, error, text):
    assert value_error(value, error, as_quoted=True) == text


def test_quoted_form_of_an_error_with_many_digits_shows_two():
    assert value_error(0.7447123, 0.00123456, as_quoted=True) == "0.7447(12)"


def test_tiny_and_huge_values_are_shown_with_an_exponent():
    assert value_error(1.49e-33, 2.6e-34) == "1.49(26)e-33"
    assert value_error(2.5e7, 3e5) == "2.500(30)e7"
