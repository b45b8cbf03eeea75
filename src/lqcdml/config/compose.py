"""Compose, validate, dump and load configurations (Hydra compose API, no run directories)."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..atomic import write_text_atomic
from .catalogue import catalogue
from .errors import ConfigError
from .schema import EnsembleConfig, LimitsConfig, PathsConfig, RootConfig, RootSchema
from .sections import config_errors, dataclasses_in, one_line
from .validate import RENAMED_KEYS, validate_root

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ROOT_KEYS",
    "config_dir",
    "compose",
    "compose_experiment",
    "dump",
    "load",
    "to_container",
    "expand_overrides",
    "merge_overrides",
    "resolvers_allowed",
    "select_ensemble",
]

#: libyaml's safe loader where PyYAML was built with it (the same documents, 10x faster); both
#: safe loaders build only plain data (no Python tags), so a config file never runs code
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ROOT_KEYS = ("experiment", "ensembles", "device", "dtype", "threads", "paths", "limits", "hydra")

#: the environment switch that lets overrides and loaded YAML files use OmegaConf resolvers
ALLOW_RESOLVERS_ENV = "LQCDML_ALLOW_RESOLVERS"
#: a resolver interpolation ``${name:...}`` (``${oc.env:HOME}``, ``${now:%H}``, ``${hydra:...}``);
#: ``${ensembles.a.theory.beta}``, a reference to another key, has no ``:`` before its ``}``
_RESOLVER = re.compile(r"\$\{\s*([^${}:]*?)\s*:")


@functools.cache
def _hydra_ready() -> None:
    """Import Hydra and register the schema (``base_config``, the root of ``conf/config.yaml``'s
    defaults) with its config store, once. Only ``compose`` needs Hydra: ``load`` and
    ``merge_overrides``, which every workflow job runs on a resolved YAML, use OmegaConf alone,
    and importing Hydra costs such a job about 0.3 s."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=RootSchema)


def config_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The Hydra ``conf/`` folder: ``explicit``, ``$LQCDML_CONF_DIR``, the source tree's, or ``./conf``."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("LQCDML_CONF_DIR"):
        candidates.append(Path(os.environ["LQCDML_CONF_DIR"]))
    candidates += [Path(__file__).resolve().parents[3] / "conf", Path.cwd() / "conf"]
    for path in candidates:
        if (path / "config.yaml").is_file():
            return path.resolve()
    raise ConfigError(
        f"config dir = {str(candidates[0])!r}; allowed: a folder holding config.yaml "
        "(give --config-dir or set LQCDML_CONF_DIR)"
    )


def expand_overrides(overrides: Sequence[str], ensemble: str | None) -> list[str]:
    """Prefix ensemble-level overrides (``theory.beta=2``) with ``ensembles.<ensemble>.``.

    Overrides of root keys, ``+``/``~`` group selections of ``experiment`` and already
    qualified keys pass unchanged. ``ensemble`` must be a name of letters, digits and ``_``
    (as every experiment's ensembles are), refused in one line before it becomes a key.
    """
    if ensemble is not None and not re.fullmatch(r"[A-Za-z0-9_]+", ensemble):
        raise ConfigError(f"--ensemble = {ensemble!r}; allowed: an ensemble name of letters, digits and '_'")
    out = []
    for item in overrides:
        stripped = item.lstrip("+~")
        head = stripped.split("=", 1)[0].split(".", 1)[0]
        if ensemble is None or head in ROOT_KEYS:
            out.append(item)
        else:
            prefix = item[: len(item) - len(stripped)]
            out.append(f"{prefix}ensembles.{ensemble}.{stripped}")
    return out


def _one_line(exc: BaseException, conf: Path | None = None) -> str:
    """Hydra's and OmegaConf's multi-line errors as one line: key, value, what is allowed."""
    text = str(exc)
    m = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if m and conf is not None:
        group = m.group(1)
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        return f"{group} = {m.group(2)!r}; allowed: {', '.join(options)}"
    return one_line(exc, dataclasses_in(RootSchema))


def _check_override_key(override: str) -> None:
    """Refuse keys with a segment starting with ``_`` (``__dict__`` and the like): no config
    key does, and such names reach Python attributes when the dataclasses are built."""
    key = override.split("=", 1)[0].lstrip("+~")
    for old, new in RENAMED_KEYS.items():
        if key == old or key.endswith("." + old) or f".{old}." in f".{key}.":
            raise ConfigError(f"{key}: the key {old!r} is renamed; allowed: {new!r} (the gradient flow)")
    for segment in re.split(r"[./@]", key):
        if segment.startswith("_"):
            raise ConfigError(f"{key}: unknown key {segment!r}; allowed: config keys, which never start with '_'")


