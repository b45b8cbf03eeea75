"""Range and consistency checks of a typed configuration (types are Hydra's job)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import PurePath

from .errors import ConfigError, fail as _fail
from .schema import (
    CONVENTIONS,
    DTYPES,
    FERMIONS,
    NOISES,
    STARTS,
    THEORY_NAMES,
    EnsembleConfig,
    RootConfig,
)

__all__ = ["ConfigError", "validate_root", "validate_ensemble", "validate_hmc", "validate_model_and_training",
           "seed_limits"]

#: seeds feed torch.Generator.manual_seed (0 .. 2^64 - 1) and scikit-learn (0 .. 2^32 - 1)
TORCH_SEED_MAX = 2**64 - 1
SKLEARN_SEED_MAX = 2**32 - 1
#: chain.replicas is at most this (replica names r01..r99)
MAX_REPLICAS = 99
#: cli.estimate seeds target k of the bias-corrected estimators (tr1..tr4, tr1_pow2..4) with
#: estimator.seed + 100 k, and cross-fitting fold f of it with that + 1 + f
ESTIMATOR_TARGETS = 7

#: keys renamed in the config: old -> new (the old one is refused with the new name)
RENAMED_KEYS = {"measure.flow": "measure.gradient_flow"}
RENAMED_OBSERVABLES = {"flow": "gradient_flow"}


def _finite(section: object, key: str) -> None:
    """Every float of a config section (and of its nested sections and lists) is finite."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        where = f"{key}.{f.name}"
        if dataclasses.is_dataclass(value):
            _finite(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            _fail(where, value, "a finite number")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, float) and not math.isfinite(item):
                    _fail(f"{where}[{i}]", item, "finite numbers")


def seed_limits(ens: EnsembleConfig) -> dict[str, int]:
    """The largest ``chain.seed``, ``train.seed`` and ``estimator.seed`` whose derived seeds
    all fit their generators (the smallest is 0):

    - chain: replica ``r``'s stream ``replica_seed(seed, r) = 1000 seed + r``, ``r <= 99``;
    - train: the SLHMC trainer's ``1_000_003 seed + step``, ``step <= train.steps`` (the
      tightest use, applied to every sampler so that a seed valid for one is valid for all);
    - estimator: ``seed + 100 k + 1 + f`` for target ``k < 7`` and fold ``f < folds``
      (scikit-learn's 32-bit seeds).
    """
    return {
        "chain.seed": (TORCH_SEED_MAX - MAX_REPLICAS) // 1000,
        "train.seed": (TORCH_SEED_MAX - ens.train.steps) // 1_000_003,
        "estimator.seed": SKLEARN_SEED_MAX - 100 * (ESTIMATOR_TARGETS - 1) - ens.estimator.folds,
    }


def _check_seeds(ens: EnsembleConfig, p: str) -> None:
    """Every seed in ``0 .. seed_limits``: beyond, a derived seed would overflow its generator."""
    values = {"chain.seed": ens.chain.seed, "train.seed": ens.train.seed, "estimator.seed": ens.estimator.seed}
    for key, most in seed_limits(ens).items():
        if not 0 <= values[key] <= most:
            _fail(p + key, values[key], f"0 <= seed <= {most} (the seeds derived from it must fit their generators)")


