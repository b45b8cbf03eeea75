"""Where the config language finds the kinds: the catalogue.

The language (this package) knows sections and how to type them; which kinds exist, their
dataclasses and their checks belong to the catalogue, ``lqcdml.kinds``, which sits above the
physics packages and therefore above this one. It is found by name, as a plugin: the
built-in catalogue first, then every module another installed package names under the entry
point group ``lqcdml.kinds``, then the modules named in ``$LQCDML_PLUGINS`` (comma-separated
dotted names: kinds defined in a script or a test file reach the ``lqcdml`` commands and the
workflow's jobs that way). Importing such a module registers its kinds. The environment
names code to import, as ``PYTHONPATH`` does; no config value ever does.
"""

from __future__ import annotations

import importlib
import os
import re
from importlib.metadata import entry_points
from typing import Any, Protocol

__all__ = ["Catalogue", "catalogue", "BUILTIN", "ENTRY_POINT_GROUP", "PLUGINS_ENV"]

BUILTIN = "lqcdml.kinds"
ENTRY_POINT_GROUP = "lqcdml.kinds"
PLUGINS_ENV = "LQCDML_PLUGINS"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Catalogue(Protocol):
    """What the language asks of the kinds."""

    def type_ensemble(self, data: Any, prefix: str, lenient: bool = False) -> Any:
        """The typed ``EnsembleConfig`` of a plain mapping (``prefix``: ``ensembles.NAME``)."""

    def validate_ensemble(self, ens: Any, prefix: str) -> None:
        """Range and consistency checks of one ensemble, ``ConfigError`` in one line."""

    def validate_experiment(self, cfg: Any) -> None:
        """Checks across the ensembles of one experiment (training sources, chain starts)."""


_loaded: Catalogue | None = None


def catalogue() -> Catalogue:
    """The catalogue, with the built-in kinds and every installed plugin's registered."""
    global _loaded
    if _loaded is None:
        module = importlib.import_module(BUILTIN)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            if entry.value != BUILTIN:
                entry.load()
        for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
            if not _MODULE_NAME.match(name):
                from .errors import ConfigError

                raise ConfigError(f"{PLUGINS_ENV} names {name!r}; allowed: dotted module names, comma-separated")
            importlib.import_module(name)
        _loaded = module.CATALOGUE
    return _loaded
