"""Field-transformed HMC through the platform's own pipeline: the ``masked_stout`` model kind
composed from the config files, trained by reverse KL (``driver.models``), and the ``fthmc``
sampler writing a store through the driver; a chain stopped half-way continues from the store's
checkpoint (the transform's variables ``V`` travel in the chain state) to the uninterrupted
chain bit for bit; the plaquette and charge against the exact 2D U(1) values."""

from __future__ import annotations

import numpy as np
import torch

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import u1_2d_plaquette
from lqcdml.config import compose_experiment
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.models import train_model
from lqcdml.driver.specs import chain_spec
from lqcdml.lattice import U1
from lqcdml.observables import plaquette
from lqcdml.store import EnsembleStore

from .plugin_workflow import workflow_with

L, BETA = 8, 2.0
EXPERIMENT = f"""# @package _global_
defaults:
  - /theory@ensembles.ft.theory: u1_2d
  - /sampler@ensembles.ft.sampler: fthmc
  - /model@ensembles.ft.model: masked_stout
  - /train@ensembles.ft.train: reverse_kl
  - /chain@ensembles.ft.chain: default
  - /measure@ensembles.ft.measure: default
experiment: ft
threads: 1
ensembles:
  ft:
    theory: {{lattice: [{L}, {L}], beta: {BETA}}}
    sampler: {{n_steps: 5}}
    model: {{n_layers: 4}}
    train: {{steps: 40, batch: 16, lr: 0.02, schedule: constant, dtype: float64, checkpoint_every: 20, ess_samples: 128}}
    chain: {{n_configs: 60, n_therm: 10, n_chains: 4, replicas: 1, seed: 8}}
    measure: {{observables: [plaquette]}}
"""


def test_fthmc_trains_its_transform_samples_exactly_and_resumes_bit_for_bit(tmp_path):
    conf = workflow_with(tmp_path / "wf", "ft", EXPERIMENT) / "conf"
    cfg = compose_experiment("ft", conf_dir=conf)
    model = tmp_path / "model.pt"
    assert train_model(cfg, "ft", model) and model.is_file()
    n = cfg.ensembles["ft"].chain.n_configs
    whole, halves = tmp_path / "whole.zarr", tmp_path / "halves.zarr"
    run_chain_into_store(chain_spec(cfg, "ft", 1, model, store_path=whole), whole, n)
    run_chain_into_store(chain_spec(cfg, "ft", 1, model, store_path=halves), halves, n // 2)
    run_chain_into_store(chain_spec(cfg, "ft", 1, model, store_path=halves), halves, n)
    a, b = EnsembleStore.open(whole), EnsembleStore.open(halves)
    assert a.n_committed == b.n_committed == n
    assert all(np.array_equal(a.read_fields(i), b.read_fields(i)) for i in (0, n // 2, n - 1))
    assert np.array_equal(a.read_records("delta_H"), b.read_records("delta_H"))
    group = U1()
    plaq = np.stack([plaquette(torch.from_numpy(a.read_fields(i)), group).numpy() for i in range(10, n)])
    est = estimate(plaq)
    exact = u1_2d_plaquette(BETA, L * L)
    assert abs(est.pull(exact)) < 4 and est.error < 0.025, (est, exact)
    assert a.read_records("accepted")[10:].mean() > 0.5
