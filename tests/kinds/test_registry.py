"""Registries and hashes: the allowed words come from the registered kinds; the chain hash
covers exactly what determines one replica's chain."""

import ast
from pathlib import Path

import pytest

from lqcdml.config import MODELS, OBSERVABLES, SAMPLERS, ConfigError, SamplerKind, compose_experiment, ensemble_hash
from lqcdml.config.samplers import build_flow_mcmc

SRC = Path(__file__).resolve().parents[2] / "src" / "lqcdml"


def test_allowed_words_come_from_the_registries():
    assert set(SAMPLERS.names()) >= {"hmc", "flow", "slhmc", "slhmc_thin"}
    assert set(MODELS.names()) >= {"affine", "u1_equivariant", "u1_plaquette", "stout", "cask"}
    assert "gradient_flow" in OBSERVABLES and "flow" not in OBSERVABLES
    with pytest.raises(ConfigError, match=r"ensembles.u1.sampler.name = 'nuts'; allowed: hmc, slhmc, slhmc_thin, flow"):
        compose_experiment("ci_tiny", ["ensembles.u1.sampler.name=nuts"])
    with pytest.raises(ConfigError, match=r"ensembles.flow.model.kind = 'glow'; allowed: affine, u1_equivariant"):
        compose_experiment("ci_tiny", ["ensembles.flow.model.kind=glow"])


def test_the_chain_hash_leaves_out_replicas_length_and_measurements():
    base = compose_experiment("ci_tiny")
    h = ensemble_hash(base.ensembles["u1"], "float64")
    for override in ("chain.replicas=7", "chain.n_configs=500", "chain.n_therm=9", "measure.n_noise=9"):
        other = compose_experiment("ci_tiny", [f"ensembles.u1.{override}"])
        assert ensemble_hash(other.ensembles["u1"], "float64") == h, override
    for override in ("chain.seed=4", "chain.n_chains=3", "chain.save_every=2", "sampler.n_steps=5", "theory.beta=2.2"):
        other = compose_experiment("ci_tiny", [f"ensembles.u1.{override}"])
        assert ensemble_hash(other.ensembles["u1"], "float64") != h, override


def test_a_model_using_sampler_of_any_name_has_model_and_training_in_its_chain_hash():
    SAMPLERS.register(SamplerKind("flow_alias_test", build_flow_mcmc, needs_model=True, theories=("phi4",)))
    try:
        base = compose_experiment("ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test"])
        h = ensemble_hash(base.ensembles["flow"], "float64")
        for override in ("model.n_layers=2", "train.steps=41", "train.seed=3"):
            other = compose_experiment("ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test",
                                                   f"ensembles.flow.{override}"])
            assert ensemble_hash(other.ensembles["flow"], "float64") != h, override
        # model keys its kind does not read stay out
        other = compose_experiment("ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test",
                                               "ensembles.flow.model.n_mix=3"])
        assert ensemble_hash(other.ensembles["flow"], "float64") == h
        # an HMC ensemble's model section is not part of its chain
        u1 = compose_experiment("ci_tiny", ["ensembles.u1.model.n_layers=3"])
        assert ensemble_hash(u1.ensembles["u1"], "float64") == ensemble_hash(
            compose_experiment("ci_tiny").ensembles["u1"], "float64")
    finally:
        SAMPLERS.unregister("flow_alias_test")


@pytest.mark.parametrize("package", ["samplers", "theories", "lattice", "driver", "config", "observables"])
def test_no_hasattr_probing_of_samplers_terms_operators_or_groups(package):
    for path in sorted((SRC / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr":
                raise AssertionError(f"{path.relative_to(SRC)}:{node.lineno} probes with hasattr")
