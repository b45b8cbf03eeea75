"""Learnable eigenphase maps (``nn.su_phase_flows``): the SU(3) cell and its square, the maps'
Jacobians against autograd, and a single-matrix SU(3) flow trained on the benchmark density
``exp[(beta/3) sum_n c_n Re tr U^n]`` (beta = 9, c = (0.17, -0.65, 1.22)): its effective sample
size, and the reweighted <Re tr U> / 3 against the exact value from the Weyl integration formula
(a grid quadrature over the maximal torus); the targets of 200 steps at batch 100 with a decaying
learning rate: ESS >= 0.9 on the benchmark density, >= 0.99 on one plaquette's density
(``benchmarks/su_flow.py`` measures them over seeds)."""

from __future__ import annotations

import math

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.spectral import log_vandermonde2, su3_phases
from lqcdml.nn.su_phase_flows import SU2PhaseFlow, SU3PhaseFlow, square_to_su3, su3_to_square
from lqcdml.nn.su_spectral_maps import su2_spectral_map, su3_spectral_map

BETA, C = 9.0, (0.17, -0.65, 1.22)


def _haar3(count: int, seed: int) -> torch.Tensor:
    return SU(3).haar(make_generators(seed, 1), (count,))[0]


def _free_jacobian_logdet(phase_map, theta: torch.Tensor) -> torch.Tensor:
    """``log|det d(theta'_1, theta'_2)/d(theta_1, theta_2)|`` by autograd, per row of ``theta``."""

    def free(x: torch.Tensor) -> torch.Tensor:
        return phase_map(torch.cat([x, -x.sum(-1, keepdim=True)])[None])[0][0, :2]

    return torch.stack([torch.linalg.slogdet(torch.func.jacrev(free)(t[:2]))[1] for t in theta])


def test_the_su3_cell_maps_onto_the_unit_square_and_back():
    theta = su3_phases(_haar3(2000, 0))
    wr, log_det = su3_to_square(theta)
    assert torch.all((wr >= 0) & (wr <= 1))
    back, log_back = square_to_su3(wr)
    assert (back - theta).abs().max() < 1e-13 and (log_det + log_back).abs().max() < 1e-13
    assert (_free_jacobian_logdet(lambda t: su3_to_square(t), theta[:20]) - log_det[:20]).abs().max() < 1e-10


def test_flows_start_as_the_identity_and_their_log_det_is_the_jacobian():
    torch.manual_seed(0)
    theta = su3_phases(_haar3(20, 1))
    flow = SU3PhaseFlow(layers=4, bins=6, hidden=16)
    new, log_det = flow(theta)
    assert (new - theta).abs().max() < 1e-12 and log_det.abs().max() < 1e-12
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
    new, log_det = flow(theta)
    assert (new - theta).abs().max() > 1e-2  # it moves
    assert torch.all(new[..., 1:] >= new[..., :-1]) and new.sum(-1).abs().max() < 1e-12
    assert (_free_jacobian_logdet(flow, theta) - log_det).abs().max() < 1e-10
    su2 = SU2PhaseFlow(bins=6)
    with torch.no_grad():
        su2.params.add_(torch.randn_like(su2.params))
    angle = torch.rand(50, dtype=torch.float64) * math.pi
    grad = torch.func.vmap(torch.func.grad(lambda a: su2(a)[0]))(angle)
    assert (torch.log(grad) - su2(angle)[1]).abs().max() < 1e-10
    ends = su2(torch.tensor([0.0, math.pi], dtype=torch.float64))[0]
    assert ends[0] == 0 and abs(ends[1] - math.pi) < 1e-15


def _log_p(u: torch.Tensor) -> torch.Tensor:
    out, power = torch.zeros(u.shape[:-2], dtype=torch.float64), u
    for n, cn in enumerate(C, 1):
        if n > 1:
            power = power @ u
        out = out + cn * torch.diagonal(power, dim1=-2, dim2=-1).sum(-1).real
    return BETA / 3 * out


def _exact_re_trace() -> float:
    """``<Re tr U> / 3`` by quadrature over the maximal torus with the Weyl weight ``|Delta|^2``."""
    axis = 2 * math.pi * torch.arange(256, dtype=torch.float64) / 256
    free = torch.cartesian_prod(axis, axis)
    theta = torch.cat([free, -free.sum(-1, keepdim=True)], -1)
    z = torch.exp(1j * theta)
    log_p = BETA / 3 * sum(cn * (z**n).sum(-1).real for n, cn in enumerate(C, 1))
    weight = torch.exp(log_vandermonde2(theta) + log_p - log_p.max())
    return ((weight * z.sum(-1).real).sum() / weight.sum()).item() / 3