def resolvers_allowed() -> bool:
    """Whether ``$LQCDML_ALLOW_RESOLVERS`` is ``1``: resolvers in overrides and loaded files."""
    return os.environ.get(ALLOW_RESOLVERS_ENV, "") == "1"


def _resolver(text: str) -> str | None:
    """The first resolver interpolation of ``text`` as ``${name:...}``, or ``None``."""
    m = _RESOLVER.search(text)
    return None if m is None else f"${{{m.group(1)}:...}}"


def _check_override_resolvers(override: str) -> None:
    """Refuse ``${oc.env:HOME}`` and every other resolver in an override (they read the
    environment, the clock or build nodes); references to keys (``${a.b}``) stay allowed."""
    found = _resolver(override)
    if found and not resolvers_allowed():
        raise ConfigError(
            f"override {override!r} uses the resolver {found}; allowed: plain values and references "
            f"to other keys (${{key.path}}), or set {ALLOW_RESOLVERS_ENV}=1 to allow resolvers"
        )


def _first_resolver(data: object, key: str = "") -> tuple[str, str, str] | None:
    """``(key, value, resolver)`` of the first string at any depth of ``data`` with a resolver."""
    if isinstance(data, dict):
        items = ((f"{key}.{name}" if key else str(name), value) for name, value in data.items())
    elif isinstance(data, (list, tuple)):
        items = ((f"{key}[{i}]", value) for i, value in enumerate(data))
    elif isinstance(data, str):
        found = _resolver(data)
        return (key, data, found) if found else None
    else:
        return None
    return next((hit for k, v in items if (hit := _first_resolver(v, k))), None)


def _refuse_loaded_resolvers(data: object, path: Path) -> None:
    """Refuse resolver interpolations at any depth of a loaded YAML (a resolved config has none)."""
    hit = None if resolvers_allowed() else _first_resolver(data)
    if hit:
        key, value, found = hit
        raise ConfigError(
            f"config file = {str(path)!r}: {key} = {value!r} uses the resolver {found}; allowed: "
            "resolved values (a resolved config holds no interpolations), "
            f"or set {ALLOW_RESOLVERS_ENV}=1 to allow resolvers"
        )


def _refuse_built_resolvers(obj: RootConfig) -> None:
    """Refuse a value that became a resolver call only once composed (``'$'`` joined to
    ``'{oc.env:HOME}'`` by a reference): OmegaConf would run it when the config is merged again."""
    hit = None if resolvers_allowed() else _first_resolver(dataclasses.asdict(obj))
    if hit:
        key, value, found = hit
        raise ConfigError(
            f"{key} = {value!r} calls the resolver {found} once composed; allowed: values without "
            f"resolvers, or set {ALLOW_RESOLVERS_ENV}=1 to allow resolvers"
        )


def _refuse_renamed(cfg: DictConfig) -> None:
    """A config (a YAML file, an experiment) that still uses a renamed key: one line."""
    ensembles = cfg.get("ensembles") if isinstance(cfg, DictConfig) else None
    if not isinstance(ensembles, DictConfig):
        return
    for name, ens in ensembles.items():
        for old, new in RENAMED_KEYS.items():
            section, key = old.split(".")
            node = ens.get(section) if isinstance(ens, DictConfig) else None
            if isinstance(node, DictConfig) and key in node:
                raise ConfigError(
                    f"ensembles.{name!s}.{old}: the key {old!r} is renamed; allowed: {new!r} (the gradient flow)"
                )


def _typed(cfg: DictConfig) -> RootConfig:
    """The composed ``cfg`` typed (root keys by ``RootSchema``, each ensemble by its kinds)
    and validated."""
    _refuse_renamed(cfg)
    if "hydra" in cfg:
        cfg = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    allowed = [f.name for f in dataclasses.fields(RootSchema)]
    unknown = [str(k) for k in cfg if k not in allowed]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RootSchema), cfg)
        plain = OmegaConf.to_container(merged, resolve=True)
    except config_errors() as exc:
        raise ConfigError(_one_line(exc)) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a key the dataclasses cannot hold
        raise ConfigError(f"configuration cannot be built: {exc}") from None
    assert isinstance(plain, dict)
    kinds = catalogue()
    ensembles = plain.get("ensembles") or {}
    if not isinstance(ensembles, dict):
        raise ConfigError(f"ensembles = {ensembles!r}; allowed: a mapping of ensemble names to ensembles")
    obj = RootConfig(
        experiment=plain["experiment"],
        ensembles={str(name): kinds.type_ensemble(data, f"ensembles.{name}") for name, data in ensembles.items()},
        device=plain["device"],
        dtype=plain["dtype"],
        threads=plain["threads"],
        paths=PathsConfig(**plain["paths"]),
        limits=LimitsConfig(**plain["limits"]),
    )
    _refuse_built_resolvers(obj)
    validate_root(obj, kinds)
    return obj


