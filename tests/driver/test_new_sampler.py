"""A new sampler needs one module and one registration, nothing else.

Random-walk Metropolis for phi^4 is defined here alone, registered with its own options
dataclass, composed from the experiment files with overrides, run through the driver
into a store, SIGKILLed and resumed bit for bit, and it reproduces the exact free-field
propagator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import free_scalar_propagator
from lqcdml.assembly import build_action
from lqcdml.config import ConfigError, compose_experiment
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.specs import chain_spec
from lqcdml.identity import ensemble_hash
from lqcdml.kinds import SAMPLERS, SamplerKind
from lqcdml.kinds.samplers import sampler_options
from lqcdml.lattice import randn
from lqcdml.samplers import ChainState, StepInfo, metropolis_accept
from lqcdml.store import EnsembleStore

from ..cli.helpers import assert_same_chain, store_digest

NAME = "random_walk_test"


@dataclass
class RandomWalkOptions:
    step: float = 0.3


@dataclass(frozen=True)
class RandomWalkMetropolis:
    """Propose ``phi' = phi + width * N(0, 1)`` at every site at once; accept with
    ``min(1, exp(-(S' - S)))``."""

    action: object
    width: float

    def start(self, gens, default_start) -> ChainState:
        return ChainState.initial(default_start(gens), gens)

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]:
        gens = state.generators()
        x = state.fields
        proposal = x + self.width * randn(gens, x.shape[1:], x.dtype, x.device)
        delta = self.action.action(proposal) - self.action.action(x)
        accepted = metropolis_accept(delta, gens)
        fields = torch.where(accepted.reshape((-1,) + (1,) * (x.ndim - 1)), proposal, x)
        return state.advance(fields, gens, accepted), StepInfo.metropolis(delta, accepted)


def _build(ctx):
    return RandomWalkMetropolis(build_action(ctx.ensemble.theory), sampler_options(ctx.ensemble).step)


def _validate(ens, prefix):
    if not ens.sampler.options["step"] > 0:
        raise ConfigError(f"{prefix}sampler.options.step = {ens.sampler.options['step']!r}; allowed: > 0")


if NAME not in SAMPLERS:
    SAMPLERS.register(
        SamplerKind(
            name=NAME,
            build=_build,
            config=RandomWalkOptions,
            validate=_validate,
            theories=("phi4",),
            observable=lambda theory: ("phi_squared", lambda f: f.square().mean(dim=(1, 2))),
        )
    )

L, M2 = 4, 0.8
OVERRIDES = [
    f"ensembles.phi4_2d.sampler.name={NAME}",
    "+ensembles.phi4_2d.sampler.options.step=0.15",
    f"ensembles.phi4_2d.theory.lattice=[{L},{L}]",
    "ensembles.phi4_2d.theory.lam=0.0",
    f"ensembles.phi4_2d.theory.m2={M2}",
    "ensembles.phi4_2d.chain.n_chains=16",
    "ensembles.phi4_2d.chain.save_every=4",
    "ensembles.phi4_2d.chain.n_therm=20",
    "threads=1",
]


def _cfg(n_configs: int):
    return compose_experiment("quickstart", [*OVERRIDES, f"ensembles.phi4_2d.chain.n_configs={n_configs}"])


def test_the_sampler_is_configured_validated_and_hashed_like_a_built_in_one():
    cfg = _cfg(50)
    ens = cfg.ensembles["phi4_2d"]
    assert ens.sampler.options == {"step": 0.15}
    other = compose_experiment("quickstart", [*OVERRIDES, "ensembles.phi4_2d.sampler.options.step=0.2"])
    assert ensemble_hash(other.ensembles["phi4_2d"], "float64") != ensemble_hash(ens, "float64")
    # the HMC keys it does not read leave its chain hash alone
    more = compose_experiment("quickstart", [*OVERRIDES, "ensembles.phi4_2d.sampler.n_steps=99"])
    assert ensemble_hash(more.ensembles["phi4_2d"], "float64") == ensemble_hash(ens, "float64")
    with pytest.raises(ConfigError, match=r"sampler.options.step = -1.0; allowed: > 0"):
        compose_experiment("quickstart", [*OVERRIDES, "ensembles.phi4_2d.sampler.options.step=-1"])
    with pytest.raises(
        ConfigError,
        match=rf"sampler.options.stpe: unknown key 'stpe' of sampler.name = '{NAME}'; "
        r"allowed: step$",
    ):
        compose_experiment("quickstart", [*OVERRIDES, "+ensembles.phi4_2d.sampler.options.stpe=1"])
    with pytest.raises(ConfigError, match=rf"sampler.name = '{NAME}'; allowed: for theory.name = 'u1'"):
        compose_experiment("quickstart", [f"ensembles.u1_2d.sampler.name={NAME}"])


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from tests.driver import test_new_sampler as t
from lqcdml.driver.specs import chain_spec
from lqcdml.driver import run_chain_into_store
cfg = t._cfg({n})
run_chain_into_store(chain_spec(cfg, "phi4_2d", 1, store_path={store!r}), {store!r}, {n})
"""


def _n_committed(path: Path) -> int:
    try:
        return EnsembleStore.open(path).n_committed
    except Exception:  # noqa: BLE001 - not created yet, or mid-creation
        return 0


def test_a_registered_sampler_runs_resumes_after_sigkill_and_samples_the_free_field(tmp_path):
    n = 400
    cfg = _cfg(n)
    reference = tmp_path / "reference.zarr"
    run_chain_into_store(chain_spec(cfg, "phi4_2d", 1, store_path=reference), reference, n)

    killed = tmp_path / "killed.zarr"
    root = str(Path(__file__).resolve().parents[2])
    code = _CHILD.format(root=root, n=n, store=str(killed))
    for target in (60, 200):  # two kills mid-chain, then a run to the end
        proc = subprocess.Popen(
            [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.time() + 120
        while proc.poll() is None and _n_committed(killed) < target and time.time() < deadline:
            time.sleep(0.01)
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)
        err = proc.communicate()[1].decode()
        assert alive, err[-2000:]
        assert target <= _n_committed(killed) < n
    finish = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert_same_chain(store_digest(reference), store_digest(killed))

    # the exact free-field propagator G(r) = <phi_0 phi_r> along axis 0
    store = EnsembleStore.open(reference)
    fields = np.stack([store.read_fields(i) for i in range(store.n_committed)])[20:]  # [n, B, L, L]
    exact = free_scalar_propagator((L, L), M2)
    pulls = []
    for r in range(L // 2 + 1):
        g = (fields * np.roll(fields, -r, axis=2)).mean(axis=(2, 3))  # per configuration and chain
        est = estimate(g)
        pulls.append(est.pull(exact[r, 0]))
        assert est.error < 0.03 * exact[0, 0], (r, est)  # the test resolves G
    assert max(abs(p) for p in pulls) < 3.5, pulls
    # the cheap observable it declared is recorded beside the fields
    assert np.allclose(
        store.read_records("phi_squared"),
        np.square(np.stack([store.read_fields(i) for i in range(store.n_committed)])).mean(axis=(2, 3)),
        rtol=1e-12,
    )
    acc = store.read_records("accepted").mean()
    assert 0.2 < acc < 0.9, acc