def test_single_matrix_flow_learns_the_benchmark_density_and_reweights_exactly():
    torch.manual_seed(0)
    flow = SU3PhaseFlow(layers=4, bins=8, hidden=32)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    group, gens = SU(3), make_generators(1, 1)
    for _ in range(200):  # batch 100, reverse KL: log q(U') = log Haar - log_det
        v, log_det = su3_spectral_map(group.haar(gens, (100,))[0], flow)
        loss = (-log_det - _log_p(v)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        v, log_det = su3_spectral_map(group.haar(gens, (20000,))[0], flow)
        log_w = _log_p(v) + log_det
        w = torch.exp(log_w - log_w.max())
    ess = (w.sum() ** 2 / (len(w) * (w * w).sum())).item()
    # measured 0.85 on these 20000 samples (0.93 on 4000; a public flow library reports 0.94 at
    # this budget); the Haar prior alone: 0.14
    assert ess > 0.6, ess
    o = torch.diagonal(v, dim1=-2, dim2=-1).sum(-1).real / 3
    mean = (w * o).sum() / w.sum()
    # delta method for the ratio of means
    error = torch.sqrt(((w * (o - mean)) ** 2).mean() / w.mean() ** 2 / len(w)).item()
    exact = _exact_re_trace()
    assert abs(mean.item() - exact) < 4 * error, (mean.item(), error, exact)
    assert error < 0.01


def _train(flow, n: int, log_p, lr: float, seed: int, path: bool = False, steps: int = 200, batch: int = 100):
    """Reverse KL from Haar, Adam with a cosine decay to 2 % of ``lr``; ``path``: the path gradient
    (``log q`` of the samples through the inverse map with the parameters held fixed)."""
    spectral = su3_spectral_map if n == 3 else su2_spectral_map
    params = list(flow.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.02 * lr)
    group, gens = SU(n), make_generators(seed, 1)
    for _ in range(steps):
        v, log_det = spectral(group.haar(gens, (batch,))[0], flow)
        if path:
            for p in params:
                p.requires_grad_(False)
            log_q = spectral(v, flow.inverse)[1]
            for p in params:
                p.requires_grad_(True)
        else:
            log_q = -log_det
        loss = (log_q - log_p(v)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return flow


def _ess(flow, n: int, log_p, count: int, seed: int) -> tuple[float, float]:
    """ESS of ``count`` fresh samples and its delta-method standard error."""
    spectral = su3_spectral_map if n == 3 else su2_spectral_map
    with torch.no_grad():
        v, log_det = spectral(SU(n).haar(make_generators(seed, 1), (count,))[0], flow)
        log_w = log_p(v) + log_det
        w = torch.exp(log_w - log_w.max())
    a, b = w.mean(), (w * w).mean()
    influence = (2 * a / b) * (w - a) - (a * a / (b * b)) * (w * w - b)
    return (a * a / b).item(), (influence.std() / math.sqrt(count)).item()


def test_a_decaying_learning_rate_meets_the_benchmark_target():
    """The earlier test's 200 steps at batch 100 with the learning rate decaying (cosine) instead of
    constant: ESS 0.85-0.93 becomes 0.98-0.99 over seeds. A constant rate leaves the parameters
    in Adam's noise at that rate: the flows of steps 170-200 of one training have ESS from 0.66 to
    0.97."""
    torch.manual_seed(0)
    flow = _train(SU3PhaseFlow(layers=4, bins=8, hidden=32), 3, _log_p, 1e-2, seed=1)
    ess, error = _ess(flow, 3, _log_p, 20000, seed=2)
    # measured 0.9929 +- 0.0003 (delta method); the target met beyond three standard errors
    assert ess - 3 * error >= 0.9, (ess, error)


def test_one_plaquette_densities_reach_ess_0_99():
    """``exp((beta/N) Re tr U)``, SU(3) at beta = 9 and SU(2) at beta = 6, 200 steps at batch 100
    with the path gradient (its variance vanishes as the flow approaches the target; the plain
    reverse-KL gradient reaches 0.990-0.996 here); SU(2)'s 25 free spline parameters at a
    learning rate of 0.05 (Adam moves each by about the rate per step)."""
    for n, beta, lr in ((3, 9.0, 1e-2), (2, 6.0, 5e-2)):

        def log_p(u: torch.Tensor, n: int = n, beta: float = beta) -> torch.Tensor:
            return beta / n * torch.diagonal(u, dim1=-2, dim2=-1).sum(-1).real

        torch.manual_seed(0)
        flow = SU3PhaseFlow(layers=4, bins=8, hidden=32) if n == 3 else SU2PhaseFlow(bins=8)
        ess, error = _ess(_train(flow, n, log_p, lr, seed=1, path=True), n, log_p, 20000, seed=2)
        # measured 0.99959 +- 0.00005 (SU(3)), 0.99746 +- 0.00023 (SU(2))
        assert ess - 3 * error >= 0.99, (n, beta, ess, error)
