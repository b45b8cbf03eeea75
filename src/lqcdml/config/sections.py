"""Typing one config section: a plain mapping into its dataclass, refused in one line.

A section's keys must be fields of its dataclass (the selected kind's, for the sections a
kind selects); values are converted by OmegaConf's structured merge (``"2"`` to ``2`` for an
``int`` field). Every refusal names the key, the value or unknown key, and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

__all__ = ["typed_section", "one_line", "field_names", "dataclasses_in", "config_errors"]

T = TypeVar("T")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def dataclasses_in(cls: type) -> dict[str, type]:
    """``cls`` and the dataclasses of its fields, at any depth, by name."""
    import typing

    out = {cls.__name__: cls}
    for hint in typing.get_type_hints(cls).values():
        for arg in (hint, *typing.get_args(hint)):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type) and arg.__name__ not in out:
                out.update(dataclasses_in(arg))
    return out


def config_errors(*extra: type[Exception]) -> tuple[type[Exception], ...]:
    """The errors of typing a config: OmegaConf's, Hydra's where Hydra is loaded (only Hydra
    raises them, and only composing, ``config.compose``, imports Hydra: a job that loads a
    resolved YAML does not), and ``extra``."""
    hydra = sys.modules.get("hydra.errors")
    return (OmegaConfBaseException, *(() if hydra is None else (hydra.HydraException,)), *extra)


def _flatten_message(exc: BaseException | None) -> str:
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def one_line(exc: BaseException, classes: dict[str, type] | None = None, key_prefix: str = "") -> str:
    """Hydra's and OmegaConf's multi-line errors as one line: key, value, what is allowed.
    ``classes``: dataclasses by name, for the allowed keys of an unknown-key error."""
    text = _flatten_message(exc)
    m = re.search(r"Could not override '([^']+)'", text) or re.search(r"full_key: (\S+)", text)
    key = key_prefix + m.group(1) if m else None
    m = re.search(r"Key '([^']+)' not in '(\w+)'", text)
    if m:
        cls = (classes or {}).get(m.group(2))
        allowed = ", ".join(field_names(cls)) if cls is not None else ""
        return f"{key or key_prefix + m.group(1)}: unknown key {m.group(1)!r}; allowed: {allowed}"
    m = re.search(r"Value '([^']*)' of type '(\w+)' could not be converted to (\w+)", text)
    if m:
        if key is None:
            m_key = re.search(r"override (\S+?)=", text)
            key = m_key.group(1) if m_key else "value"
        return f"{key} = {m.group(1)!r}; allowed: a value of type {m.group(3).lower()}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return f"{key_prefix.rstrip('.')}: {first}" if key_prefix else first


def _literal(data: Any) -> Any:
    """``data`` with every ``${`` escaped: the data is resolved already, so a ``${...}`` left in a
    string is literal text (OmegaConf would otherwise resolve it again when typing)."""
    if isinstance(data, str):
        return data.replace("${", "\\${")
    if isinstance(data, dict):
        return {k: _literal(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_literal(v) for v in data]
    return data


def typed_section(cls: type[T], data: Any, key: str, what: str = "", lenient: bool = False) -> T:
    """``data`` (a mapping, or ``None`` for all defaults) as an instance of the dataclass ``cls``.

    ``key``: the section's full key for messages (``ensembles.u1.theory``); ``what``: whose
    keys they are (``theory.name = 'u1'``), named when a key is unknown. ``lenient``: drop
    unknown keys instead (reading a section another version wrote)."""
    if data is None:
        data = {}
    allowed = field_names(cls)
    if not isinstance(data, dict):
        raise ConfigError(f"{key} = {data!r}; allowed: a mapping of {', '.join(allowed)}")
    unknown = [k for k in data if k not in allowed]
    if unknown and not lenient:
        whose = f" of {what}" if what else ""
        raise ConfigError(f"{key}.{unknown[0]}: unknown key {unknown[0]!r}{whose}; allowed: {', '.join(allowed)}")
    data = {k: _literal(v) for k, v in data.items() if k in allowed}
    try:
        return _structured(cls, data)
    except config_errors() as exc:
        raise ConfigError(one_line(exc, dataclasses_in(cls), key + ".")) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a value the dataclass cannot hold
        raise ConfigError(f"{key}: cannot be built: {exc}") from None


def _structured(cls: type[T], data: dict) -> T:
    """``data`` merged onto the dataclass ``cls`` by OmegaConf, as an instance of ``cls``."""
    template: DictConfig = _template(cls)  # type: ignore[arg-type]  # a class is hashable
    return OmegaConf.to_object(OmegaConf.merge(template, data))  # type: ignore[return-value]


@functools.cache
def _template(cls: type) -> DictConfig:
    """The structured config of the dataclass ``cls``, built once per process (``merge`` copies
    it; a job types every section of every ensemble of its experiment through it)."""
    return OmegaConf.structured(cls)
