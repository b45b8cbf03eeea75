"""Range and consistency checks of a typed configuration (types are Hydra's job)."""

from __future__ import annotations

import re

from .schema import (
    CONVENTIONS,
    DTYPES,
    INTEGRATORS,
    SAMPLER_NAMES,
    STARTS,
    THEORY_NAMES,
    EnsembleConfig,
    RootConfig,
)

__all__ = ["ConfigError", "validate_root", "validate_ensemble", "OBSERVABLES"]

#: observables each theory can measure (first group: measured by default)
OBSERVABLES = {
    "phi4": ("magnetization", "abs_magnetization", "chi2", "phi2", "schwinger_dyson", "correlator"),
    "u1": ("plaquette", "polyakov_loop", "wilson_loops", "topological_charge", "flow"),
    "su": ("plaquette", "polyakov_loop", "wilson_loops", "flow"),
}
DEFAULT_OBSERVABLES = {
    "phi4": ("magnetization", "abs_magnetization", "chi2", "phi2", "schwinger_dyson"),
    "u1": ("plaquette", "polyakov_loop", "topological_charge"),
    "su": ("plaquette", "polyakov_loop", "wilson_loops"),
}


class ConfigError(ValueError):
    """A configuration value outside what is allowed; the message names key, value and rule."""


def _fail(key: str, value: object, allowed: str) -> None:
    raise ConfigError(f"{key} = {value!r}; allowed: {allowed}")


def validate_ensemble(ens: EnsembleConfig, prefix: str) -> None:
    th, sa, ch, me = ens.theory, ens.sampler, ens.chain, ens.measure
    p = f"{prefix}."
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
    if th.name == "phi4":
        if th.lam < 0:
            _fail(p + "theory.lam", th.lam, "lam >= 0")
        if th.lam == 0 and th.m2 <= 0:
            _fail(p + "theory.m2", th.m2, "m2 > 0 when lam = 0 (free field must be massive)")
        if th.convention not in CONVENTIONS:
            _fail(p + "theory.convention", th.convention, ", ".join(CONVENTIONS))
    if sa.name not in SAMPLER_NAMES:
        _fail(p + "sampler.name", sa.name, ", ".join(SAMPLER_NAMES))
    if sa.integrator not in INTEGRATORS:
        _fail(p + "sampler.integrator", sa.integrator, ", ".join(INTEGRATORS))
    if sa.n_steps < 1:
        _fail(p + "sampler.n_steps", sa.n_steps, "n_steps >= 1")
    if not sa.trajectory_length > 0:
        _fail(p + "sampler.trajectory_length", sa.trajectory_length, "trajectory_length > 0")
    for key in ("n_configs", "save_every", "n_chains", "replicas"):
        if getattr(ch, key) < 1:
            _fail(f"{p}chain.{key}", getattr(ch, key), f"{key} >= 1")
    if not 0 <= ch.n_therm < ch.n_configs:
        _fail(p + "chain.n_therm", ch.n_therm, f"0 <= n_therm < n_configs = {ch.n_configs}")
    if ch.replicas > 99:
        _fail(p + "chain.replicas", ch.replicas, "at most 99 (replica names r01..r99)")
    if ch.seed < 0:
        _fail(p + "chain.seed", ch.seed, "seed >= 0")
    if ch.start not in STARTS:
        _fail(p + "chain.start", ch.start, ", ".join(STARTS))
    allowed = OBSERVABLES[th.name]
    for i, name in enumerate(me.observables):
        if name not in allowed:
            _fail(f"{p}measure.observables[{i}]", name, f"for {th.name}: {', '.join(allowed)}")
    if "topological_charge" in me.observables and len(th.lattice) != 2:
        _fail(p + "measure.observables", list(me.observables),
              "topological_charge only in 2D (the geometric U(1) charge); in 4D measure 'flow'")
    if "flow" in me.observables and me.flow.t_max <= 0:
        _fail(p + "measure.flow.t_max", me.flow.t_max, "t_max > 0 when 'flow' is measured")
    if th.name == "u1" and len(th.lattice) != 2 and not me.observables:
        _fail(p + "measure.observables", [], "an explicit list for U(1) outside 2D (the default has the 2D charge)")
    for i, loop in enumerate(me.wilson_loops):
        if len(loop) != 2 or min(loop) < 1:
            _fail(f"{p}measure.wilson_loops[{i}]", list(loop), "[r, t] with r, t >= 1")
    if me.flow.t_max < 0 or not me.flow.eps > 0 or me.flow.measure_every < 1:
        _fail(p + "measure.flow", dict(t_max=me.flow.t_max, eps=me.flow.eps, measure_every=me.flow.measure_every),
              "t_max >= 0, eps > 0, measure_every >= 1")
    if me.batch < 1:
        _fail(p + "measure.batch", me.batch, "batch >= 1")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def validate_root(cfg: RootConfig) -> None:
    if not _NAME.match(cfg.experiment):
        _fail("experiment", cfg.experiment, "letters, digits, '_', '-', '.'")
    if cfg.dtype not in DTYPES:
        _fail("dtype", cfg.dtype, ", ".join(DTYPES))
    if not re.match(r"^(cpu|cuda(:\d+)?)$", cfg.device):
        _fail("device", cfg.device, "cpu, cuda or cuda:N")
    if cfg.threads < 1:
        _fail("threads", cfg.threads, "threads >= 1")
    if not cfg.paths.results:
        _fail("paths.results", cfg.paths.results, "a non-empty folder name")
    for name, ens in cfg.ensembles.items():
        if not _NAME.match(name):
            _fail(f"ensembles.{name}", name, "ensemble names of letters, digits, '_', '-', '.'")
        validate_ensemble(ens, f"ensembles.{name}")
