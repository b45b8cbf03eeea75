"""The set-up the SLHMC benchmarks share (``slhmc_gain``, ``slhmc_tau``, ``slhmc_trained``):
SU(2) (``slhmc_gain --colours 3``: SU(3)), staggered N_f = 4, the pseudofermion actions at a light mass and at ``m_eff``, plain and
Hasenbusch HMC (the Hasenbusch chain also thermalises) (one intermediate mass, 3 outer steps, 1 inner, Omelyan,
trajectory length 1) and its start near the identity on an ``L^4`` lattice."""

from __future__ import annotations

import platform
from collections.abc import Sequence

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.samplers import HMC, Integrator, Level, hasenbusch_hmc
from lqcdml.theories import StaggeredOperator, StaggeredPseudofermion, WilsonGaugeAction

GROUP = SU(2)


def gauge_action(beta: float, group: SU = GROUP) -> WilsonGaugeAction:
    return WilsonGaugeAction(beta, group)


def pseudofermion(mass: float, tol: float, md_tol: float | None = None, group: SU = GROUP) -> StaggeredPseudofermion:
    """The staggered N_f = 4 pseudofermion action at ``mass`` (CG to ``tol``; its force to
    ``md_tol``, ``None``: ``tol``)."""
    return StaggeredPseudofermion(StaggeredOperator(mass, group), 4, tol=tol, force_tol=md_tol)


def plain_hmc(gauge: WilsonGaugeAction, light: StaggeredPseudofermion, n_steps: int, gauge_steps: int) -> HMC:
    """HMC, ``n_steps`` on the fermion level, ``gauge_steps`` of the gauge force inside each."""
    return HMC(Integrator(gauge.group, (Level((light,), n_steps), Level((gauge,), gauge_steps))), 1.0)


def hasenbusch(
    gauge: WilsonGaugeAction, light: StaggeredPseudofermion, m_1: float, outer_steps: int, gauge_steps: int
) -> HMC:
    """Hasenbusch HMC at the intermediate mass ``m_1``, 1 inner step per outer (3 outer steps:
    the benchmarks' thermalising chain)."""
    return hasenbusch_hmc(gauge, [light], [m_1], outer_steps, [1], gauge_steps, "omelyan", 1.0)


def mismatch_draws(exact, effective, links: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """``S_exact - S_effective`` at fields from the exact heat bath, one draw per seed for every
    configuration: ``[len(seeds), B]``."""
    out = []
    for seed in seeds:
        phi = exact.heat_bath(links, make_generators(seed, links.shape[0]))
        out.append(exact.action(links, phi) - effective.action(links, phi))
    return torch.stack(out)


def start_fields(seed: int, chains: int, extent: int, group: SU = GROUP) -> torch.Tensor:
    """``chains`` configurations near the identity on ``extent^4`` (spread 0.3)."""
    return group.near_identity(make_generators(seed, chains), (4, *[extent] * 4), 0.3)


def header(benchmark: str, threads: int, beta: float, group: SU = GROUP) -> dict:
    """The first fields of every SLHMC benchmark's JSON document."""
    return {
        "benchmark": benchmark,
        "machine": platform.machine(),
        "threads": threads,
        "group": f"SU({group.n})",
        "beta": beta,
        "n_flavours": 4,
    }
