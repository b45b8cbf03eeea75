"""Exact 2D SU(N) at finite volume (``analysis.exact_sun_2d``): the character coefficients against
closed forms and the character expansion itself, the plaquette from ``d ln Z / d beta`` against
the Wilson loop of area 1 from the fusion rule (two independent routes), the infinite-volume
limits, and HMC on small tori where the finite volume shows."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import single_plaquette_average
from lqcdml.analysis.exact_sun_2d import (
    su_n_2d_plaquette,
    su_n_2d_plaquette_susceptibility,
    su_n_2d_wilson_loop,
    su_n_character_coefficients,
)
from lqcdml.lattice import SU, make_generators
from lqcdml.observables import plaquette, wilson_loop
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.theories import WilsonGaugeAction


def test_su2_coefficients_are_the_bessel_ratios():
    """``exp((beta/2) tr U) = (2/beta) sum_j (2j + 1) I_{2j+1}(beta) chi_j(U)``: ``f_j = (2/beta) I_{2j+1}``."""
    for beta in (1.0, 4.0):
        log_f = su_n_character_coefficients(beta, 2, 12)
        for (twice_j,), value in log_f.items():
            assert abs(math.exp(value) / (2 / beta * special.iv(twice_j + 1, beta)) - 1) < 1e-12


def _schur(rows: tuple[int, ...], z: np.ndarray) -> complex:
    """The character ``chi_l`` at eigenvalues ``z`` (Weyl's formula)."""
    n = len(z)
    full = [*rows, 0]
    num = np.linalg.det(np.array([[zj ** (full[i] + n - 1 - i) for zj in z] for i in range(n)]))
    den = np.linalg.det(np.array([[zj ** (n - 1 - i) for zj in z] for i in range(n)]))
    return num / den


def _dimension(rows: tuple[int, ...]) -> float:
    """Weyl's dimension formula."""
    full = [*rows, 0]
    n = len(full)
    return math.prod((full[i] - full[j] + j - i) / (j - i) for i in range(n) for j in range(i + 1, n))


def test_the_character_expansion_sums_to_the_weight():
    """``sum_l d_l f_l chi_l(U) = exp((beta/N) Re tr U)`` at random SU(2) and SU(3) matrices."""
    for n, beta in ((2, 3.0), (3, 5.0)):
        log_f = su_n_character_coefficients(beta, n, 16)
        u = SU(n).haar(make_generators(n, 1), (3,))[0].numpy()
        for z in np.linalg.eigvals(u):
            total = sum(math.exp(lf) * _dimension(rows) * _schur(rows, z) for rows, lf in log_f.items())
            assert abs(total / math.exp(beta / n * z.sum().real) - 1) < 1e-10, (n, beta)


def test_plaquette_from_ln_z_equals_the_area_one_wilson_loop_and_the_limits_hold():
    for n, beta in ((2, 2.0), (2, 4.0), (3, 4.0), (3, 6.0)):
        for volume in (4, 64):
            p = su_n_2d_plaquette(beta, n, volume)
            assert abs(p - su_n_2d_wilson_loop(beta, n, volume, 1)) < 1e-9, (n, beta, volume)
        u, du = single_plaquette_average(beta, n)  # the infinite-volume plaquette and its slope
        assert abs(su_n_2d_plaquette(beta, n, 64) - u) < 1e-7
        # infinite volume: independent plaquettes, <W_A> = u^A and the susceptibility du / d beta
        assert abs(su_n_2d_wilson_loop(beta, n, 64, 4) - u**4) < 1e-7
        assert abs(su_n_2d_plaquette_susceptibility(beta, n, 64) - du) < 1e-5, (n, beta)


def _hmc(n: int, beta: float, length: int, n_traj: int, measure) -> dict:
    group = SU(n)
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), 6, "omelyan"), 1.0)
    start = group.haar(make_generators(5, 16), (2, length, length))
    _, rec = run_chain(hmc, hmc.init(start, 23), n_traj, measure, n_skip=30)
    assert rec["accepted"].double().mean() > 0.7
    return rec


def test_hmc_on_a_two_by_two_torus_sees_the_finite_volume():
    """SU(2), beta = 2, V = 4: the exact finite-volume plaquette 0.4461 against 0.4331 at V = oo."""
    group = SU(2)
    rec = _hmc(2, 2.0, 2, 1000, lambda links: plaquette(links, group))
    est = estimate(rec["value"].numpy())
    finite, infinite = su_n_2d_plaquette(2.0, 2, 4), su_n_2d_plaquette(2.0, 2, 10_000)
    assert abs(est.pull(finite)) < 3, (est, finite)
    assert abs(finite - infinite) > 4 * est.error, (est, finite, infinite)


