"""Trajectory-length jitter: a fixed length resonant with a harmonic mode freezes it; a jittered
length mixes it, and the chain stays exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.theories import Phi4Action

# 1D free field of 4 sites, m^2 = 1/4: the zero mode has omega = 1/2; tau = 4 pi turns it once
M2, L = 0.25, 4
TAU = 2 * math.pi / math.sqrt(M2)


def chain(jitter: float, n_traj: int = 300):
    action = Phi4Action(m2=M2, lam=0.0, convention="standard")
    hmc = HMC(Integrator.single(action, 60, "omelyan"), TAU, trajectory_jitter=jitter)
    start = torch.randn(32, L, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, rec = run_chain(hmc, hmc.init(start, 7), n_traj, lambda phi: phi.mean(dim=1), n_skip=20)
    return rec["value"].numpy(), rec["accepted"].double().mean().item()  # [n_traj, 32]


def lag1(x: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    return float((x[1:] * x[:-1]).mean() / (x * x).mean())


def test_a_resonant_fixed_length_freezes_the_zero_mode_and_jitter_mixes_it():
    fixed, _ = chain(0.0)
    jittered, acc = chain(0.3)
    assert lag1(fixed) > 0.95  # the zero mode comes back to where it started
    assert lag1(jittered) < 0.6
    assert acc > 0.9
    # exact <phibar^2> = 1 / (V m^2) for S = 1/2 phi (-Laplacian + m^2) phi
    est = estimate(jittered**2)
    assert abs(est.value - 1.0 / (L * M2)) < 4 * est.error


def test_jitter_out_of_range_is_refused():
    action = Phi4Action(m2=M2, lam=0.0, convention="standard")
    with pytest.raises(ValueError, match="trajectory_jitter = 1.0; allowed: 0 <= jitter < 1"):
        HMC(Integrator.single(action, 4, "omelyan"), 1.0, trajectory_jitter=1.0)
