"""Chain and training hashes: stable across releases that add config keys."""

from lqcdml.config import compose_experiment
from lqcdml.identity.hashes import ensemble_hash, training_hash

#: the hashes of ci_tiny's chains as lqcdml wrote them before chain.start_from, the SLHMC
#: model keys (loops, extent) and training keys (method, source, loss, probe) existed: stores
#: and checkpoints written then must still be recognised
PINNED = {
    "flow": ("b86c1626cb04648e", "8ad28f9eb7c73a0f"),
    "stag": ("5b6902292a9e14e0", None),
    "su2": ("3a72fc7e4a50f479", None),
    "u1": ("f798783773971274", None),
    "u1flow": ("2e42d76d2db0dde0", "41ba476eadd215eb"),
}


def test_existing_chain_and_training_hashes_survive_added_keys():
    cfg = compose_experiment("ci_tiny", [])
    for name, (chain, training) in PINNED.items():
        ens = cfg.ensembles[name]
        assert ensemble_hash(ens, cfg.dtype) == chain, name
        if training is not None:
            assert training_hash(ens) == training, name


def test_start_from_and_slhmc_settings_are_part_of_their_hashes():
    base = compose_experiment("ci_slhmc", [])
    variants = {
        "start_from": compose_experiment("ci_slhmc", ["ensembles.thin.chain.start_from=''"]),
        "m_eff": compose_experiment("ci_slhmc", ["ensembles.thin.sampler.options.m_eff=0.6"]),
    }
    assert ensemble_hash(variants["start_from"].ensembles["thin"], "float64") != ensemble_hash(
        base.ensembles["thin"], "float64"
    )
    assert ensemble_hash(variants["m_eff"].ensembles["thin"], "float64") != ensemble_hash(
        base.ensembles["thin"], "float64"
    )
    # the trained network depends on m_eff and on the training loss
    other_m = compose_experiment("ci_slhmc", ["ensembles.stout.sampler.options.m_eff=0.6"])
    plain = compose_experiment("ci_slhmc", ["ensembles.stout.train.loss=plain"])
    probe = compose_experiment("ci_slhmc", ["ensembles.stout.train.probe=4"])
    h = training_hash(base.ensembles["stout"])
    assert training_hash(other_m.ensembles["stout"]) != h and training_hash(plain.ensembles["stout"]) != h
    assert training_hash(probe.ensembles["stout"]) == h  # the probe judges the model, it does not make it


def test_trajectory_jitter_and_the_estimator_in_the_chain_hash():
    """The jitter changes the chain (hashed when non-zero, left out at 0: old stores stay valid);
    the estimator section never touches the chain."""
    base = compose_experiment("ci_tiny", [])
    zero = compose_experiment("ci_tiny", ["+ensembles.u1.sampler.options.trajectory_jitter=0.0"])
    some = compose_experiment("ci_tiny", ["+ensembles.u1.sampler.options.trajectory_jitter=0.2"])
    est = compose_experiment(
        "ci_tiny", ["ensembles.u1.estimator.kind=control_variate", "ensembles.u1.estimator.n_train=[20]"]
    )
    h = lambda c: ensemble_hash(c.ensembles["u1"], c.dtype)  # noqa: E731
    assert h(zero) == h(base) == PINNED["u1"][0]
    assert h(some) != h(base)
    assert h(est) == h(base)
