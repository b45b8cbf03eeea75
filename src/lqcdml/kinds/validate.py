"""The kinds' checks of an ensemble and of an experiment (after ``config.validate``'s).

They import no torch (the workflow validates configs at parse time): ``NOISE_NAMES`` mirrors
``observables.fermion.NOISES`` (a test keeps them equal).
"""

from __future__ import annotations

import dataclasses

from ..config.errors import fail
from ..config.schema import EnsembleConfig, RootConfig
from ..config.seeds import MAX_REPLICAS, TORCH_SEED_MAX
from ..config.validate import RENAMED_OBSERVABLES
from .estimators import ESTIMATORS
from .models import MODELS, check_model_fits
from .observables import OBSERVABLES
from .samplers import SAMPLERS
from .theories import THEORIES
from .trainers import TRAINERS, trainer_kind

__all__ = ["validate_ensemble", "validate_experiment", "seed_limits", "NOISE_NAMES"]

#: ``observables.fermion.NOISES`` (a test keeps them equal)
NOISE_NAMES = ("z2", "u1")


def seed_limits(ens: EnsembleConfig) -> dict[str, int]:
    """The largest seeds whose derived seeds all fit their generators (the smallest is 0):

    - chain: replica ``r``'s stream ``replica_seed(seed, r) = 1000 seed + r``, ``r <= 99``;
    - train: the SLHMC trainer's ``1_000_003 seed + step``, ``step <= train.steps`` (the
      tightest use, applied to every trainer so that a seed valid for one is valid for all);
    - estimator: its kind's ``max_seed`` (the bias-corrected estimate's ``seed + 100 k + 1 + f``
      for target ``k < 7`` and fold ``f < folds``: scikit-learn's 32-bit seeds).
    """
    limits = {"chain.seed": (TORCH_SEED_MAX - MAX_REPLICAS) // 1000}
    if ens.train is not None:
        limits["train.seed"] = (TORCH_SEED_MAX - ens.train.steps) // 1_000_003
    limits["estimator.seed"] = ESTIMATORS.lookup(ens.estimator.kind).max_seed(ens.estimator)
    return limits


def _check_seeds(ens: EnsembleConfig, p: str) -> None:
    """Every seed in ``0 .. seed_limits``: beyond, a derived seed would overflow its generator."""
    for key, most in seed_limits(ens).items():
        section, name = key.split(".")
        value = getattr(getattr(ens, section), name)
        if not 0 <= value <= most:
            fail(p + key, value, f"0 <= seed <= {most} (the seeds derived from it must fit their generators)")


def validate_ensemble(ens: EnsembleConfig, p: str) -> None:
    """Theory, sampler, model and training, observables and estimator of one ensemble, each by
    its kind (``p``: key prefix ``ensembles.NAME.``)."""
    th = ens.theory
    theory = THEORIES.lookup(th.name, p + "theory.name")
    if theory.validate is not None:
        theory.validate(ens, p)
    sampler = SAMPLERS.lookup(ens.sampler.name, p + "sampler.name")
    if not sampler.samples(th.name):
        fail(
            p + "sampler.name",
            ens.sampler.name,
            f"for theory.name = {th.name!r}: " + ", ".join(k.name for k in SAMPLERS if k.samples(th.name)),
        )
    if sampler.validate is not None:
        sampler.validate(ens, p)
    if sampler.needs_model:
        _validate_model(ens, p, sampler.model_family)
    _validate_observables(ens, p)
    estimator = ESTIMATORS.lookup(ens.estimator.kind, p + "estimator.kind")
    _check_seeds(ens, p)
    if estimator.validate is not None:
        estimator.validate(ens, p)


def _validate_model(ens: EnsembleConfig, p: str, family: str | None) -> None:
    th, mo = ens.theory, ens.model
    assert mo is not None
    check_model_fits(mo.kind, th.name, family, ens.sampler.name, p)
    model = MODELS.lookup(mo.kind)
    if model.validate is not None:
        model.validate(ens, p)
    trainer = TRAINERS.lookup(model.trainer)
    if trainer.validate is not None:
        trainer.validate(ens, p)


def _validate_observables(ens: EnsembleConfig, p: str) -> None:
    th = ens.theory
    allowed = [k.name for k in OBSERVABLES if th.name in k.theories]
    has_fermions = THEORIES.lookup(th.name).has_fermions(th)
    for i, name in enumerate(ens.measure.observables):
        if name in RENAMED_OBSERVABLES and name not in OBSERVABLES:
            fail(f"{p}measure.observables[{i}]", name, f"renamed: {RENAMED_OBSERVABLES[name]!r} (the gradient flow)")
        if name not in allowed:
            fail(f"{p}measure.observables[{i}]", name, f"for {th.name}: {', '.join(allowed)}")
        kind = OBSERVABLES.lookup(name)
        if kind.needs_fermions and not has_fermions:
            fail(f"{p}measure.observables[{i}]", name, "fermion observables need theory.fermion != none")
        if kind.validate is not None:
            kind.validate(ens, p)
    if ens.measure.noise not in NOISE_NAMES:
        fail(p + "measure.noise", ens.measure.noise, ", ".join(NOISE_NAMES))


def validate_experiment(cfg: RootConfig) -> None:
    """Across the ensembles: training sources and chain starts name fitting ensembles."""
    for name, ens in cfg.ensembles.items():
        _validate_training_source(cfg, name, ens)
        _validate_start_from(cfg, name, ens)


def _validate_start_from(cfg: RootConfig, name: str, ens: EnsembleConfig) -> None:
    """``chain.start_from``: an ensemble of the same lattice and group with at least as many
    chains and replicas, itself started by ``chain.start``."""
    source = ens.chain.start_from
    if not source:
        return
    key = f"ensembles.{name}.chain.start_from"
    others = [e for e, o in cfg.ensembles.items() if e != name and not o.chain.start_from]
    if source not in others:
        fail(key, source, f"an ensemble of this experiment started by chain.start: {', '.join(others) or 'none'}")
    src = cfg.ensembles[source]
    for field in ("name", "lattice", "n_colors"):  # the same fields: theory kind, lattice, group
        mine, theirs = getattr(ens.theory, field, None), getattr(src.theory, field, None)
        if theirs != mine:
            fail(key, source, f"an ensemble of the same fields (its theory.{field} is {theirs!r}, this one's {mine!r})")
    for field in ("n_chains", "replicas"):
        if getattr(src.chain, field) < getattr(ens.chain, field):
            fail(
                key,
                source,
                f"an ensemble with chain.{field} >= {getattr(ens.chain, field)} (it has {getattr(src.chain, field)})",
            )


def _validate_training_source(cfg: RootConfig, name: str, ens: EnsembleConfig) -> None:
    """``train.source`` of a model trained on another ensemble: an ensemble of the same theory
    whose sampler needs no model."""
    if ens.model is None or ens.train is None:
        return
    source = trainer_kind(ens).source(ens.train)
    if not source:
        return
    key = f"ensembles.{name}.train.source"
    others = [e for e, o in cfg.ensembles.items() if e != name and not SAMPLERS.lookup(o.sampler.name).needs_model]
    if source not in others:
        fail(key, source, f"an ensemble of this experiment without a model: {', '.join(others) or 'none'}")
    src = cfg.ensembles[source].theory
    mine, theirs = dataclasses.asdict(ens.theory), dataclasses.asdict(src)
    for field in [*mine, *(k for k in theirs if k not in mine)]:
        if theirs.get(field) != mine.get(field):
            fail(
                key,
                source,
                f"an ensemble of the same theory (its theory.{field} is {theirs.get(field)!r}, this "
                f"one's {mine.get(field)!r})",
            )
