"""Unbiased powers from distinct noises and cumulants from moments."""

from itertools import combinations
from math import prod

import numpy as np
import pytest

from lqcdml.estimators.cumulants import cumulants_from_moments, distinct_noise_powers


def test_distinct_noise_powers_are_the_mean_over_distinct_subsets():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(7, 5))
    powers = distinct_noise_powers(t, 4)
    for k in range(1, 5):
        brute = np.array([np.mean([prod(row[list(c)]) for c in combinations(range(5), k)]) for row in t])
        assert np.allclose(powers[k], brute, atol=1e-13)
    assert set(distinct_noise_powers(t[:, :2], 4)) == {1, 2}


def test_distinct_noise_powers_are_unbiased_where_the_plain_power_is_not():
    """Noise estimates t_a = mu + noise: E[e_k / C(n, k)] = mu^k, E[mean(t)^k] is not."""
    rng = np.random.default_rng(1)
    mu, n_conf = 0.7, 200_000
    t = mu + rng.normal(size=(n_conf, 4))
    powers = distinct_noise_powers(t, 4)
    for k in (2, 3, 4):
        err = powers[k].std() / np.sqrt(n_conf)
        assert abs(powers[k].mean() - mu**k) < 4 * err
    plain = t.mean(axis=1) ** 2
    assert plain.mean() - mu**2 > 20 * plain.std() / np.sqrt(n_conf)  # biased by Var / n


@pytest.mark.parametrize("lam", [0.5, 3.0])
def test_cumulants_of_a_poisson_distribution_are_all_lambda(lam):
    """Poisson raw moments: lam, lam + lam^2, lam^3 + 3 lam^2 + lam, lam^4 + 6 lam^3 + 7 lam^2 + lam."""
    m = {1: lam, 2: lam + lam**2, 3: lam**3 + 3 * lam**2 + lam, 4: lam**4 + 6 * lam**3 + 7 * lam**2 + lam}
    kappa = cumulants_from_moments(m, volume=1.0)
    assert all(kappa[k] == pytest.approx(lam, rel=1e-12) for k in range(1, 5))
    assert cumulants_from_moments(m, volume=2.0)[4] == pytest.approx(8 * lam, rel=1e-12)
