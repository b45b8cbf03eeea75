"""The ``hasenbusch`` sampler kind through the platform: composed from the config files, built
into its nested levels, written to a store by the driver (a chain stopped half-way continues to
the uninterrupted one bit for bit), and bad options refused with the key, value and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from lqcdml.config import ConfigError, compose_experiment
from lqcdml.driver import run_chain_into_store
from lqcdml.driver.specs import chain_spec
from lqcdml.store import EnsembleStore
from lqcdml.theories import StaggeredPseudofermion, StaggeredRatio, WilsonGaugeAction

from .plugin_workflow import workflow_with

EXPERIMENT = """# @package _global_
defaults:
  - /theory@ensembles.hb.theory: su2_4d_staggered
  - /sampler@ensembles.hb.sampler: hasenbusch
  - /chain@ensembles.hb.chain: default
  - /measure@ensembles.hb.measure: default
experiment: hb
threads: 1
ensembles:
  hb:
    theory: {lattice: [4, 2, 2, 2], beta: 2.0, fermion_mass: 0.1, n_flavours: 6}
    sampler: {n_steps: 2, gauge_steps: 2, options: {masses: [0.3, 0.6], steps: [1, 1]}}
    chain: {n_configs: 6, n_therm: 0, n_chains: 2, replicas: 1, seed: 8}
    measure: {observables: [plaquette]}
"""


def _conf(tmp_path):
    return workflow_with(tmp_path / "wf", "hb", EXPERIMENT) / "conf"


def test_config_builds_the_levels_and_the_store_resumes_bit_for_bit(tmp_path):
    conf = _conf(tmp_path)
    cfg = compose_experiment("hb", conf_dir=conf)
    spec = chain_spec(cfg, "hb", 1, None, store_path=tmp_path / "a.zarr")
    levels = spec.sampler.integrator.levels
    assert [lv.n_steps for lv in levels] == [2, 1, 1, 2]
    # Nf = 6: an even-site field (4) and a rooted one (2), each split at 0.3 and 0.6
    assert [(type(t), t.n_flavours) for t in levels[0].terms] == [(StaggeredRatio, 4), (StaggeredRatio, 2)]
    assert [(type(t), t.operator.mass) for t in levels[2].terms] == [(StaggeredPseudofermion, 0.6)] * 2
    assert isinstance(levels[3].terms[0], WilsonGaugeAction)
    n = cfg.ensembles["hb"].chain.n_configs
    whole, halves = tmp_path / "whole.zarr", tmp_path / "halves.zarr"
    run_chain_into_store(chain_spec(cfg, "hb", 1, None, store_path=whole), whole, n)
    run_chain_into_store(chain_spec(cfg, "hb", 1, None, store_path=halves), halves, n // 2)
    run_chain_into_store(chain_spec(cfg, "hb", 1, None, store_path=halves), halves, n)
    a, b = EnsembleStore.open(whole), EnsembleStore.open(halves)
    assert a.n_committed == b.n_committed == n
    assert all(np.array_equal(a.read_fields(i), b.read_fields(i)) for i in (0, n - 1))
    assert np.array_equal(a.read_records("cg_md"), b.read_records("cg_md"))
    assert a.read_records("cg_md").min() > 0


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "ensembles.hb.sampler.options.masses=[0.6,0.3]",
            r"ensembles.hb.sampler.options.masses = \[0.6, 0.3\]; allowed: a non-empty list of numbers, "
            r"strictly increasing, all above theory.fermion_mass = 0.1",
        ),
        ("ensembles.hb.sampler.options.masses=[0.05]", r"masses = \[0.05\]; allowed: .*above theory.fermion_mass"),
        ("ensembles.hb.sampler.options.masses=[]", r"masses = \[\]; allowed: a non-empty list"),
        (
            "ensembles.hb.sampler.options.steps=[1]",
            r"ensembles.hb.sampler.options.steps = \[1\]; allowed: one integer >= 1 per Hasenbusch mass \(2\)",
        ),
        ("ensembles.hb.sampler.options.steps=[1,0]", r"steps = \[1, 0\]; allowed: one integer >= 1"),
        (
            "ensembles.hb.theory.n_flavours=0",
            r"ensembles.hb.theory.fermion = 'staggered'; allowed: staggered or wilson",
        ),
        ("+ensembles.hb.sampler.options.mass=[0.3]", r"unknown key 'mass'"),
        (
            "ensembles.hb.sampler.md_solver_tol=0",
            r"ensembles.hb.sampler.md_solver_tol = 0.0; allowed: 0 < md_solver_tol < 1, or null \(solver_tol\)",
        ),
        ("ensembles.hb.sampler.md_solver_tol=1.5", r"md_solver_tol = 1.5; allowed: 0 < md_solver_tol < 1"),
    ],
)
def test_bad_options_are_refused_with_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        compose_experiment("hb", [override], conf_dir=_conf(tmp_path))


def test_the_molecular_dynamics_residual_reaches_every_fermion_force_and_the_chain_hash(tmp_path):
    """``sampler.md_solver_tol``: every fermion level's forces solve to it, heat bath and
    Metropolis keep ``solver_tol``; it is part of the chain (left out of the hash when unset,
    so that stores written before it existed stay valid: tests/identity)."""
    from lqcdml.identity import ensemble_hash

    conf = _conf(tmp_path)
    cfg = {
        tol: compose_experiment("hb", [f"ensembles.hb.sampler.md_solver_tol={tol}"], conf_dir=conf)
        for tol in ("null", "1e-6")
    }
    for tol, expected in (("null", None), ("1e-6", 1e-6)):
        levels = chain_spec(cfg[tol], "hb", 1, None, store_path=tmp_path / "a.zarr").sampler.integrator.levels
        terms = [t for lv in levels[:3] for t in lv.terms]
        assert len(terms) == 6 and all(t.force_tol == expected and t.tol == 1e-10 for t in terms)
    hashes = {tol: ensemble_hash(c.ensembles["hb"], c.dtype) for tol, c in cfg.items()}
    assert hashes["null"] == ensemble_hash(compose_experiment("hb", conf_dir=conf).ensembles["hb"], "float64")
    assert hashes["1e-6"] != hashes["null"]


RATIO_EXPERIMENT = """# @package _global_
defaults:
  - /theory@ensembles.thin.theory: su2_4d_staggered
  - /sampler@ensembles.thin.sampler: slhmc_hasenbusch_thin
  - /chain@ensembles.thin.chain: default
  - /measure@ensembles.thin.measure: default
  - /theory@ensembles.net.theory: su2_4d_staggered
  - /sampler@ensembles.net.sampler: slhmc_hasenbusch
  - /model@ensembles.net.model: stout
  - /train@ensembles.net.train: slhmc_online
  - /chain@ensembles.net.chain: default
  - /measure@ensembles.net.measure: default
