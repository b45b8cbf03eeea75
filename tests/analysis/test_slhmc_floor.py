"""The SLHMC mismatch floor: the variance of ``phi^dag A phi`` for a Gaussian field, the floor
below every admissible effective kernel (attained by the best one), the thin action's variance,
and the Gaussian acceptance."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from lqcdml.analysis.slhmc_floor import (
    gaussian_acceptance,
    mismatch_floor,
    modes_below,
    ratio_mismatch_floor,
    sites_at_acceptance,
    thin_field_variance,
)

MASS, M_EFF, M_1 = 0.05, 0.2, 0.4


def _unitary(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return q * (np.diag(r) / abs(np.diag(r)))


def _field_variance(cov: np.ndarray, kernel_difference: np.ndarray) -> float:
    """``var(phi^dag A phi)`` for ``phi ~ CN(0, C)``: ``tr (C A C A)``."""
    ca = cov @ kernel_difference
    return float(np.trace(ca @ ca).real)


def test_the_variance_of_a_gaussian_quadratic_form_is_the_trace_formula():
    rng = np.random.default_rng(1)
    n, draws = 5, 200_000
    u = _unitary(rng, n)
    cov = u @ np.diag(rng.uniform(0.1, 2.0, n)) @ u.conj().T
    a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    a = (a + a.conj().T) / 2
    chol = np.linalg.cholesky(cov)
    xi = (rng.normal(size=(draws, n)) + 1j * rng.normal(size=(draws, n))) / math.sqrt(2)
    phi = xi @ chol.T
    d = np.einsum("bi,ij,bj->b", phi.conj(), a, phi).real
    exact = _field_variance(cov, a)
    # the sample variance's standard error from the fourth moment
    err = math.sqrt(np.var((d - d.mean()) ** 2) / draws)
    assert abs(d.var() - exact) < 5 * err, (d.var(), exact, err)


def _spectrum(rng: np.random.Generator, n: int) -> np.ndarray:
    """``mu^2`` with a few modes below ``m_eff^2 - m^2`` and the rest above."""
    return np.sort(np.concatenate([rng.uniform(0.0, 0.03, 4), rng.uniform(0.03, 3.0, n - 4)]))


@pytest.mark.parametrize("seed", range(3))
def test_no_effective_kernel_at_m_eff_goes_below_the_floor_and_the_best_one_reaches_it(seed):
    """Exact kernel ``(m^2 + mu^2)^{-1}``; every hermitian ``K <= 1 / m_eff^2`` (random basis and
    eigenvalues, as any smeared ``M_eff(V)^{-1}``) leaves ``tr((1 - C K)^2)`` above the floor;
    ``K = min(1 / lambda, 1 / m_eff^2)`` in the eigenbasis of ``C`` attains it."""
    rng = np.random.default_rng(seed)
    n = 12
    mu2 = _spectrum(rng, n)
    lam = mu2 + MASS**2
    u = _unitary(rng, n)
    cov = u @ np.diag(lam) @ u.conj().T
    floor = mismatch_floor(torch.tensor(mu2)[None], MASS, M_EFF)
    assert floor > 0.5  # the low modes are there
    for _ in range(200):
        w = _unitary(rng, n)
        k = w @ np.diag(rng.uniform(0.0, 1.0, n) / M_EFF**2) @ w.conj().T
        assert _field_variance(cov, np.linalg.inv(cov) - k) >= floor - 1e-12
    best = u @ np.diag(np.minimum(1 / lam, 1 / M_EFF**2)) @ u.conj().T
    assert _field_variance(cov, np.linalg.inv(cov) - best) == pytest.approx(floor, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_the_ratio_floor_bounds_every_effective_ratio(seed):
    """Ratio ``(m, m_1)``: kernel ``1 + d' / lambda`` (``d' = m_1^2 - m^2``), field covariance its
    inverse; effective ratios at ``m_eff`` have kernels ``<= m_1^2 / m_eff^2``."""
    rng = np.random.default_rng(10 + seed)
    n = 12
    mu2 = _spectrum(rng, n)
    lam = mu2 + MASS**2
    exact = 1 + (M_1**2 - MASS**2) / lam
    u = _unitary(rng, n)
    kernel = u @ np.diag(exact) @ u.conj().T
    cov = np.linalg.inv(kernel)
    floor = ratio_mismatch_floor(torch.tensor(mu2)[None], MASS, M_EFF, M_1)
    assert floor > 0.5
    for _ in range(200):
        w = _unitary(rng, n)
        k = w @ np.diag(rng.uniform(0.0, 1.0, n) * M_1**2 / M_EFF**2) @ w.conj().T
        assert _field_variance(cov, kernel - k) >= floor - 1e-12
    best = u @ np.diag(np.minimum(exact, M_1**2 / M_EFF**2)) @ u.conj().T
    assert _field_variance(cov, kernel - best) == pytest.approx(floor, rel=1e-12)
    # the thin effective ratio (same links at m_eff) has the whole action's field variance
    thin = u @ np.diag(1 + (M_1**2 - M_EFF**2) / (mu2 + M_EFF**2)) @ u.conj().T
    assert _field_variance(cov, kernel - thin) == pytest.approx(
        thin_field_variance(torch.tensor(mu2)[None], MASS, M_EFF), rel=1e-12
    )


def test_the_thin_action_variance_and_the_mode_count():
    rng = np.random.default_rng(4)
    mu2 = _spectrum(rng, 12)
    lam = mu2 + MASS**2
    thin = 1 / (mu2 + M_EFF**2)  # the light operator at m_eff on the same links
    assert _field_variance(np.diag(lam), np.diag(1 / lam - thin)) == pytest.approx(
        thin_field_variance(torch.tensor(mu2)[None], MASS, M_EFF), rel=1e-12
    )
    assert modes_below(torch.tensor(mu2)[None], MASS, M_EFF) == float((lam < M_EFF**2).sum())
    # a configuration mean: two configurations, the mean of their floors
    two = torch.tensor(np.stack([mu2, mu2 + 1.0]))
    assert mismatch_floor(two, MASS, M_EFF) == pytest.approx(mismatch_floor(two[:1], MASS, M_EFF) / 2, rel=1e-14)


@pytest.mark.parametrize("var_d", [0.01, 0.3, 1.0, 4.0, 20.0])
def test_gaussian_acceptance_is_the_mean_metropolis_probability(var_d):
    """``dH ~ N(s^2 / 2, s^2)``, ``s^2 = 2 var_d``: ``<min(1, e^-dH)>`` by quadrature, and
    ``<e^-dH> = 1`` for this mean."""
    s = math.sqrt(2 * var_d)
    pdf = stats.norm(s**2 / 2, s).pdf
    lo, hi = s**2 / 2 - 12 * s, s**2 / 2 + 12 * s
    prob = integrate.quad(lambda x: min(1.0, math.exp(-x)) * pdf(x), lo, hi, points=[0.0], epsabs=1e-13)[0]
    assert gaussian_acceptance(var_d) == pytest.approx(prob, abs=1e-10)
    lo, hi = -(s**2) / 2 - 12 * s, -(s**2) / 2 + 12 * s  # where e^-x times the density lives
    assert integrate.quad(lambda x: math.exp(-x) * pdf(x), lo, hi, limit=200)[0] == pytest.approx(1.0, abs=1e-9)


def test_bad_masses_are_refused():
    mu2 = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=r"m_eff = 0.05 with mass = 0.1; allowed: 0 <= mass < m_eff"):
        mismatch_floor(mu2, 0.1, 0.05)
    with pytest.raises(ValueError, match=r"m_eff = 0.5 with m_1 = 0.4; allowed: m_eff < m_1"):
        ratio_mismatch_floor(mu2, 0.1, 0.5, 0.4)
    with pytest.raises(ValueError, match=r"var_d = -1"):
        gaussian_acceptance(-1.0)


@pytest.mark.parametrize("acceptance", [0.05, 0.5, 0.9])
def test_sites_at_acceptance_inverts_the_gaussian_acceptance(acceptance):
    per_site = 2.5e-4
    sites = sites_at_acceptance(per_site, acceptance)
    assert gaussian_acceptance(per_site * sites) == pytest.approx(acceptance, rel=1e-12)
    with pytest.raises(ValueError, match=r"acceptance = 1.0, var_per_site = 0.1; allowed: 0 < acceptance < 1"):
        sites_at_acceptance(0.1, 1.0)
