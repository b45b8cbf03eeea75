"""Markov-chain samplers: integrators, HMC, explicit chain states."""

from .chain import Sampler, run_chain
from .flow_mcmc import FlowMCMC, effective_sample_size
from .hmc import HMC, HMCInfo, metropolis_accept
from .integrators import OMELYAN_LAMBDA, SCHEMES, Integrator, Level
from .state import ChainState

__all__ = [
    "FlowMCMC",
    "HMC",
    "OMELYAN_LAMBDA",
    "SCHEMES",
    "ChainState",
    "HMCInfo",
    "Integrator",
    "Level",
    "Sampler",
    "effective_sample_size",
    "metropolis_accept",
    "run_chain",
]