def compose(overrides: Sequence[str] = (), conf_dir: str | os.PathLike | None = None) -> RootConfig:
    """Compose ``config.yaml`` with ``overrides``; typed and validated, or ``ConfigError``."""
    directory = config_dir(conf_dir)
    for override in overrides:
        _check_override_key(override)
        _check_override_resolvers(override)
    _hydra_ready()
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(directory), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (OmegaConfBaseException, HydraException) as exc:
        m = re.search(r"Could not override '(ensembles\.[^']+)'", str(exc))
        if m:  # a key the ensemble's composed sections lack: its kind names the allowed ones
            appended = [f"+{o}" if o.split("=", 1)[0] == m.group(1) else o for o in overrides]
            if appended != list(overrides):
                return compose(appended, conf_dir)
        raise ConfigError(_one_line(exc, directory)) from None
    return _typed(cfg)


def merge_overrides(cfg: RootConfig, overrides: Sequence[str]) -> RootConfig:
    """``cfg`` with dotted ``key=value`` overrides applied (``~key`` removes a key, as in Hydra:
    switching a section to another kind drops the keys only the old kind has); typed and
    validated."""
    return _typed(_with_overrides(to_container(cfg), overrides))


def _with_overrides(data: dict, overrides: Sequence[str]) -> DictConfig:
    """Plain config ``data`` (changed in place by removals) with the overrides applied, untyped."""
    assignments = []
    for override in overrides:
        _check_override_key(override)
        _check_override_resolvers(override)
        if override.startswith("~"):
            *parents, last = override[1:].split("=", 1)[0].split(".")
            node: dict | None = data
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict) or last not in node:
                raise ConfigError(f"{override}: no key {override[1:].split('=', 1)[0]!r} to remove")
            del node[last]
        else:
            assignments.append(override.lstrip("+"))
    try:
        merged = OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(assignments))
    except config_errors(ValueError) as exc:
        raise ConfigError(f"overrides {list(overrides)}: {_one_line(exc)}") from None
    return cast(DictConfig, merged)  # merged onto a DictConfig: a DictConfig


def compose_experiment(
    experiment: str, overrides: Sequence[str] = (), conf_dir: str | os.PathLike | None = None
) -> RootConfig:
    """``compose`` of ``conf/experiment/<experiment>.yaml`` with further ``overrides``."""
    return compose([f"+experiment={experiment}", *overrides], conf_dir)


def to_container(cfg: DataclassInstance) -> dict:
    """A config or any of its sections as a plain nested dict (JSON and YAML serialisable) in
    field order; an ensemble's ``model`` and ``train`` appear only where its sampler has them."""
    data = dataclasses.asdict(cfg)
    ensembles = (
        data["ensembles"].values()
        if isinstance(cfg, RootConfig)
        else ((data,) if isinstance(cfg, EnsembleConfig) else ())
    )
    for ens in ensembles:
        for section in ("model", "train"):
            if ens.get(section) is None:
                ens.pop(section, None)
    return data


def dump(cfg: RootConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically)."""
    write_text_atomic(path, yaml.safe_dump(to_container(cfg), sort_keys=False))


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> RootConfig:
    """Read a resolved YAML written by ``dump``, with ``overrides`` applied as ``merge_overrides``
    would (every workflow job: ``--config FILE threads=1``); typed and validated once."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file = {str(path)!r}; allowed: an existing resolved YAML file")
    try:
        data = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file = {str(path)!r}: not valid YAML ({exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file = {str(path)!r}: not text; allowed: a resolved YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file = {str(path)!r}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file = {str(path)!r}; allowed: a YAML mapping")
    _refuse_loaded_resolvers(data, path)
    return _typed(_with_overrides(data, overrides) if overrides else OmegaConf.create(data))


def select_ensemble(cfg: RootConfig, name: str | None) -> tuple[str, EnsembleConfig]:
    """The ensemble ``name`` of ``cfg`` (or its only ensemble when ``name`` is None)."""
    names = sorted(cfg.ensembles)
    if not names:
        raise ConfigError(
            f"experiment = {cfg.experiment!r} defines no ensembles; allowed: choose one with "
            "+experiment=NAME (files in conf/experiment/)"
        )
    if name is None:
        if len(names) == 1:
            return names[0], cfg.ensembles[names[0]]
        raise ConfigError(f"--ensemble = None; allowed: one of {', '.join(names)}")
    if name not in cfg.ensembles:
        raise ConfigError(f"--ensemble = {name!r}; allowed: {', '.join(names)}")
    return name, cfg.ensembles[name]
