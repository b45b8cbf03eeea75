"""Compose, validate, dump and load configurations (Hydra compose API, no run directories)."""

from __future__ import annotations

import dataclasses
import os
import typing
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..atomic import write_text_atomic
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError
from .hashes import chain_definition, ensemble_hash, model_definition
from .registry import SAMPLERS
from .schema import EnsembleConfig, RootConfig
from .validate import RENAMED_KEYS, validate_root

__all__ = [
    "ROOT_KEYS",
    "config_dir",
    "compose",
    "compose_experiment",
    "dump",
    "load",
    "to_container",
    "expand_overrides",
    "chain_definition",
    "ensemble_hash",
    "model_definition",
    "merge_overrides",
    "resolvers_allowed",
    "select_ensemble",
    "sampler_options",
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

_store = ConfigStore.instance()
_store.store(name="base_config", node=RootConfig)


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


def _flatten_message(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _schema_fields(type_name: str) -> list[str]:
    from dataclasses import fields

    from . import schema

    cls = getattr(schema, type_name, None)
    return [f.name for f in fields(cls)] if cls is not None else []


def _one_line(exc: BaseException, conf: Path | None = None) -> str:
    """Hydra's and OmegaConf's multi-line errors as one line: key, value, what is allowed."""
    text = _flatten_message(exc)
    m = re.search(r"Could not override '([^']+)'", text) or re.search(r"full_key: (\S+)", text)
    key = m.group(1) if m else None
    m = re.search(r"Key '([^']+)' not in '(\w+)'", text)
    if m:
        allowed = ", ".join(_schema_fields(m.group(2)))
        return f"{key or m.group(1)}: unknown key {m.group(1)!r}; allowed: {allowed}"
    m = re.search(r"Value '([^']*)' of type '(\w+)' could not be converted to (\w+)", text)
    if m:
        if key is None:
            m_key = re.search(r"override (\S+?)=", text)
            key = m_key.group(1) if m_key else "value"
        return f"{key} = {m.group(1)!r}; allowed: a value of type {m.group(3).lower()}"
    m = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if m and conf is not None:
        group = m.group(1)
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        return f"{group} = {m.group(2)!r}; allowed: {', '.join(options)}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return first


def _check_override_key(override: str) -> None:
    """Refuse keys with a segment starting with ``_`` (``__dict__`` and the like): no config
    key does, and such names reach Python attributes when the dataclasses are built."""
    key = override.split("=", 1)[0].lstrip("+~")
    for old, new in RENAMED_KEYS.items():
        if key == old or key.endswith("." + old) or f".{old}." in f".{key}.":
            raise ConfigError(f"{key}: the key {old!r} is renamed; allowed: {new!r} (the gradient flow)")
    for segment in re.split(r"[./@]", key):
        if segment.startswith("_"):
            raise ConfigError(
                f"{key}: unknown key {segment!r}; allowed: config keys, which never start with '_'"
            )


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
    else:
        found = _resolver(data) if isinstance(data, str) else None
        return (key, data, found) if found else None
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
                raise ConfigError(f"ensembles.{name}.{old}: the key {old!r} is renamed; allowed: {new!r} "
                                  "(the gradient flow)")


def _sampler_options(obj: RootConfig) -> None:
    """Fill in (and check) the ``sampler.options`` of samplers that declare a dataclass."""
    for name, ens in obj.ensembles.items():
        kind = SAMPLERS.get(ens.sampler.name)
        key = f"ensembles.{name}.sampler.options"
        if kind is None:
            continue  # validation names the unknown sampler
        if kind.options is None:
            if ens.sampler.options:
                raise ConfigError(f"{key} = {dict(ens.sampler.options)!r}; allowed: no options for "
                                  f"sampler {kind.name!r}")
            continue
        allowed = [f.name for f in dataclasses.fields(kind.options)]
        unknown = sorted(set(ens.sampler.options) - set(allowed))
        if unknown:
            raise ConfigError(f"{key}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
        try:
            typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(kind.options),
                                                        dict(ens.sampler.options)))
        except (OmegaConfBaseException, HydraException) as exc:
            raise ConfigError(f"{key}: {_one_line(exc)}") from None
        # options added after stores were written stay out at their default (config.hashes),
        # so a resolved config can switch to another sampler without a stray key
        from .hashes import OPTION_KEYS_ADDED

        added = OPTION_KEYS_ADDED.get(kind.name, {})
        ens.sampler.options = {k: v for k, v in dataclasses.asdict(typed).items() if not (k in added and v == added[k])}


def sampler_options(ens: EnsembleConfig):
    """The typed options dataclass of ``ens``'s sampler (``None`` if it declares none)."""
    kind = SAMPLERS.lookup(ens.sampler.name)
    return None if kind.options is None else kind.options(**ens.sampler.options)


def _unknown_keys(data: object, cls: type, prefix: str) -> None:
    """Refuse keys the schema does not have, at any depth (OmegaConf drops unknown keys
    below a ``dict[str, dataclass]`` such as ``ensembles`` without a word)."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            if prefix or key != "hydra":
                raise ConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(names)}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            _unknown_keys(value, hint, where + ".")
        elif typing.get_origin(hint) is dict and isinstance(value, dict):
            item = typing.get_args(hint)[1]
            for name, sub in value.items():
                _unknown_keys(sub, item, f"{where}.{name}.")


def _typed(cfg: DictConfig) -> RootConfig:
    _refuse_renamed(cfg)
    _unknown_keys(OmegaConf.to_container(cfg, resolve=False), RootConfig, "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RootConfig), cfg)
        obj = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, HydraException) as exc:
        raise ConfigError(_one_line(exc)) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a key the dataclasses cannot hold
        raise ConfigError(f"configuration cannot be built: {exc}") from None
    assert isinstance(obj, RootConfig)
    _refuse_built_resolvers(obj)
    _sampler_options(obj)
    validate_root(obj)
    return obj


def compose(
    overrides: Sequence[str] = (), conf_dir: str | os.PathLike | None = None
) -> RootConfig:
    """Compose ``config.yaml`` with ``overrides``; typed and validated, or ``ConfigError``."""
    directory = config_dir(conf_dir)
    for override in overrides:
        _check_override_key(override)
        _check_override_resolvers(override)
    try:
        with initialize_config_dir(config_dir=str(directory), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (OmegaConfBaseException, HydraException) as exc:
        raise ConfigError(_one_line(exc, directory)) from None
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return _typed(cfg)


def merge_overrides(cfg: RootConfig, overrides: Sequence[str]) -> RootConfig:
    """``cfg`` with dotted ``key=value`` overrides applied; typed and validated."""
    for override in overrides:
        _check_override_resolvers(override)
    try:
        merged = OmegaConf.merge(OmegaConf.create(to_container(cfg)), OmegaConf.from_dotlist(list(overrides)))
    except (OmegaConfBaseException, HydraException, ValueError) as exc:
        raise ConfigError(f"overrides {list(overrides)}: {_one_line(exc)}") from None
    return _typed(merged)


def compose_experiment(
    experiment: str, overrides: Sequence[str] = (), conf_dir: str | os.PathLike | None = None
) -> RootConfig:
    """``compose`` of ``conf/experiment/<experiment>.yaml`` with further ``overrides``."""
    return compose([f"+experiment={experiment}", *overrides], conf_dir)


def to_container(cfg: RootConfig | EnsembleConfig) -> dict:
    """Plain nested dict (JSON and YAML serialisable)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def dump(cfg: RootConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically)."""
    write_text_atomic(path, yaml.safe_dump(to_container(cfg), sort_keys=False))


def load(path: str | os.PathLike) -> RootConfig:
    """Read a resolved YAML written by ``dump``; typed and validated."""
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
    return _typed(OmegaConf.create(data))


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
