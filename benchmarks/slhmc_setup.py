"""The set-up the SLHMC benchmarks share (``slhmc_gain``, ``slhmc_tau``, ``slhmc_trained``):
SU(2), staggered N_f = 4, the pseudofermion actions at a light mass and at ``m_eff``, the
Hasenbusch chain that thermalises (one intermediate mass, 3 outer steps, 1 inner, Omelyan,
trajectory length 1) and its start near the identity on an ``L^4`` lattice."""

from __future__ import annotations

import platform

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.samplers import HMC, hasenbusch_hmc
from lqcdml.theories import StaggeredOperator, StaggeredPseudofermion, WilsonGaugeAction

GROUP = SU(2)


def gauge_action(beta: float) -> WilsonGaugeAction:
    return WilsonGaugeAction(beta, GROUP)


def pseudofermion(mass: float, tol: float) -> StaggeredPseudofermion:
    """The staggered N_f = 4 pseudofermion action at ``mass`` (CG to ``tol``)."""
    return StaggeredPseudofermion(StaggeredOperator(mass, GROUP), 4, tol=tol)


def thermaliser(gauge: WilsonGaugeAction, light: StaggeredPseudofermion, m_1: float, gauge_steps: int) -> HMC:
    """Hasenbusch HMC at the intermediate mass ``m_1`` (3 outer steps, 1 inner)."""
    return hasenbusch_hmc(gauge, [light], [m_1], 3, [1], gauge_steps, "omelyan", 1.0)


def start_fields(seed: int, chains: int, extent: int) -> torch.Tensor:
    """``chains`` configurations near the identity on ``extent^4`` (spread 0.3)."""
    return GROUP.near_identity(make_generators(seed, chains), (4, *[extent] * 4), 0.3)


def header(benchmark: str, threads: int, beta: float) -> dict:
    """The first fields of every SLHMC benchmark's JSON document."""
    return {
        "benchmark": benchmark,
        "machine": platform.machine(),
        "threads": threads,
        "group": "SU(2)",
        "beta": beta,
        "n_flavours": 4,
    }
