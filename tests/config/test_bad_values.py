"""Bad values stop before any work: unknown keys with or without '+', non-finite physics
parameters, runs too large for the memory or the disk (nothing is created)."""

import numpy as np
import pytest
import torch

from lqcdml.cli.main import main
from lqcdml.config import ConfigError, compose_experiment, replica_seed
from lqcdml.config.schema import ChainConfig, EnsembleConfig, SamplerConfig
from lqcdml.config.validate import validate_shared
from lqcdml.kinds.estimators import BiasCorrectedEstimator
from lqcdml.kinds.models import StoutModel
from lqcdml.kinds.theories import SUTheory
from lqcdml.kinds.trainers import SLHMCTrain
from lqcdml.kinds.validate import seed_limits
from lqcdml.kinds.validate import validate_ensemble as validate_kinds


def _ensemble_with_every_seed() -> EnsembleConfig:
    """An ensemble with a chain, a training and an estimator seed (defaults elsewhere)."""
    return EnsembleConfig(
        theory=SUTheory(lattice=[4, 4, 4, 4], n_colors=2, fermion="staggered"),
        sampler=SamplerConfig(name="slhmc", options={"m_eff": 0.4}),
        chain=ChainConfig(),
        model=StoutModel(),
        train=SLHMCTrain(),
        estimator=BiasCorrectedEstimator(folds=5, features=["plaquette"]),
    )


def validate_ensemble(ens: EnsembleConfig, prefix: str) -> None:
    validate_shared(ens, prefix + ".")
    validate_kinds(ens, prefix + ".")


@pytest.mark.parametrize(
    "override,message",
    [
        ("+ensembles.u1.theory.lattice_typo=[8,8]", "ensembles.u1.theory.lattice_typo: unknown key 'lattice_typo'"),
        ("+ensembles.u1.typo=1", "ensembles.u1.typo: unknown key 'typo'; allowed: theory, sampler, chain"),
        ("+ensembles.u1.sampler.typo=3", "ensembles.u1.sampler.typo: unknown key 'typo'"),
        ("+ensembles.su2.measure.gradient_flow.dt=1", "gradient_flow.dt: unknown key 'dt'; allowed: t_max, eps"),
        ("ensembles.u1.theory.lattice_typo=[8,8]", "unknown key 'lattice_typo'"),
        ("+typo=1", "typo: unknown key 'typo'"),
    ],
)
def test_unknown_keys_are_errors_with_or_without_plus(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        compose_experiment("ci_tiny", [override])


@pytest.mark.parametrize(
    "override",
    [
        "ensembles.u1.theory.beta=inf",
        "ensembles.u1.sampler.trajectory_length=inf",
        "ensembles.flow.theory.lam=nan",
        "ensembles.flow.theory.m2=inf",
        "ensembles.flow.train.lr=nan",
        "ensembles.stag.theory.fermion_mass=-inf",
        "ensembles.su2.measure.gradient_flow.t_max=inf",
        "limits.memory_gb=nan",
    ],
)
def test_non_finite_numbers_are_refused(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} = (nan|inf|-inf); allowed: (a )?finite"):
        compose_experiment("ci_tiny", [override])


@pytest.mark.parametrize(
    "override,message",
    [
        ("theory.lattice=[1000000000,1000000000]", "GB of field memory"),
        ("chain.n_chains=100000000", "chain.n_chains x ensembles.u1.theory.lattice = 100000000 x [4, 4]"),
        ("chain.n_configs=1000000000000000000000000000000", "raise with limits.disk_gb"),
        ("limits.disk_gb=0.000001", "allowed: at most 1e-06 GB (limits.disk_gb)"),
        ("limits.memory_gb=0.0000001", "allowed: at most 1e-07 GB (limits.memory_gb)"),
    ],
)
def test_runs_too_large_stop_before_anything_is_created(override, message, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    code = main(["generate", "+experiment=ci_tiny", "--ensemble", "u1", override, "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not any(tmp_path.iterdir())  # no store, no lock, nothing


@pytest.mark.parametrize("key", ["chain.seed", "train.seed", "estimator.seed"])
def test_seeds_are_allowed_exactly_up_to_where_a_derived_seed_would_overflow(key):
    ens = _ensemble_with_every_seed()  # validates as it is; no Hydra needed
    most = seed_limits(ens)[key]
    section, name = key.split(".")
    for value, ok in ((0, True), (most, True), (most + 1, False), (-1, False), (2**70, False)):
        setattr(getattr(ens, section), name, value)
        if ok:
            validate_ensemble(ens, "ensembles.e")
        else:
            with pytest.raises(ConfigError, match=rf"^ensembles.e.{key} = {value}; allowed: 0 <= seed <= {most} \("):
                validate_ensemble(ens, "ensembles.e")


def test_the_seed_limits_are_where_the_derived_seeds_leave_their_generators_range():
    """chain: replica_seed(seed, 99); train: the SLHMC trainer's 1_000_003 seed + steps (torch,
    0 .. 2^64 - 1); estimator: seed + 100 x 6 + folds (scikit-learn's RandomState, 0 .. 2^32 - 1)."""
    ens = _ensemble_with_every_seed()
    limits = seed_limits(ens)
    derived = {
        "chain.seed": lambda s: replica_seed(s, 99),
        "train.seed": lambda s: s * 1_000_003 + ens.train.steps,
        "estimator.seed": lambda s: s + 600 + ens.estimator.folds,
    }
    accept = {
        "chain.seed": torch.Generator().manual_seed,
        "train.seed": torch.Generator().manual_seed,
        "estimator.seed": np.random.RandomState,
    }
    for key, most in limits.items():
        accept[key](derived[key](most))
        with pytest.raises((RuntimeError, ValueError, OverflowError)):
            accept[key](derived[key](most + 1))
