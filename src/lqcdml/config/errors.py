"""The configuration error (one line: key, value, what is allowed)."""

from __future__ import annotations

from ..errors import LqcdmlError

__all__ = ["ConfigError", "fail"]


class ConfigError(LqcdmlError, ValueError):
    """A configuration value outside what is allowed; the message names key, value and rule."""


def fail(key: str, value: object, allowed: str) -> None:
    """Raise ``ConfigError`` for ``key = value``."""
    raise ConfigError(f"{key} = {value!r}; allowed: {allowed}")
