"""A 2D SU(2) flow through the platform's own pipeline: the ``su_equivariant`` model kind
composed from the config files, trained by the reverse-KL trainer (``driver.models``), sampled
by the ``flow`` sampler (independence Metropolis, exact) into a store by the driver; the chain's
plaquette against the exact finite-volume value of the character expansion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from lqcdml.analysis import estimate
from lqcdml.analysis.exact_sun_2d import su_n_2d_plaquette, su_n_2d_plaquette_susceptibility
from lqcdml.analysis.summary import plaquette_susceptibility_row
from lqcdml.config import compose_experiment
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.models import train_model
from lqcdml.driver.specs import chain_spec
from lqcdml.lattice import SU
from lqcdml.observables import plaquette
from lqcdml.store import EnsembleStore
from lqcdml.train import FlowTrainer

from ..helpers import interrupt_at_step
from .plugin_workflow import workflow_with

L, BETA = 4, 2.0
EXPERIMENT = f"""# @package _global_
defaults:
  - /theory@ensembles.su2flow.theory: su2_2d
  - /sampler@ensembles.su2flow.sampler: flow
  - /model@ensembles.su2flow.model: su_equivariant
  - /train@ensembles.su2flow.train: reverse_kl
  - /chain@ensembles.su2flow.chain: default
  - /measure@ensembles.su2flow.measure: default
experiment: su2flow
threads: 1
ensembles:
  su2flow:
    theory: {{lattice: [{L}, {L}], beta: {BETA}}}
    model: {{n_layers: 8, hidden: 8, bins: 6}}
    train: {{steps: 120, batch: 32, lr: 0.005, schedule: constant, dtype: float64, checkpoint_every: 60, ess_samples: 500}}
    chain: {{n_configs: 300, n_therm: 20, n_chains: 8, replicas: 1, seed: 5}}
    measure: {{observables: [plaquette]}}
"""


def test_su2_flow_trains_samples_exactly_and_matches_the_character_expansion(tmp_path, monkeypatch):
    conf = workflow_with(tmp_path / "wf", "su2flow", EXPERIMENT) / "conf"
    cfg = compose_experiment("su2flow", conf_dir=conf)
    model = tmp_path / "model.pt"
    summary = train_model(cfg, "su2flow", model)
    assert model.is_file() and summary
    # training stopped after its checkpoint at step 60 resumes from it to the same flow, bit for bit
    original = FlowTrainer.step
    interrupt_at_step(monkeypatch, FlowTrainer, 70)
    part = tmp_path / "part.pt"
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, "su2flow", part)
    assert torch.load(part, weights_only=True)["trainer"]["step"] == 60
    monkeypatch.setattr(FlowTrainer, "step", original)
    assert train_model(cfg, "su2flow", part)["resumed_from"] == 60
    whole, resumed = (torch.load(p, weights_only=True)["trainer"] for p in (model, part))
    assert whole["history"] == resumed["history"]
    assert all(torch.equal(v, resumed["model"][k]) for k, v in whole["model"].items())
    # sampling: a chain stopped halfway and resumed is the uninterrupted one
    store, halves = tmp_path / "s.zarr", tmp_path / "halves.zarr"
    n = cfg.ensembles["su2flow"].chain.n_configs
    run_chain_into_store(chain_spec(cfg, "su2flow", 1, model, store_path=store), store, n)
    run_chain_into_store(chain_spec(cfg, "su2flow", 1, model, store_path=halves), halves, n // 3)
    run_chain_into_store(chain_spec(cfg, "su2flow", 1, model, store_path=halves), halves, n)
    ens, split = EnsembleStore.open(store), EnsembleStore.open(halves)
    assert split.n_committed == n and np.array_equal(ens.read_records("accepted"), split.read_records("accepted"))
    assert all(np.array_equal(ens.read_fields(i), split.read_fields(i)) for i in (0, n // 3, n - 1))
    group = SU(2)
    plaq = np.stack([plaquette(torch.from_numpy(ens.read_fields(i)), group).numpy() for i in range(20, n)])
    est = estimate(plaq)
    exact = su_n_2d_plaquette(BETA, 2, L * L)
    assert abs(est.pull(exact)) < 4, (est, exact)
    assert est.error < 0.01
    # the plaquette susceptibility V (<p^2> - <p>^2), the summary's derived row, against its exact value
    ds = xr.Dataset(
        {"plaquette": (("config", "replica"), plaq)},
        coords={"config": np.arange(21, n + 1), "replica": np.arange(1, plaq.shape[1] + 1)},
    )
    theory = {"name": "su", "n_colors": 2, "lattice": [L, L], "beta": BETA, "fermion": "none"}
    row = plaquette_susceptibility_row("su2flow", ds, theory)
    assert row.reference == su_n_2d_plaquette_susceptibility(BETA, 2, L * L) and row.reference_error == 0
    assert abs(row.pull) < 4 and row.error < 0.1 * row.reference, row
    accepted = ens.read_records("accepted")[20:].mean()
    assert accepted > 0.1, accepted  # the trained flow's proposals are taken
