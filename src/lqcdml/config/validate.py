"""Range checks of the sections every ensemble and experiment share (the kinds check their own).

Types are checked when a section is typed (``config.sections``); this module checks values:
the root keys, the chain and measure sections, seeds and finiteness. The catalogue's checks
(``kinds.validate``) run after these for each ensemble and across ensembles.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import PurePath

from .errors import ConfigError, fail
from .schema import DTYPES, STARTS, EnsembleConfig, RootConfig
from .seeds import MAX_REPLICAS

__all__ = [
    "ConfigError",
    "validate_root",
    "validate_shared",
    "check_finite",
    "RENAMED_KEYS",
    "RENAMED_OBSERVABLES",
    "NAME_PATTERN",
]

#: keys renamed in the config: old -> new (the old one is refused with the new name)
RENAMED_KEYS = {"measure.flow": "measure.gradient_flow"}
RENAMED_OBSERVABLES = {"flow": "gradient_flow"}
#: experiment and ensemble names
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_finite(section: object, key: str) -> None:
    """Every float of a config section (and of its nested sections and lists) is finite."""
    if section is None:
        return
    for f in dataclasses.fields(section):  # type: ignore[arg-type]
        value = getattr(section, f.name)
        where = f"{key}.{f.name}"
        if dataclasses.is_dataclass(value):
            check_finite(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            fail(where, value, "a finite number")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, float) and not math.isfinite(item):
                    fail(f"{where}[{i}]", item, "finite numbers")


def validate_shared(ens: EnsembleConfig, p: str) -> None:
    """The checks of the sections every ensemble has (``p``: key prefix ``ensembles.NAME.``)."""
    ch, me = ens.chain, ens.measure
    check_finite(ens, p.rstrip("."))
    for key in ("n_configs", "save_every", "n_chains", "replicas"):
        if getattr(ch, key) < 1:
            fail(f"{p}chain.{key}", getattr(ch, key), f"{key} >= 1")
    if not 0 <= ch.n_therm <= ch.n_configs - 5:
        fail(
            p + "chain.n_therm",
            ch.n_therm,
            f"0 <= n_therm <= n_configs - 5 = {ch.n_configs - 5} (the error analysis needs 5 configurations per chain)",
        )
    if ch.replicas > MAX_REPLICAS:
        fail(p + "chain.replicas", ch.replicas, f"at most {MAX_REPLICAS} (replica names r01..r99)")
    if ch.start not in STARTS:
        fail(p + "chain.start", ch.start, ", ".join(STARTS))
    if me.n_noise < 1:
        fail(p + "measure.n_noise", me.n_noise, "n_noise >= 1")
    for i, loop in enumerate(me.wilson_loops):
        if len(loop) != 2 or min(loop) < 1:
            fail(f"{p}measure.wilson_loops[{i}]", list(loop), "[r, t] with r, t >= 1")
    gf = me.gradient_flow
    if gf.t_max < 0 or not gf.eps > 0 or gf.measure_every < 1:
        fail(
            p + "measure.gradient_flow",
            dict(t_max=gf.t_max, eps=gf.eps, measure_every=gf.measure_every),
            "t_max >= 0, eps > 0, measure_every >= 1",
        )
    if me.batch < 1:
        fail(p + "measure.batch", me.batch, "batch >= 1")


def validate_root(cfg: RootConfig, catalogue=None) -> None:
    """The root keys, then every ensemble (shared sections, then its kinds' checks), then the
    checks across ensembles (``catalogue``: ``config.catalogue.catalogue()`` when not given)."""
    if catalogue is None:
        from .catalogue import catalogue as _catalogue

        catalogue = _catalogue()
    if not NAME_PATTERN.match(cfg.experiment):
        fail("experiment", cfg.experiment, "letters, digits, '_', '-', '.'")
    if cfg.dtype not in DTYPES:
        fail("dtype", cfg.dtype, ", ".join(DTYPES))
    if not re.match(r"^(cpu|cuda(:\d+)?)$", cfg.device):
        fail("device", cfg.device, "cpu, cuda or cuda:N")
    for key in ("memory_gb", "disk_gb"):
        value = getattr(cfg.limits, key)
        if not (math.isfinite(value) and value >= 0):
            fail(f"limits.{key}", value, "a finite number >= 0 (0: the machine's memory / free disk)")
    if cfg.threads < 1:
        fail("threads", cfg.threads, "threads >= 1")
    if not cfg.paths.results:
        fail("paths.results", cfg.paths.results, "a non-empty folder name")
    results = PurePath(cfg.paths.results)
    if not results.is_absolute() and ".." in results.parts:
        fail("paths.results", cfg.paths.results, "a folder below the working directory (no '..'), or an absolute path")
    if "\0" in cfg.paths.results:
        fail("paths.results", cfg.paths.results, "a path without NUL characters")
    for name, ens in cfg.ensembles.items():
        if not NAME_PATTERN.match(name):
            fail(f"ensembles.{name}", name, "ensemble names of letters, digits, '_', '-', '.'")
        validate_shared(ens, f"ensembles.{name}.")
        catalogue.validate_ensemble(ens, f"ensembles.{name}.")
    catalogue.validate_experiment(cfg)