def validate_ensemble(ens: EnsembleConfig, prefix: str) -> None:
    th, sa, ch, me = ens.theory, ens.sampler, ens.chain, ens.measure
    p = f"{prefix}."
    _finite(ens, prefix)
    if th.name not in THEORY_NAMES:
        _fail(p + "theory.name", th.name, ", ".join(THEORY_NAMES))
    if len(th.lattice) < 1:
        _fail(p + "theory.lattice", list(th.lattice), "a list of at least one extent")
    for mu, extent in enumerate(th.lattice):
        if extent < 2:
            _fail(f"{p}theory.lattice[{mu}]", extent, "extents >= 2")
    if th.name in ("u1", "su"):
        if len(th.lattice) < 2:
            _fail(p + "theory.lattice", list(th.lattice), "at least 2 dimensions for a gauge theory")
        if not th.beta > 0:
            _fail(p + "theory.beta", th.beta, "beta > 0")
    if th.name == "su" and th.n_colors not in (2, 3):
        _fail(p + "theory.n_colors", th.n_colors, "2 or 3")
    if th.fermion not in FERMIONS:
        _fail(p + "theory.fermion", th.fermion, ", ".join(FERMIONS))
    if th.fermion != "none":
        if th.name == "phi4" or (th.name == "u1" and (th.fermion != "staggered" or th.n_flavours != 0)):
            _fail(p + "theory.fermion", th.fermion, f"none for theory.name = {th.name!r} (fermions need SU(N); U(1) "
                  "takes quenched valence staggered quarks: fermion = staggered with n_flavours = 0)")
        if th.fermion == "staggered":
            for mu, extent in enumerate(th.lattice):
                if extent % 2:
                    _fail(f"{p}theory.lattice[{mu}]", extent,
                          "even extents for staggered fermions (even-odd checkerboard)")
            if not th.fermion_mass > 0:
                _fail(p + "theory.fermion_mass", th.fermion_mass, "fermion_mass > 0 for staggered fermions")
            if th.n_flavours < 0:
                _fail(p + "theory.n_flavours", th.n_flavours,
                      "n_flavours >= 0 for staggered fermions (0: quenched, valence quarks only)")
        if th.fermion == "wilson":
            if th.n_flavours != 2:
                _fail(p + "theory.n_flavours", th.n_flavours, "2 for Wilson fermions")
            if not th.fermion_mass > -len(th.lattice):
                _fail(p + "theory.fermion_mass", th.fermion_mass, f"fermion_mass > -{len(th.lattice)} (kappa > 0)")
    if th.name == "phi4":
        if th.lam < 0:
            _fail(p + "theory.lam", th.lam, "lam >= 0")
        if th.lam == 0 and th.m2 <= 0:
            _fail(p + "theory.m2", th.m2, "m2 > 0 when lam = 0 (free field must be massive)")
        if th.convention not in CONVENTIONS:
            _fail(p + "theory.convention", th.convention, ", ".join(CONVENTIONS))
    from .registry import SAMPLERS

    kind = SAMPLERS.lookup(sa.name, p + "sampler.name")
    if th.name not in kind.theories:
        _fail(p + "sampler.name", sa.name, f"for theory.name = {th.name!r}: "
              + ", ".join(k.name for k in SAMPLERS if th.name in k.theories))
    if kind.validate is not None:
        kind.validate(ens, p)
    for key in ("n_configs", "save_every", "n_chains", "replicas"):
        if getattr(ch, key) < 1:
            _fail(f"{p}chain.{key}", getattr(ch, key), f"{key} >= 1")
    if not 0 <= ch.n_therm <= ch.n_configs - 5:
        _fail(p + "chain.n_therm", ch.n_therm,
              f"0 <= n_therm <= n_configs - 5 = {ch.n_configs - 5} (the error analysis needs 5 "
              "configurations per chain)")
    if ch.replicas > MAX_REPLICAS:
        _fail(p + "chain.replicas", ch.replicas, f"at most {MAX_REPLICAS} (replica names r01..r99)")
    _check_seeds(ens, p)
    if ch.start not in STARTS:
        _fail(p + "chain.start", ch.start, ", ".join(STARTS))
    from .registry import OBSERVABLES

    allowed = [k.name for k in OBSERVABLES if th.name in k.theories]
    for i, name in enumerate(me.observables):
        if name in RENAMED_OBSERVABLES and name not in OBSERVABLES:
            _fail(f"{p}measure.observables[{i}]", name,
                  f"renamed: {RENAMED_OBSERVABLES[name]!r} (the gradient flow)")
        if name not in allowed:
            _fail(f"{p}measure.observables[{i}]", name, f"for {th.name}: {', '.join(allowed)}")
        kind = OBSERVABLES.lookup(name)
        if kind.needs_fermions and th.fermion == "none":
            _fail(f"{p}measure.observables[{i}]", name, "fermion observables need theory.fermion != none")
        if kind.validate is not None:
            kind.validate(ens, p)
    if th.name == "u1" and len(th.lattice) != 2 and not me.observables:
        _fail(p + "measure.observables", [], "an explicit list for U(1) outside 2D (the default has the 2D charge)")
    if me.n_noise < 1:
        _fail(p + "measure.n_noise", me.n_noise, "n_noise >= 1")
    if me.noise not in NOISES:
        _fail(p + "measure.noise", me.noise, ", ".join(NOISES))
    for i, loop in enumerate(me.wilson_loops):
        if len(loop) != 2 or min(loop) < 1:
            _fail(f"{p}measure.wilson_loops[{i}]", list(loop), "[r, t] with r, t >= 1")
    gf = me.gradient_flow
    if gf.t_max < 0 or not gf.eps > 0 or gf.measure_every < 1:
        _fail(p + "measure.gradient_flow", dict(t_max=gf.t_max, eps=gf.eps, measure_every=gf.measure_every),
              "t_max >= 0, eps > 0, measure_every >= 1")
    if me.batch < 1:
        _fail(p + "measure.batch", me.batch, "batch >= 1")
    from .estimators import validate_estimator

    validate_estimator(ens, p)


