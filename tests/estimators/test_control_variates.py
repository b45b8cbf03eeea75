"""Schwinger-Dyson control variates: zero mean, exact and Hutchinson divergences, the free-field optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqcdml.estimators import (
    EnsembleIndex,
    control_variate_estimate,
    control_variate_terms,
    exact_divergence,
    hutchinson_divergence,
    train_control_variate,
)
from lqcdml.lattice import U1, shift
from lqcdml.nn import PlaquetteVectorField, ShiftedMLP
from lqcdml.observables import timeslice_correlator
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.theories import Phi4Action, WilsonGaugeAction

from ..helpers import randomize


def laplacian_symbol(lattice: tuple[int, ...]) -> torch.Tensor:
    ks = torch.meshgrid(*[2 * math.pi * torch.arange(n, dtype=torch.float64) / n for n in lattice], indexing="ij")
    return sum(4 * torch.sin(k / 2) ** 2 for k in ks)


def free_field(lattice: tuple[int, ...], m2: float, n: int, seed: int) -> torch.Tensor:
    """Exact samples of S = 1/2 phi (-Laplacian + m^2) phi: covariance K^{-1}, by FFT."""
    gen = torch.Generator().manual_seed(seed)
    xi = torch.randn(n, *lattice, generator=gen, dtype=torch.float64)
    dims = tuple(range(1, len(lattice) + 1))
    k = laplacian_symbol(lattice) + m2
    return torch.fft.ifftn(torch.fft.fftn(xi, dim=dims) / k.sqrt(), dim=dims).real


def test_shifted_mlp_is_translation_equivariant_and_its_divergence_is_exact():
    g = randomize(ShiftedMLP((4, 3), hidden=(5,)), seed=1)
    phi = torch.randn(3, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    moved = torch.roll(phi, shifts=(1, 2), dims=(1, 2))
    assert torch.allclose(g(moved), torch.roll(g(phi), shifts=(1, 2), dims=(1, 2)), atol=1e-14)
    assert torch.allclose(g.divergence(phi), exact_divergence(g, phi), atol=1e-12, rtol=0)


def test_linear_shifted_field_is_a_convolution():
    g = randomize(ShiftedMLP((5,), hidden=()), seed=2)
    w = g.g0[0].weight[0].detach()  # g_x = sum_y w_y phi_{x+y}
    phi = torch.randn(2, 5, dtype=torch.float64)
    want = sum(w[y] * torch.roll(phi, -y, dims=1) for y in range(5))
    assert torch.allclose(g(phi), want, atol=1e-14)
    assert torch.allclose(g.divergence(phi), torch.full((2,), 5 * float(w[0]), dtype=torch.float64), atol=1e-13)


def test_plaquette_field_divergence_is_exact_and_g_is_gauge_invariant():
    g = randomize(PlaquetteVectorField(hidden=(6,)), seed=3)
    gen = torch.Generator().manual_seed(4)
    links = (2 * torch.rand(2, 2, 4, 3, generator=gen, dtype=torch.float64) - 1) * math.pi
    assert torch.allclose(g.divergence(links), exact_divergence(g, links), atol=1e-12, rtol=0)
    alpha = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
    transformed = torch.stack([links[:, mu] + alpha - shift(alpha, mu) for mu in range(2)], dim=1)
    assert torch.allclose(g(transformed), g(links), atol=1e-12)
    assert torch.allclose(g(links + 2 * math.pi), g(links), atol=1e-12)  # periodic: no boundary term


def test_hutchinson_divergence_is_unbiased():
    g = randomize(ShiftedMLP((4, 4), hidden=(6,)), seed=5)
    phi = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    exact = exact_divergence(g, phi)
    gen = torch.Generator().manual_seed(7)
    probes = torch.stack([hutchinson_divergence(g, phi, gen, 1).detach() for _ in range(3000)])
    mean, err = probes.mean(0), probes.std(0) / math.sqrt(len(probes))
    assert torch.all((mean - exact).abs() < 4 * err), (mean, exact, err)
    assert torch.all(probes.std(0) > 0)  # a real estimate, not the exact trace in disguise


def phi4_ensemble(lattice, m2, lam, n_chains, n_traj, seed):
    action = Phi4Action(m2=m2, lam=lam, convention="standard")
    hmc = HMC(Integrator.single(action, 8, "omelyan"), 1.0)
    start = torch.zeros(n_chains, *lattice, dtype=torch.float64)
    _, rec = run_chain(hmc, hmc.init(start, seed), n_traj, lambda phi: {"phi": phi.clone()}, n_skip=50)
    return action, rec["phi"]  # [n_traj, B, L...]


def flatten_chains(samples: torch.Tensor) -> tuple[torch.Tensor, EnsembleIndex]:
    """[n_traj, B, ...] -> replica-major [B * n_traj, ...] with its index."""
    n_traj, n_b = samples.shape[:2]
    flat = samples.transpose(0, 1).reshape(n_b * n_traj, *samples.shape[2:])
    return flat, EnsembleIndex.grid("cv", n_traj, n_b)


def test_untrained_random_g_has_zero_mean_scalar():
    action, phi = phi4_ensemble((6, 6), m2=-0.5, lam=2.0, n_chains=8, n_traj=400, seed=11)
    x, ens = flatten_chains(phi)
    g = randomize(ShiftedMLP((6, 6), hidden=(4,)), seed=12, scale=0.3)
    f = control_variate_terms(g, action.force, x)
    zero = ens.mean(f)
    zero.gamma_method()
    assert np.std(f) > 1.0  # f fluctuates: the identity is tested, not trivially zero
    assert abs(float(zero.value)) < 4 * float(zero.dvalue), zero
    # the identity that pins the action convention: g_x = phi_x gives <phi dS/dphi> = 1 per site
    f_lin = x[0].numel() - (x * action.force(x)).reshape(x.shape[0], -1).sum(1).numpy()
    lin = ens.mean(f_lin)
    lin.gamma_method()
    assert abs(float(lin.value)) < 4 * float(lin.dvalue)


def test_untrained_random_g_has_zero_mean_u1():
    action = WilsonGaugeAction(2.0, U1())
    hmc = HMC(Integrator.single(action, 8, "omelyan"), 1.0)
    start = torch.zeros(8, 2, 4, 4, dtype=torch.float64)
    _, rec = run_chain(hmc, hmc.init(start, 21), 400, lambda u: {"u": u.clone()}, n_skip=50)
    x, ens = flatten_chains(rec["u"])
    g = randomize(PlaquetteVectorField(hidden=(4,)), seed=22, scale=0.8)
    f = control_variate_terms(g, action.force, x)
    zero = ens.mean(f)
    zero.gamma_method()
    assert np.std(f) > 1.0
    assert abs(float(zero.value)) < 4 * float(zero.dvalue), zero


def test_free_field_training_finds_the_analytic_linear_g():
    """S = 1/2 phi K phi, O = phi^T A phi (the time-slice correlator at L_0/2). The linear g with
    W = -A K^{-1} (symmetric circulant) makes O - f constant: f = V w_0 + phi^T A phi. Adam on the
    variance finds it, and the estimate matches the exact <O> = tr(A K^{-1})."""
    lattice, m2 = (8, 4), 0.5
    v = math.prod(lattice)
    t = lattice[0] // 2
    # A from the observable: O(phi) = phi^T A phi, read off by polarisation on basis vectors
    basis = torch.eye(v, dtype=torch.float64).reshape(v, *lattice)

    def o_of(p):
        return timeslice_correlator(p, t)

    diag = torch.stack([o_of(basis[i][None])[0] for i in range(v)])
    pair = torch.stack([o_of(basis[i][None] + basis) for i in range(v)])  # [v, v]: O(e_i + e_j)
    a = 0.5 * (pair - diag[:, None] - diag[None, :])
    # K = -Laplacian + m^2 column by column
    kmat = (
        (2 * len(lattice) + m2) * basis - sum(shift(basis, mu, 1) + shift(basis, mu, -1) for mu in range(len(lattice)))
    ).reshape(v, v)
    w_star = (-a @ torch.linalg.inv(kmat))[0]  # g_x = sum_y w_y phi_{x+y}: w_y = W_{0, y}
    exact_o = float(torch.trace(a @ torch.linalg.inv(kmat)))

    action = Phi4Action(m2=m2, lam=0.0, convention="standard")
    train_x = free_field(lattice, m2, 4000, seed=1)
    eval_x = free_field(lattice, m2, 4000, seed=2)
    g = ShiftedMLP(lattice, hidden=())
    hist = train_control_variate(
        g, action.force, train_x, o_of(train_x), steps=1200, lr=3e-2, batch=128, seed=3, schedule="cosine"
    )
    w = g.g0[0].weight[0].detach()
    assert hist.loss[-1] < 1e-3 * hist.var_o
    assert torch.allclose(w, w_star, atol=1e-6 * float(w_star.abs().max())), (w, w_star)
    res = control_variate_estimate(
        EnsembleIndex.grid("free", 4000, 1), o_of(eval_x).numpy(), control_variate_terms(g, action.force, eval_x)
    )
    assert res.variance_reduction > 1e6
    assert abs(float(res.improved.value) - exact_o) < 4 * float(res.improved.dvalue) + 1e-12
    assert abs(float(res.plain.value) - exact_o) < 4 * float(res.plain.dvalue)


@pytest.mark.parametrize("hidden", [(), (3,), (4, 2)])
def test_shifted_mlp_is_g0_applied_to_every_shifted_field(hidden):
    """The FFT first layer equals the definition g_x = g_0(T_x phi) with T_x by gathering."""
    from lqcdml.nn import shifted_fields

    g = randomize(ShiftedMLP((4, 6), hidden=hidden), seed=8)
    phi = torch.randn(2, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    want = g.g0(shifted_fields(phi))[..., 0].reshape(phi.shape)
    assert torch.allclose(g(phi), want, atol=1e-13)
    assert torch.allclose(g.divergence(phi), exact_divergence(g, phi), atol=1e-12, rtol=0)


def test_training_with_the_hutchinson_divergence_reduces_the_variance():
    """The unbiased divergence estimate trains g too (fields without an exact divergence): on the free
    field the linear g reaches a real variance reduction (its probe noise, 2 sum_{i != j} W_ij^2 per
    configuration, enters the loss and holds it below the exact-divergence optimum: about 9 here
    against > 10^6), and the Hutchinson terms average to the exact ones."""
    lattice, m2 = (8, 4), 0.5
    action = Phi4Action(m2=m2, lam=0.0, convention="standard")
    o_of = lambda p: timeslice_correlator(p, lattice[0] // 2)  # noqa: E731
    train_x, eval_x = free_field(lattice, m2, 2000, seed=4), free_field(lattice, m2, 2000, seed=5)
    g = ShiftedMLP(lattice, hidden=())
    train_control_variate(
        g,
        action.force,
        train_x,
        o_of(train_x),
        steps=600,
        lr=3e-2,
        batch=128,
        seed=6,
        divergence="hutchinson",
        n_probe=2,
        schedule="cosine",
    )
    f_exact = control_variate_terms(g, action.force, eval_x)
    f_hutch = control_variate_terms(g, action.force, eval_x, divergence="hutchinson", n_probe=1, seed=7)
    res = control_variate_estimate(EnsembleIndex.grid("free", 2000, 1), o_of(eval_x).numpy(), f_exact)
    assert res.variance_reduction > 4
    noisy = control_variate_estimate(EnsembleIndex.grid("free", 2000, 1), o_of(eval_x).numpy(), f_hutch)
    assert abs(float(noisy.zero_mean.value) - float(res.zero_mean.value)) < 4 * float(noisy.zero_mean.dvalue)