experiment: hbr
threads: 1
ensembles:
  thin:
    theory: {lattice: [4, 2, 2, 2], beta: 2.0, fermion_mass: 0.1}
    sampler: {n_steps: 3, gauge_steps: 1, options: {m_eff: 0.25, masses: [0.5], steps: [1]}}
    chain: {n_configs: 6, n_therm: 0, n_chains: 2, replicas: 1, seed: 9}
    measure: {observables: [plaquette]}
  net:
    theory: {lattice: [4, 2, 2, 2], beta: 2.0, fermion_mass: 0.1}
    sampler: {n_steps: 3, gauge_steps: 1, options: {m_eff: 0.25, masses: [0.5], steps: [1]}}
    train: {source: "", steps: 2}
    chain: {n_configs: 6, n_therm: 0, n_chains: 2, replicas: 1, seed: 10}
    measure: {observables: [plaquette]}
"""


def test_slhmc_on_the_ratio_through_the_config(tmp_path):
    from lqcdml.kinds import SAMPLERS
    from lqcdml.samplers import SmearedPseudofermion

    conf = workflow_with(tmp_path / "wf", "hbr", RATIO_EXPERIMENT) / "conf"
    cfg = compose_experiment("hbr", conf_dir=conf)
    spec = chain_spec(cfg, "thin", 1, None, store_path=tmp_path / "thin.zarr")
    (eff,) = spec.sampler.integrator.levels[0].terms
    assert isinstance(eff, SmearedPseudofermion) and eff.smear is None
    assert (eff.base.operator.mass, eff.base.heavy_mass) == (0.25, 0.5)
    run_chain_into_store(spec, tmp_path / "thin.zarr", 6)
    assert EnsembleStore.open(tmp_path / "thin.zarr").n_committed == 6
    # the trainer regresses the lightest ratio: exact at m, effective at m_eff, heavy 0.5
    exact, effective = SAMPLERS.lookup("slhmc_hasenbusch").mismatch_terms(cfg.ensembles["net"])
    assert [(t.operator.mass, t.heavy_mass) for t in exact] == [(0.1, 0.5)]
    assert [(t.operator.mass, t.heavy_mass) for t in effective] == [(0.25, 0.5)]
    # online training (two trajectories) and a chain with the trained network
    from lqcdml.driver.models import train_model

    model = tmp_path / "net.pt"
    assert train_model(cfg, "net", model) and model.is_file()
    run_chain_into_store(chain_spec(cfg, "net", 1, model, store_path=tmp_path / "net.zarr"), tmp_path / "net.zarr", 6)
    assert EnsembleStore.open(tmp_path / "net.zarr").read_records("cg_md").min() > 0
    with pytest.raises(
        ConfigError, match=r"ensembles.net.sampler.options.m_eff = 0.6; allowed: theory.fermion_mass < m_eff"
    ):
        compose_experiment("hbr", ["ensembles.net.sampler.options.m_eff=0.6"], conf_dir=conf)
