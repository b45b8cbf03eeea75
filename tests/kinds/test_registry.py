"""The catalogue: the allowed words come from the registered kinds, each kind owns its section
(an unknown key of a kind is refused naming the kind and its keys), and the chain hash covers
exactly what determines one replica's chain."""

import ast
import dataclasses
from pathlib import Path

import pytest

from lqcdml.config import ConfigError, compose_experiment
from lqcdml.identity import ensemble_hash
from lqcdml.kinds import ESTIMATORS, MODELS, OBSERVABLES, SAMPLERS, THEORIES, TRAINERS, SamplerKind, type_ensemble
from lqcdml.kinds.samplers import build_flow_mcmc

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
    SAMPLERS.register(
        SamplerKind(name="flow_alias_test", build=build_flow_mcmc, model_family="flow", theories=("phi4",))
    )
    try:
        base = compose_experiment("ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test"])
        h = ensemble_hash(base.ensembles["flow"], "float64")
        for override in ("model.n_layers=2", "train.steps=41", "train.seed=3"):
            other = compose_experiment(
                "ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test", f"ensembles.flow.{override}"]
            )
            assert ensemble_hash(other.ensembles["flow"], "float64") != h, override
        # keys its model kind does not have are refused, naming the kind and its keys
        with pytest.raises(
            ConfigError,
            match=r"^ensembles.flow.model.n_mix: unknown key 'n_mix' of model.kind = "
            r"'affine'; allowed: kind, n_layers, hidden, kernel, activation, "
            r"prior_scale$",
        ):
            compose_experiment(
                "ci_tiny", ["ensembles.flow.sampler.name=flow_alias_test", "+ensembles.flow.model.n_mix=3"]
            )
        # an HMC ensemble has no model section
        with pytest.raises(
            ConfigError,
            match=r"^ensembles.u1.model: a section for sampler.name = 'hmc', which uses "
            r"no trained model; allowed: leave it out",
        ):
            compose_experiment("ci_tiny", ["+ensembles.u1.model.n_layers=3"])
    finally:
        SAMPLERS.unregister("flow_alias_test")


@pytest.mark.parametrize(
    "package", ["samplers", "theories", "lattice", "driver", "config", "kinds", "assembly", "identity", "observables"]
)
def test_no_hasattr_probing_of_samplers_terms_operators_or_groups(package):
    for path in sorted((SRC / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr":
                raise AssertionError(f"{path.relative_to(SRC)}:{node.lineno} probes with hasattr")


@pytest.mark.parametrize(
    "section,key,kind",
    [
        ("theory", "m2", "theory.name = 'su'"),
        ("train", "schedule", "the trainer 'slhmc' of model.kind = 'stout'"),
        ("model", "hidden", "model.kind = 'stout'"),
        ("estimator", "networks", "estimator.kind = 'bias_corrected'"),
    ],
)
def test_each_kind_owns_its_section(section, key, kind):
    """A key of another kind's section is refused, naming this kind and its keys."""
    with pytest.raises(
        ConfigError,
        match=rf"^ensembles.nf4_slhmc.{section}.{key}: unknown key '{key}' of "
        rf"{kind.replace('(', '[(]').replace(')', '[)]')}; allowed: ",
    ):
        data = _paper_ensemble()
        data.setdefault(section, {})[key] = 1
        type_ensemble(data, "ensembles.nf4_slhmc")


def _paper_ensemble() -> dict:
    from lqcdml.config import to_container

    ens = compose_experiment("paper_slhmc_smoke").ensembles
    name = next(n for n, e in ens.items() if e.sampler.name == "slhmc")
    data = to_container(ens[name])
    data["estimator"] = {"kind": "bias_corrected", "features": ["plaquette"]}
    return data


def test_every_kind_declares_a_dataclass_of_its_section():
    for registry in (THEORIES, MODELS, TRAINERS, ESTIMATORS):
        for kind in registry:
            assert dataclasses.is_dataclass(kind.config), (registry.family, kind.name)
    for kind in SAMPLERS:
        assert kind.options is None or dataclasses.is_dataclass(kind.options), kind.name
    for kind in MODELS:
        assert kind.trainer in TRAINERS, kind.name
        assert kind.theories and all(t in THEORIES for t in kind.theories), kind.name