def validate_hmc(ens: EnsembleConfig, p: str) -> None:
    """The molecular-dynamics keys of HMC-type samplers."""
    sa = ens.sampler
    from ..samplers.integrators import SCHEMES

    if sa.integrator not in SCHEMES:
        _fail(p + "sampler.integrator", sa.integrator, ", ".join(SCHEMES))
    if sa.n_steps < 1:
        _fail(p + "sampler.n_steps", sa.n_steps, "n_steps >= 1")
    if sa.gauge_steps < 1:
        _fail(p + "sampler.gauge_steps", sa.gauge_steps, "gauge_steps >= 1")
    if not 0 < sa.solver_tol < 1e-3:
        _fail(p + "sampler.solver_tol", sa.solver_tol, "0 < solver_tol < 1e-3")
    if not 1e-14 <= sa.rational_tol <= 1e-4:
        _fail(p + "sampler.rational_tol", sa.rational_tol,
              "1e-14 <= rational_tol <= 1e-4 (float64 resolves about 1e-14)")
    if not sa.trajectory_length > 0:
        _fail(p + "sampler.trajectory_length", sa.trajectory_length, "trajectory_length > 0")


def validate_model_and_training(ens: EnsembleConfig, p: str) -> None:
    """The ``model`` and ``train`` sections of a sampler that needs a trained model."""
    from .registry import MODELS

    th, mo, tr = ens.theory, ens.model, ens.train
    kind = MODELS.lookup(mo.kind, p + "model.kind")
    if kind.theory != th.name:
        wanted = [k.name for k in MODELS if k.theory == th.name]
        _fail(p + "model.kind", mo.kind, f"{', '.join(wanted) or 'none'} for theory.name = {th.name!r}")
    if kind.validate is not None:
        kind.validate(ens, p)
    if mo.n_layers < 1:
        _fail(p + "model.n_layers", mo.n_layers, "n_layers >= 1")
    if any(h < 1 for h in mo.hidden):
        _fail(p + "model.hidden", list(mo.hidden), "channel counts >= 1")
    if mo.kernel < 1 or mo.kernel % 2 == 0:
        _fail(p + "model.kernel", mo.kernel, "an odd kernel width >= 1")
    from ..nn.conv import ACTIVATIONS
    from ..train.flow import SCHEDULES

    if mo.activation not in ACTIVATIONS:
        _fail(p + "model.activation", mo.activation, ", ".join(ACTIVATIONS))
    if mo.n_mix < 1:
        _fail(p + "model.n_mix", mo.n_mix, "n_mix >= 1")
    if not mo.prior_scale > 0:
        _fail(p + "model.prior_scale", mo.prior_scale, "prior_scale > 0")
    for key, low in (("steps", 1), ("batch", 2), ("checkpoint_every", 1), ("ess_samples", 100)):
        if getattr(tr, key) < low:
            _fail(f"{p}train.{key}", getattr(tr, key), f"{key} >= {low}")
    if not 0 < tr.lr < 1:
        _fail(p + "train.lr", tr.lr, "0 < lr < 1")
    if tr.schedule not in SCHEDULES:
        _fail(p + "train.schedule", tr.schedule, ", ".join(SCHEDULES))
    if not 0 < tr.min_lr_ratio <= 1:
        _fail(p + "train.min_lr_ratio", tr.min_lr_ratio, "0 < min_lr_ratio <= 1")
    if tr.dtype not in DTYPES:
        _fail(p + "train.dtype", tr.dtype, ", ".join(DTYPES))
    if not tr.grad_clip >= 0:
        _fail(p + "train.grad_clip", tr.grad_clip, "grad_clip >= 0 (0: no clipping)")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def validate_root(cfg: RootConfig) -> None:
    if not _NAME.match(cfg.experiment):
        _fail("experiment", cfg.experiment, "letters, digits, '_', '-', '.'")
    if cfg.dtype not in DTYPES:
        _fail("dtype", cfg.dtype, ", ".join(DTYPES))
    if not re.match(r"^(cpu|cuda(:\d+)?)$", cfg.device):
        _fail("device", cfg.device, "cpu, cuda or cuda:N")
    for key in ("memory_gb", "disk_gb"):
        value = getattr(cfg.limits, key)
        if not (math.isfinite(value) and value >= 0):
            _fail(f"limits.{key}", value, "a finite number >= 0 (0: the machine's memory / free disk)")
    if cfg.threads < 1:
        _fail("threads", cfg.threads, "threads >= 1")
    if not cfg.paths.results:
        _fail("paths.results", cfg.paths.results, "a non-empty folder name")
    results = PurePath(cfg.paths.results)
    if not results.is_absolute() and ".." in results.parts:
        _fail("paths.results", cfg.paths.results,
              "a folder below the working directory (no '..'), or an absolute path")
    if "\0" in cfg.paths.results:
        _fail("paths.results", cfg.paths.results, "a path without NUL characters")
    for name, ens in cfg.ensembles.items():
        if not _NAME.match(name):
            _fail(f"ensembles.{name}", name, "ensemble names of letters, digits, '_', '-', '.'")
        validate_ensemble(ens, f"ensembles.{name}")
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
        _fail(key, source, f"an ensemble of this experiment started by chain.start: {', '.join(others) or 'none'}")
    src = cfg.ensembles[source]
    for field in ("name", "lattice", "n_colors"):
        if getattr(src.theory, field) != getattr(ens.theory, field):
            _fail(key, source, f"an ensemble of the same fields (its theory.{field} is "
                  f"{getattr(src.theory, field)!r}, this one's {getattr(ens.theory, field)!r})")
    for field in ("n_chains", "replicas"):
        if getattr(src.chain, field) < getattr(ens.chain, field):
            _fail(key, source, f"an ensemble with chain.{field} >= {getattr(ens.chain, field)} "
                  f"(it has {getattr(src.chain, field)})")


