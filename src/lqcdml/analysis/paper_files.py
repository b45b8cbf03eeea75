"""The published comparisons of each paper study, as data: ``published/<experiment>.yaml``.

A file names the paper (``title``), gives its sources (``sources``: a name for each text
the ``source`` column shows) and lists the rows of its table (``rows``): each a ``kind``
of comparison (``paper_rows``) with the keys that kind reads, the ensemble and observable of
the experiment, the published number and the name of its source. Files are read with
``yaml.safe_load`` and checked when loaded: an unknown or missing key, kind or source, or a
value of the wrong type, is a one-line ``PaperFileError``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import yaml

from ..errors import LqcdmlError
from .paper_rows import KEY_TYPES, ROW_KINDS

__all__ = ["FOLDER", "Paper", "PaperFileError", "paper_names", "load_paper"]

#: one file per paper experiment, named after it
FOLDER = Path(__file__).with_name("published")
_TOP = ("title", "sources", "rows")


class PaperFileError(LqcdmlError, ValueError):
    """A paper file that does not say what the table needs; the message names the key."""


@dataclass(frozen=True)
class Paper:
    """A paper's table: its title and its rows (checked, each ``source`` replaced by its text)."""

    name: str
    title: str
    rows: tuple[dict, ...]


def paper_names() -> tuple[str, ...]:
    """The experiments that have a paper file."""
    return tuple(sorted(p.stem for p in FOLDER.glob("*.yaml")))


@functools.cache
def load_paper(name: str, folder: Path = FOLDER) -> Paper:
    """The paper file of experiment ``name``, checked."""
    path = folder / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PaperFileError(f"{path}: cannot be read as YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise PaperFileError(f"{path}: a mapping with {', '.join(_TOP)}; allowed: that mapping")
    _known(path, "", data, _TOP, _TOP)
    sources = data["sources"]
    if not isinstance(data["title"], str) or not isinstance(sources, dict) or not isinstance(data["rows"], list):
        raise PaperFileError(f"{path}: title must be text, sources a mapping and rows a list")
    rows = tuple(_row(path, f"rows[{i}]", spec, sources) for i, spec in enumerate(data["rows"]))
    return Paper(name, data["title"], rows)


def _known(path: Path, where: str, spec: dict, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    for key in spec:
        if key not in allowed:
            raise PaperFileError(f"{path}: {where}{key}: unknown key; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in spec:
            raise PaperFileError(f"{path}: {where}{key}: missing; required: {', '.join(required)}")


def _row(path: Path, where: str, spec: object, sources: dict) -> dict:
    """One row, checked: its keys, their types, its source (replaced by the text) and the
    placeholders of its quantity."""
    if not isinstance(spec, dict) or spec.get("kind") not in ROW_KINDS:
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        raise PaperFileError(f"{path}: {where}.kind = {kind!r}; allowed: {', '.join(ROW_KINDS)}")
    kind = ROW_KINDS[spec["kind"]]
    required = ("kind", "quantity", "ensemble", *kind.required)
    _known(path, f"{where}.", spec, required, (*required, *kind.optional))
    row = {"kind": spec["kind"]}
    for key, value in spec.items():
        if key != "kind":
            row[key] = _typed(path, f"{where}.{key}", KEY_TYPES[key], value)
    if "source" in row:
        if row["source"] not in sources or not isinstance(sources[row["source"]], str):
            raise PaperFileError(f"{path}: {where}.source = {row['source']!r}; allowed: {', '.join(sources)}")
        row["source"] = sources[row["source"]]
    try:
        row["quantity"].format(**dict.fromkeys(kind.placeholders, 0))
    except (KeyError, IndexError, ValueError):
        raise PaperFileError(
            f"{path}: {where}.quantity = {row['quantity']!r}; allowed placeholders: "
            f"{', '.join('{' + p + '}' for p in kind.placeholders) or 'none'}"
        ) from None
    return row


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(path: Path, where: str, want: object, value: object) -> object:
    """``value`` as ``want`` says (numbers as floats), or a one-line error naming what is allowed."""
    if (
        want == "published"
        and isinstance(value, list)
        and len(value) == 2
        and _number(value[0])
        and (value[1] is None or _number(value[1]))
    ):
        return [float(value[0]), None if value[1] is None else float(value[1])]
    if want is float and _number(value):
        return float(value)
    if want is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if want is str and isinstance(value, str):
        return value
    if (
        isinstance(want, list)
        and isinstance(value, list)
        and all(isinstance(v, want[0]) and not isinstance(v, bool) for v in value)
    ):
        return list(value)
    allowed = {"published": "[value, error or null]"}.get(want) if isinstance(want, str) else None
    if isinstance(want, list):
        allowed = f"a list of {want[0].__name__}"
    raise PaperFileError(f"{path}: {where} = {value!r}; allowed: {allowed or getattr(want, '__name__', want)}")
