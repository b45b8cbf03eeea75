"""One registry type for every family of configurable kinds.

A kind is a named entry that owns one config section: ``config`` is its dataclass (the keys
it reads, with their defaults), ``validate`` its range and consistency checks, ``doc`` one
line for listings. A family adds what its kinds do (build a sampler, a model, a trainer,
...) as fields or methods of its entry type; behaviour that differs by kind is asked of the
kind, never decided by testing its name elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..config.errors import ConfigError

__all__ = ["FunctionRef", "Kind", "Registry", "Validator", "resolve"]

#: (ensemble config, key prefix such as "ensembles.u1.") -> None, raising ConfigError
Validator = Callable[[Any, str], None]


#: a function (or object), or where it lives as ``"package.module:name"``: imported when
#: resolved, so that a kind can name code of a layer above the catalogue (``estimators``,
#: ``analysis``) without importing it, and without the workflow's rerun triggers of commands
#: that only look kinds up following it
FunctionRef = Callable[..., Any] | str


def resolve(ref: Any) -> Any:
    """What ``ref`` names (``ref`` itself unless it is a ``"module:name"`` string)."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, kw_only=True)
class Kind:
    """A configurable kind: ``name`` selects it, ``config`` is the dataclass of its section
    (``None``: it reads no section of its own)."""

    name: str
    config: type | None = None
    validate: Validator | None = None
    doc: str = ""


K = TypeVar("K", bound=Kind)


@dataclass
class Registry(Generic[K]):
    """Named entries of one family; lookup of an unknown name is a one-line ``ConfigError``."""

    family: str
    key: str  # the config key that selects an entry, for messages
    _entries: dict[str, K] = field(default_factory=dict)

    def register(self, entry: K, replace: bool = False) -> K:
        if entry.name in self._entries and not replace:
            raise ValueError(f"{self.family} {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries.values())

    def get(self, name: str | None) -> K | None:
        """The entry ``name``, or ``None`` (an unknown name, or no name)."""
        return None if name is None else self._entries.get(name)

    def lookup(self, name: str, key: str | None = None) -> K:
        """The entry ``name``, or a ConfigError naming the key and the allowed names."""
        if name not in self._entries:
            raise ConfigError(f"{key or self.key} = {name!r}; allowed: {', '.join(self._entries)}")
        return self._entries[name]