def _validate_training_source(cfg: RootConfig, name: str, ens: EnsembleConfig) -> None:
    """``train.source`` of a model trained on another ensemble: an ensemble of the same
    lattice and gauge group whose sampler needs no model."""
    from .registry import MODELS, SAMPLERS

    kind = SAMPLERS.lookup(ens.sampler.name)
    if not kind.needs_model or not ens.train.source:
        return
    model = MODELS.lookup(ens.model.kind)
    key = f"ensembles.{name}.train.source"
    if model.family != "smearing":
        _fail(key, ens.train.source, "'' (flows train on their own samples)")
    others = [e for e, o in cfg.ensembles.items() if e != name and not SAMPLERS.lookup(o.sampler.name).needs_model]
    if ens.train.source not in others:
        _fail(key, ens.train.source, f"an ensemble of this experiment without a model: {', '.join(others) or 'none'}")
    src = cfg.ensembles[ens.train.source].theory
    for field in ("name", "lattice", "n_colors", "beta", "fermion", "fermion_mass", "n_flavours", "antiperiodic"):
        if getattr(src, field) != getattr(ens.theory, field):
            _fail(key, ens.train.source, f"an ensemble of the same theory (its theory.{field} is "
                  f"{getattr(src, field)!r}, this one's {getattr(ens.theory, field)!r})")
