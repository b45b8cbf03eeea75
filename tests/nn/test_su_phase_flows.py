"""Learnable eigenphase maps (``nn.su_phase_flows``): the SU(3) cell and its square, the maps'
Jacobians against autograd, and a single-matrix SU(3) flow trained on the benchmark density
``exp[(beta/3) sum_n c_n Re tr U^n]`` (beta = 9, c = (0.17, -0.65, 1.22)): its effective sample
size, and the reweighted <Re tr U> / 3 against the exact value from the Weyl integration formula
(a grid quadrature over the maximal torus)."""

from __future__ import annotations

import math

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.spectral import log_vandermonde2, su3_phases
from lqcdml.nn.su_phase_flows import SU2PhaseFlow, SU3PhaseFlow, square_to_su3, su3_to_square
from lqcdml.nn.su_spectral_maps import su3_spectral_map

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
