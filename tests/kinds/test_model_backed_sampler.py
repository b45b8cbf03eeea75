"""A model-backed sampler with its own model kind, options and trainer: this file and three
registrations, nothing else.

Random-walk Metropolis for phi^4 whose step size is a trained model: the model kind holds one
learnable ``log step``, its trainer kind maximises the expected squared jump distance
``E[min(1, e^{-dS}) |x' - x|^2]`` on walkers it advances itself (resumable bit for bit), and
the sampler kind proposes ``x' = x + widen * step * z`` and accepts with the exact
``min(1, e^{-dS})`` (exact for any step). An experiment file composes it; ``lqcdml train``
trains it into a checkpoint, the driver samples with it into a store (SIGKILLed twice and
resumed to the uninterrupted chain bit for bit), the chain reproduces the exact free-field
``<phi^2>``, and the Snakemake DAG of the experiment builds (dry run), its jobs finding these
kinds through ``LQCDML_PLUGINS``.
"""

from __future__ import annotations

import math
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
from torch import nn

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import free_scalar_propagator
from lqcdml.config import ModelConfig, TrainConfig, compose_experiment, dump
from lqcdml.config.errors import fail
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.specs import chain_spec
from lqcdml.identity import ensemble_hash, training_hash
from lqcdml.kinds import MODELS, SAMPLERS, TRAINERS, ModelKind, SamplerKind, TrainerKind, theory_kind
from lqcdml.lattice import randn
from lqcdml.samplers import ChainState, StepInfo, metropolis_accept
from lqcdml.store import EnsembleStore

from ..cli.helpers import BIN, REPO, assert_same_chain, store_digest
from .plugin_workflow import plugin_env, workflow_with

MODEL, TRAINER, SAMPLER = "step_size_test", "jump_distance_test", "trained_walk_test"
PLUGIN = "tests.kinds.test_model_backed_sampler"


# --- the model kind -------------------------------------------------------------------------


@dataclass
class StepSizeModel(ModelConfig):
    """``init_log_step``: the step size's logarithm before training."""

    kind: str = MODEL
    init_log_step: float = -2.0