def test_hmc_wilson_loops_on_a_four_by_four_torus():
    group = SU(3)
    rec = _hmc(
        3,
        6.0,
        4,
        300,
        lambda links: {"w12": wilson_loop(links, group, 1, 2), "w22": wilson_loop(links, group, 2, 2)},
    )
    for key, area in (("w12", 2), ("w22", 4)):
        est = estimate(rec[key].numpy())
        assert abs(est.pull(su_n_2d_wilson_loop(6.0, 3, 16, area))) < 3, (key, est)


def test_summaries_take_the_exact_2d_values_as_references():
    """``analysis.references``: 2D quenched SU(N) plaquettes and R x T loops (by area) are the
    character expansion's finite-volume values; 4D and loops that wrap the torus get none."""
    from lqcdml.analysis.references import reference_value

    theory = {"name": "su", "n_colors": 3, "lattice": [8, 8], "beta": 6.0, "fermion": "none"}
    value, error, source = reference_value(theory, "plaquette")
    assert value == su_n_2d_plaquette(6.0, 3, 64) and error == 0.0 and "character expansion" in source
    assert reference_value(theory, "wilson_loop", "1x2")[0] == su_n_2d_wilson_loop(6.0, 3, 64, 2)
    assert reference_value(theory, "wilson_loop", "2x1")[0] == reference_value(theory, "wilson_loop", "1x2")[0]
    assert reference_value(theory, "wilson_loop", "8x8") is None
    assert reference_value({**theory, "lattice": [4, 4, 4, 4], "beta": 6.0}, "wilson_loop", "1x2") is None


def test_the_exact_log_partition_functions_are_haar_averages_of_exp_minus_s():
    """``Z = E_Haar[exp(-S)]`` by Monte Carlo on a 2 x 2 torus (SU(2), SU(3), U(1) at beta = 1.5),
    and ``flow_log_z`` adds the angles' Lebesgue volume for U(1): the ``ln Z`` that turns a flow's
    reverse-KL loss into ``KL(q || p)`` in the summary."""
    from lqcdml.analysis.exact import u1_2d_log_z
    from lqcdml.analysis.exact_sun_2d import su_n_2d_log_z
    from lqcdml.analysis.references import flow_log_z
    from lqcdml.lattice import U1

    beta, n_samples = 1.5, 200_000
    for group, exact in (
        (SU(2), su_n_2d_log_z(beta, 2, 4)),
        (SU(3), su_n_2d_log_z(beta, 3, 4)),
        (U1(), u1_2d_log_z(beta, 4)),
    ):
        links = group.haar(make_generators(17, 1), (n_samples, 2, 2, 2))[0]
        weights = np.exp(-WilsonGaugeAction(beta, group).action(links).numpy())
        mean, err = weights.mean(), weights.std() / math.sqrt(n_samples)
        assert abs(mean - math.exp(exact)) < 4 * err and err < 0.01 * mean, (group, mean, err, math.exp(exact))
    theory = {"name": "u1", "lattice": [2, 2], "beta": beta}
    assert flow_log_z(theory) == u1_2d_log_z(beta, 4) + 8 * math.log(2 * math.pi)
    assert flow_log_z({**theory, "name": "su", "n_colors": 3}) == su_n_2d_log_z(beta, 3, 4)
    assert flow_log_z({**theory, "lattice": [2, 2, 2, 2]}) is None


def test_u1_plaquette_susceptibility_is_the_second_derivative_of_ln_z():
    """``N_P (<p^2> - <p>^2) = (1/N_P) d^2 ln Z / d beta^2 = d <p> / d beta``; at large volume the
    variance of one plaquette's cosine, ``(I_0 + I_2) / (2 I_0) - (I_1 / I_0)^2``."""
    from lqcdml.analysis.exact import u1_2d_log_z, u1_2d_plaquette, u1_2d_plaquette_susceptibility

    h = 1e-3
    for beta, volume in ((0.5, 16), (2.0, 64), (6.0, 256)):
        chi = u1_2d_plaquette_susceptibility(beta, volume)
        second = (u1_2d_log_z(beta + h, volume) - 2 * u1_2d_log_z(beta, volume) + u1_2d_log_z(beta - h, volume)) / h**2
        assert abs(chi - second / volume) < 1e-5 * max(chi, 1e-2), (beta, volume)
        slope = (u1_2d_plaquette(beta + h, volume) - u1_2d_plaquette(beta - h, volume)) / (2 * h)
        assert abs(chi - slope) < 1e-6, (beta, volume)
    i0, i1, i2 = (special.iv(k, 2.0) for k in range(3))
    assert abs(u1_2d_plaquette_susceptibility(2.0, 10**6) - ((i0 + i2) / (2 * i0) - (i1 / i0) ** 2)) < 1e-9
