from pathlib import Path

import pytest

from lqcdml.assembly import build_group, build_model, build_sampler, initial_fields, site_shape
from lqcdml.config import (
    ConfigError,
    compose,
    compose_experiment,
    config_dir,
    dump,
    expand_overrides,
    load,
    select_ensemble,
)
from lqcdml.identity import ensemble_hash
from lqcdml.kinds import SAMPLERS
from lqcdml.lattice import make_generators

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_validates_and_builds(experiment, tmp_path):
    cfg = compose_experiment(experiment)
    assert cfg.experiment == experiment and cfg.ensembles
    for ens in cfg.ensembles.values():
        gens = make_generators(0, ens.chain.n_chains)
        # samplers that need a model get an untrained one of the configured architecture
        model = build_model(ens) if SAMPLERS.lookup(ens.sampler.name).needs_model else None
        sampler = build_sampler(ens, model)
        group = build_group(ens.theory)
        fields = sampler.start(gens, lambda g: initial_fields(ens, g, group.default_dtype, "cpu")).fields
        assert tuple(fields.shape[1 : 1 + len(site_shape(ens.theory))]) == site_shape(ens.theory)
    dump(cfg, tmp_path / "c.yaml")
    assert load(tmp_path / "c.yaml") == cfg


def test_experiment_list_is_what_the_workflow_offers():
    assert {"quickstart", "ci_tiny"} <= set(EXPERIMENTS)


BAD = [
    (["ensembles.u1_2d.theory.beta=-1"], "ensembles.u1_2d.theory.beta = -1.0; allowed: beta > 0"),
    (["ensembles.u1_2d.theory.betta=1"], "unknown key 'betta' of theory.name = 'u1'; allowed: name, lattice, beta"),
    (["ensembles.u1_2d.theory.beta=abc"], "ensembles.u1_2d.theory.beta = 'abc'; allowed: a value of type float"),
    (["ensembles.su2_4d.theory.n_colors=4"], "n_colors = 4; allowed: 2 or 3"),
    (["ensembles.su2_4d.chain.n_configs=0"], "chain.n_configs = 0; allowed: n_configs >= 1"),
    (["ensembles.u1_2d.chain.n_therm=5000"], "n_therm = 5000; allowed: 0 <= n_therm <= n_configs - 5"),
    (["ensembles.u1_2d.sampler.integrator=rk4"], "sampler.integrator = 'rk4'; allowed: leapfrog, omelyan"),
    (["ensembles.u1_2d.theory.lattice=[8,1]"], "theory.lattice[1] = 1; allowed: extents >= 2"),
    (["ensembles.phi4_2d.theory.lam=-1"], "theory.lam = -1.0; allowed: lam >= 0"),
    (["ensembles.u1_2d.measure.observables=[plaquette,chi2]"], "observables[1] = 'chi2'; allowed: for u1"),
    (["dtype=float16"], "dtype = 'float16'; allowed: float64, float32"),
    (["device=tpu"], "device = 'tpu'; allowed: cpu, cuda or cuda:N"),
    (["nonsense=1"], "unknown key 'nonsense'; allowed: experiment, ensembles"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[b[0][0] for b in BAD])
def test_bad_values_name_key_value_and_rule(overrides, message):
    with pytest.raises(ConfigError) as info:
        compose_experiment("quickstart", overrides)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_unknown_experiment_lists_the_choices():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf" / "experiment"
    names = sorted(p.stem for p in conf.glob("*.yaml"))
    assert {"quickstart", "paper_ama", "paper_ama_smoke", "ci_tiny"} <= set(names)
    with pytest.raises(ConfigError) as err:
        compose(["+experiment=nope"])
    assert str(err.value) == f"experiment = 'nope'; allowed: {', '.join(names)}"


def test_no_experiment_means_no_ensemble():
    cfg = compose([])
    with pytest.raises(ConfigError, match="defines no ensembles"):
        select_ensemble(cfg, None)


def test_select_ensemble_and_short_overrides():
    cfg = compose_experiment("quickstart", expand_overrides(["theory.beta=2.5"], "u1_2d"))
    assert cfg.ensembles["u1_2d"].theory.beta == 2.5
    assert select_ensemble(cfg, "u1_2d")[0] == "u1_2d"
    with pytest.raises(ConfigError, match="--ensemble = 'x'; allowed: phi4_2d, su2_4d, u1_2d"):
        select_ensemble(cfg, "x")
    assert expand_overrides(["+experiment=a", "threads=1", "theory.beta=1"], "e") == [
        "+experiment=a",
        "threads=1",
        "ensembles.e.theory.beta=1",
    ]


def test_ensemble_hash_ignores_length_and_measurements_only():
    cfg = compose_experiment("quickstart")
    longer = compose_experiment(
        "quickstart", ["ensembles.u1_2d.chain.n_configs=5000", "ensembles.u1_2d.measure.observables=[plaquette]"]
    )
    hotter = compose_experiment("quickstart", ["ensembles.u1_2d.theory.beta=2.1"])
    h = ensemble_hash(cfg.ensembles["u1_2d"], "float64")
    assert ensemble_hash(longer.ensembles["u1_2d"], "float64") == h
    assert ensemble_hash(hotter.ensembles["u1_2d"], "float64") != h
    assert ensemble_hash(cfg.ensembles["u1_2d"], "float32") != h


def test_loading_missing_or_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="allowed: an existing resolved YAML file"):
        load(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("experiment: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a YAML mapping"):
        load(tmp_path / "list.yaml")
    assert isinstance(config_dir(), Path)