class StepSize(nn.Module):
    """One learnable step size ``exp(log_step)``."""

    def __init__(self, init_log_step: float) -> None:
        super().__init__()
        self.log_step = nn.Parameter(torch.tensor(float(init_log_step), dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        return torch.exp(self.log_step)


def _model_checks(ens, p: str) -> None:
    if not abs(ens.model.init_log_step) < 10:
        fail(p + "model.init_log_step", ens.model.init_log_step, "|init_log_step| < 10")


# --- the trainer kind -----------------------------------------------------------------------


@dataclass
class JumpDistanceTrain(TrainConfig):
    """Adam at ``lr`` on minus the expected squared jump distance of ``batch`` walkers."""

    steps: int = 200
    batch: int = 64
    lr: float = 0.05


class JumpDistanceTrainer:
    """Maximises ``E[min(1, e^{-dS}) |x' - x|^2]`` over the step size (reparametrised
    proposals) while advancing ``batch`` random-walk walkers; resumable bit for bit."""

    def __init__(self, model: StepSize, action, shape: tuple[int, ...], batch: int, lr: float, seed: int) -> None:
        self.model, self.action = model, action
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.walkers = 0.5 * torch.randn((batch, *shape), generator=self.generator, dtype=torch.float64)
        self.step_count = 0
        self.history: dict[str, list[float]] = {"loss": [], "acceptance": []}

    def step(self) -> float:
        x = self.walkers
        z = torch.randn(x.shape, generator=self.generator, dtype=x.dtype)
        proposal = x + self.model() * z
        accept = torch.exp(-(self.action.action(proposal) - self.action.action(x))).clamp(max=1.0)
        loss = -(accept * (proposal - x).square().reshape(len(x), -1).mean(dim=1)).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        u = torch.rand(len(x), generator=self.generator, dtype=x.dtype)
        keep = (u < accept.detach()).reshape((-1,) + (1,) * (x.ndim - 1))
        self.walkers = torch.where(keep, proposal.detach(), x)
        self.step_count += 1
        self.history["loss"].append(float(loss))
        self.history["acceptance"].append(float(accept.mean()))
        return float(loss)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "walkers": self.walkers,
            "step_count": self.step_count,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.walkers = state["walkers"]
        self.step_count, self.history = int(state["step_count"]), {k: list(v) for k, v in state["history"].items()}


def _build_trainer(ens, device, source):
    from lqcdml.kinds.trainers import initial_model

    th, tr = ens.theory, ens.train
    return JumpDistanceTrainer(
        initial_model(ens, device), theory_kind(th).action(th), tuple(th.lattice), tr.batch, tr.lr, tr.seed
    )


def _evaluate(ens, trainer, source, device) -> dict:
    return {"step": float(trainer.model()), "final_acceptance": float(np.mean(trainer.history["acceptance"][-20:]))}


# --- the sampler kind -----------------------------------------------------------------------


@dataclass
class TrainedWalkOptions:
    """``widen``: proposals with the trained step times ``widen`` (exact for any value)."""

    widen: float = 1.0


@dataclass(frozen=True)
class TrainedWalk:
    """Random-walk Metropolis ``x' = x + widen * step * z`` with the trained step."""

    model: StepSize
    action: object
    widen: float

    def start(self, gens, default_start) -> ChainState:
        return ChainState.initial(default_start(gens), gens)

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]:
        gens = state.generators()
        x = state.fields
        with torch.no_grad():
            width = self.widen * self.model().to(x.dtype)
            proposal = x + width * randn(gens, x.shape[1:], x.dtype, x.device)
            delta = self.action.action(proposal) - self.action.action(x)
        accepted = metropolis_accept(delta, gens)
        fields = torch.where(accepted.reshape((-1,) + (1,) * (x.ndim - 1)), proposal, x)
        return state.advance(fields, gens, accepted), StepInfo.metropolis(delta, accepted)


def _build_sampler(ctx):
    th = ctx.ensemble.theory
    return TrainedWalk(ctx.model, theory_kind(th).action(th), float(ctx.ensemble.sampler.options["widen"]))


def _sampler_checks(ens, p: str) -> None:
    if not ens.sampler.options["widen"] > 0:
        fail(p + "sampler.options.widen", ens.sampler.options["widen"], "widen > 0")


# --- the three registrations ----------------------------------------------------------------

if MODEL not in MODELS:
    TRAINERS.register(
        TrainerKind(
            name=TRAINER,
            config=JumpDistanceTrain,
            build=_build_trainer,
            evaluate=_evaluate,
            hashed=("steps", "batch", "lr", "seed"),
            doc="expected squared jump distance of a random walk (test)",
        )
    )
    MODELS.register(
        ModelKind(
            name=MODEL,
            config=StepSizeModel,
            theory="phi4",
            validate=_model_checks,
            family="step_size_test",
            trainer=TRAINER,
            build=lambda ens: StepSize(ens.model.init_log_step),
            doc="one learnable step size (test)",
        )
    )
    SAMPLERS.register(
        SamplerKind(
            name=SAMPLER,
            config=TrainedWalkOptions,
            build=_build_sampler,
            validate=_sampler_checks,
            model_family="step_size_test",
            theories=("phi4",),
            doc="random-walk Metropolis with a trained step (test)",
        )
    )

L, M2 = 4, 0.8
EXPERIMENT = f"""# @package _global_
defaults:
  - /theory@ensembles.walk.theory: phi4_2d
  - /sampler@ensembles.walk.sampler: hmc
  - /chain@ensembles.walk.chain: default
  - /measure@ensembles.walk.measure: default
experiment: trained_walk
threads: 1
ensembles:
  walk:
    theory: {{lattice: [{L}, {L}], lam: 0.0, m2: {M2}}}
    sampler: {{name: {SAMPLER}, options: {{widen: 1.1}}}}
    model: {{kind: {MODEL}, init_log_step: -2.0}}
    train: {{steps: 200, batch: 64, lr: 0.05, seed: 3, checkpoint_every: 50}}
    chain: {{n_configs: 400, save_every: 4, n_therm: 20, n_chains: 16, seed: 7}}
    measure: {{observables: [phi2]}}
"""


@pytest.fixture(scope="module")
def conf(tmp_path_factory) -> Path:
    """The repository's workflow and config with the experiment file added."""
    return workflow_with(tmp_path_factory.mktemp("workflow"), "trained_walk", EXPERIMENT) / "conf"


def _env() -> dict:
    return plugin_env(PLUGIN)


def test_the_kinds_compose_validate_and_hash(conf):
    cfg = compose_experiment("trained_walk", conf_dir=conf)
    ens = cfg.ensembles["walk"]
    assert isinstance(ens.model, StepSizeModel) and isinstance(ens.train, JumpDistanceTrain)
    assert ens.sampler.options == {"widen": 1.1}
    for override in ("model.init_log_step=-1", "train.lr=0.01", "sampler.options.widen=1.3"):
        other = compose_experiment("trained_walk", [f"ensembles.walk.{override}"], conf)
        assert ensemble_hash(other.ensembles["walk"], "float64") != ensemble_hash(ens, "float64"), override
    checkpointing = compose_experiment("trained_walk", ["ensembles.walk.train.checkpoint_every=7"], conf)
    assert training_hash(checkpointing.ensembles["walk"]) == training_hash(ens)  # not a hashed training key
    from lqcdml.config import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"^ensembles.walk.train.schedule: unknown key 'schedule' of the trainer "
        rf"'{TRAINER}' of model.kind = '{MODEL}'; allowed: ",
    ):
        compose_experiment("trained_walk", ["+ensembles.walk.train.schedule=cosine"], conf)
    with pytest.raises(ConfigError, match=r"^ensembles.walk.sampler.options.widen = -1.0; allowed: widen > 0$"):
        compose_experiment("trained_walk", ["ensembles.walk.sampler.options.widen=-1"], conf)
    with pytest.raises(
        ConfigError,
        match=rf"^ensembles.walk.model.kind = 'affine'; allowed: {MODEL} for "
        r"theory.name = 'phi4' and sampler.name",
    ):
        compose_experiment(
            "trained_walk", ["~ensembles.walk.model.init_log_step", "ensembles.walk.model.kind=affine"], conf
        )


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from tests.kinds import test_model_backed_sampler as t
from lqcdml.config import load
from lqcdml.driver.specs import chain_spec
from lqcdml.driver import run_chain_into_store
cfg = load({config!r})
run_chain_into_store(chain_spec(cfg, "walk", 1, {model!r}, store_path={store!r}), {store!r}, {n})
"""


def _n_committed(path: Path) -> int:
    try:
        return EnsembleStore.open(path).n_committed
    except Exception:  # noqa: BLE001 - not created yet, or mid-creation
        return 0


def test_trains_samples_resumes_after_sigkill_and_is_exact(conf, tmp_path):
    cfg = compose_experiment("trained_walk", conf_dir=conf)
    config = tmp_path / "config.yaml"
    dump(cfg, config)
    model = tmp_path / "model.pt"
    train = subprocess.run(
        [
            str(BIN / "lqcdml"),
            "train",
            "--config",
            str(config),
            "--ensemble",
            "walk",
            "--checkpoint",
            str(model),
            "--manifest",
            str(tmp_path / "model.json"),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr
    # the trained step left its start (exp(-2) = 0.135) for one that moves the walk
    exact = float(free_scalar_propagator((L, L), M2)[0, 0])
    step = math.exp(float(torch.load(model, weights_only=True)["trainer"]["model"]["log_step"]))
    assert 1.2 * math.exp(-2.0) < step < 1.0, step

    n = cfg.ensembles["walk"].chain.n_configs
    reference = tmp_path / "reference.zarr"
    run_chain_into_store(chain_spec(cfg, "walk", 1, model, store_path=reference), reference, n)
    killed = tmp_path / "killed.zarr"
    code = _CHILD.format(root=str(REPO), config=str(config), model=str(model), store=str(killed), n=n)
    for target in (50, 200):  # two kills mid-chain, then a run to the end
        proc = subprocess.Popen(
            [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 300
        while _n_committed(killed) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finish = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    assert_same_chain(store_digest(reference), store_digest(killed))

    store = EnsembleStore.open(reference)
    phi2 = np.stack([(store.read_fields(i) ** 2).mean(axis=(1, 2)) for i in range(20, n)])  # [configs, chains]
    est = estimate(phi2)
    assert abs(est.value - exact) < 4 * est.error, (est.value, est.error, exact)
    assert est.error < 0.03 * exact
    accepted = store.read_records("accepted")[20:].mean()
    assert 0.1 < accepted < 0.9, accepted  # the trained step moves the chain


def test_the_dag_of_an_experiment_using_it_builds(conf, tmp_path):
    root = conf.parent
    out = subprocess.run(
        [
            str(BIN / "snakemake"),
            "-s",
            str(root / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            "--config",
            "experiment=trained_walk",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for rule in ("compose_config", "train", "generate", "measure", "analyze"):
        assert f"rule {rule}:" in out.stdout or f"localrule {rule}:" in out.stdout, rule
