"""Markov-chain samplers: the sampler contract, integrators, HMC (with Hasenbusch preconditioning),
self-learning HMC, flow MCMC,
actions pulled back through field transformations, chain states."""

from .chain import run_chain
from .contract import Sampler, StartFields, StepInfo
from .flow_mcmc import FlowMCMC, effective_sample_size
from .fthmc import FieldTransformedHMC
from .hasenbusch import hasenbusch_hmc, hasenbusch_levels
from .hmc import HMC, metropolis_accept
from .integrators import OMELYAN_LAMBDA, SCHEMES, Integrator, Level, MDResult, bind_terms
from .pullback import PulledBackAction, WithoutJacobian
from .slhmc import SmearedPseudofermion, slhmc, slhmc_hasenbusch
from .state import ChainState

__all__ = [
    "FieldTransformedHMC",
    "FlowMCMC",
    "HMC",
    "OMELYAN_LAMBDA",
    "SCHEMES",
    "ChainState",
    "Integrator",
    "Level",
    "MDResult",
    "PulledBackAction",
    "Sampler",
    "SmearedPseudofermion",
    "StartFields",
    "StepInfo",
    "WithoutJacobian",
    "bind_terms",
    "effective_sample_size",
    "hasenbusch_hmc",
    "hasenbusch_levels",
    "metropolis_accept",
    "run_chain",
    "slhmc",
    "slhmc_hasenbusch",
]
