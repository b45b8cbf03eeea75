"""Package names loaded from their submodules on first use (PEP 562), standard library only.

A package that re-exports names of heavy submodules binds ``__getattr__, __dir__ =
lazy_exports(__name__, {name: submodule, ...})``: importing the package then imports none of
them, ``from package import name`` imports the one submodule that defines ``name`` (and caches
the value as a plain global), and ``dir(package)`` lists every exported name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of ``package`` whose ``exports`` map each name to its submodule."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
