"""Digests of the source code a command runs, for the workflow's rerun triggers.

The files a module depends on are found by static analysis: every ``import`` and
``from ... import`` statement of a module file (at any depth: also imports inside
functions, classes and ``if`` blocks) that names a module of the same package is
followed, transitively. Only files below ``root`` are read; nothing is imported, so
``root`` may be a copy of the source that differs from the installed package.

What counts, for a package ``pkg`` whose source folder is ``root``:

* ``import pkg.a.b`` and ``from pkg.a import b`` / ``from .a import b`` (relative
  imports resolved against the importing module's package): the module ``pkg.a.b``
  when it exists (a submodule), else ``pkg.a`` (``b`` is a name defined in it);
* a package counts as its ``__init__.py``, and a module inside a package also counts
  the ``__init__.py`` of every package above it, since Python executes them first;
* imports of other packages (stdlib, third party) are ignored, and so are module
  names without a file (namespace folders count only through their modules);
* a module named as a *dispatcher* (``cli/main.py``, which imports each subcommand's
  module inside the function that runs it) is followed through the imports that run
  when it is imported only, not through those inside its functions.

Not seen: imports by ``importlib.import_module``/``__import__`` with computed names,
and non-Python files read at run time.

Each file's import statements (as data: names, levels, imported names) are cached by the
SHA-256 of its bytes, in memory and in a JSON file under ``$XDG_CACHE_HOME/lqcdml`` (else
``~/.cache/lqcdml``; ``LQCDML_IMPORT_CACHE`` names another file, ``off`` none): parsing the
~110 files of a command's closure cost every ``lqcdml measure`` and every Snakefile parse
0.5-1 s. Resolving them against ``root`` (which names are modules) runs every time, so the
cache holds nothing that depends on other files; an unreadable or foreign cache file is
ignored and rewritten.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import cast

__all__ = ["module_closure", "source_digest"]


def _module_file(root: Path, name: str) -> Path | None:
    """The file of the dotted module ``name`` (``root.name`` first), or None."""
    parts = name.split(".")
    if parts[0] != root.name:
        return None
    base = root.joinpath(*parts[1:])
    init = base / "__init__.py"
    if init.is_file():
        return init
    module = base.with_suffix(".py") if len(parts) > 1 else None
    if module is not None and module.is_file():
        return module
    return None


def _is_module(root: Path, name: str) -> bool:
    return _module_file(root, name) is not None


def _package_of(name: str, file: Path) -> str:
    """The package a module's relative imports resolve against."""
    return name if file.name == "__init__.py" else name.rpartition(".")[0]


#: an import statement as data: ``("import", name)`` or ``("from", level, module, [names])``
RawImport = tuple


def _raw_imports(nodes: Iterable[ast.AST]) -> list[RawImport]:
    """The import statements among ``nodes``, as data (JSON-able, independent of other files)."""
    out: list[RawImport] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out.extend(("import", alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append(("from", node.level, node.module or "", [alias.name for alias in node.names]))
    return out


def _imports(raw: Iterable[RawImport], name: str, file: Path, root: Path) -> set[str]:
    """Dotted names of the package's modules imported by the statements ``raw`` of module ``name``."""
    top = root.name
    out: set[str] = set()
    for entry in raw:
        if entry[0] == "import":
            if entry[1] == top or entry[1].startswith(top + "."):
                out.add(entry[1])
            continue
        _, level, module, names = entry
        if level:
            package = _package_of(name, file).split(".")
            if level - 1 >= len(package):
                continue  # beyond the top-level package: an ImportError at run time
            base = ".".join(package[: len(package) - (level - 1)])
            target = f"{base}.{module}" if module else base
        else:
            target = module
        if not (target == top or target.startswith(top + ".")):
            continue
        out.add(target)
        for alias in names:
            if alias != "*" and _is_module(root, f"{target}.{alias}"):
                out.add(f"{target}.{alias}")
    return out


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def module_closure(root: Path, *modules: str, dispatchers: Iterable[str] = ()) -> list[Path]:
    """The files of ``modules`` and of every package module they import, transitively.

    ``root`` is the package's source folder (its name is the package name), ``modules``
    dotted names inside it (``"lqcdml.cli.generate"``). Modules named in ``dispatchers``
    are followed through their module-level imports only: their imports inside functions
    (the lazy imports of a command dispatcher, one per subcommand) are not followed, so
    name the subcommand module among ``modules`` instead. Returns the sorted file paths.
    Raises ValueError for an entry module without a file.
    """
    root = Path(root)
    shallow = set(dispatchers)
    seen: dict[str, Path] = {}
    todo: list[str] = []
    for entry in modules:
        if _module_file(root, entry) is None:
            raise ValueError(f"no module {entry!r} below {root}")
        todo.append(entry)
    cache = _ImportCache.shared()
    while todo:
        for name in _with_parents(todo.pop()):
            if name in seen:
                continue
            file = _module_file(root, name)
            if file is None:
                continue
            seen[name] = file
            raw = cache.raw_imports(file.read_bytes(), file, name in shallow)
            todo.extend(_imports(raw, name, file, root) - seen.keys())
    cache.save()
    return sorted(set(seen.values()))


class _ImportCache:
    """Import statements of source files by the SHA-256 of their bytes (and the ``shallow`` flag),
    in memory and in a JSON file shared by processes (module docstring)."""

    VERSION = 1
    #: entries kept (the newest; a file's every edited version adds one)
    MAX_ENTRIES = 4000
    _shared: _ImportCache | None = None

    def __init__(self, path: Path | None) -> None:
        self.path, self.entries, self.dirty = path, self._read(path), False

    @classmethod
    def shared(cls) -> _ImportCache:
        if cls._shared is None:
            cls._shared = cls(_cache_file())
        return cls._shared

    @classmethod
    def _read(cls, path: Path | None) -> dict[str, list]:
        if path is None:
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != cls.VERSION or not isinstance(data.get("files"), dict):
            return {}
        return data["files"]

    def raw_imports(self, source: bytes, file: Path, shallow: bool) -> list[RawImport]:
        key = f"{hashlib.sha256(source).hexdigest()}:{int(shallow)}"
        cached = self.entries.get(key)
        if _well_formed(cached):
            return cast(list[RawImport], cached)
        try:
            tree = ast.parse(source, filename=str(file))
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])  # counted; the command fails on it anyway
        raw = _raw_imports(_outside_functions(tree) if shallow else _statements(tree))
        self.entries[key], self.dirty = raw, True
        return raw

    def save(self) -> None:
        """Write the file when entries were added: a uniquely named temporary renamed over it, so
        that concurrent writers never mix (the last one wins; every version is correct)."""
        if not self.dirty or self.path is None:
            return
        self.dirty = False
        if len(self.entries) > self.MAX_ENTRIES:
            self.entries = dict(list(self.entries.items())[-self.MAX_ENTRIES :])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".partial")
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump({"version": self.VERSION, "files": self.entries}, fh)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a cache: a read-only or full disk costs the parse, nothing else


def _well_formed(raw: object) -> bool:
    """A cached entry of the shape ``_raw_imports`` writes (anything else is parsed again)."""
    if not isinstance(raw, list):
        return False
    for entry in raw:
        if not isinstance(entry, list | tuple) or not entry:
            return False
        if entry[0] == "import":
            if len(entry) != 2 or not isinstance(entry[1], str):
                return False
        elif entry[0] == "from":
            if not (
                len(entry) == 4
                and isinstance(entry[1], int)
                and isinstance(entry[2], str)
                and isinstance(entry[3], list)
                and all(isinstance(x, str) for x in entry[3])
            ):
                return False
        else:
            return False
    return True


def _cache_file() -> Path | None:
    """The cache file (``LQCDML_IMPORT_CACHE``: a path, or ``off``), else under the XDG cache folder."""
    named = os.environ.get("LQCDML_IMPORT_CACHE")
    if named:
        return None if named == "off" else Path(named)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None  # no home folder (HOME unset): no cache rather than a folder named "~" here
        base = os.path.join(home, ".cache")
    return Path(base) / "lqcdml" / "import-scan.json"


def _statements(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node below ``tree`` but expressions and what they hold: the nodes ``ast.walk``
    gives that can be imports (an import is a statement, and no expression holds a statement),
    for a sixth of the walk (``lqcdml measure`` digests its closure of ~110 files every run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if not isinstance(child, ast.expr))


def _outside_functions(node: ast.AST) -> Iterable[ast.AST]:
    """The nodes below ``node`` that run on import: also inside if/try/with blocks and
    class bodies, not inside function bodies."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _outside_functions(child)


def _version(root: Path) -> str:
    """``__version__`` of ``root/__init__.py`` when a string literal, else the installed
    distribution's version of that name, else ``0.0.0+unknown``."""
    init = root / "__init__.py"
    try:
        tree = ast.parse(init.read_bytes())
    except (OSError, SyntaxError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        ):
            return node.value.value
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(root.name)
    except PackageNotFoundError:
        return "0.0.0+unknown"


def source_digest(root: Path, *modules: str, dispatchers: Iterable[str] = (), version: str | None = None) -> str:
    """``"{version}-{hash}"``: the package version and the first 12 hex digits of the
    SHA-256 of the relative path and bytes of every file of ``module_closure(root,
    *modules, dispatchers=dispatchers)``, in path order. ``version`` defaults to the
    package's (see ``_version``)."""
    root = Path(root)
    digest = hashlib.sha256()
    for file in module_closure(root, *modules, dispatchers=dispatchers):
        data = file.read_bytes()
        rel = file.relative_to(root).as_posix().encode()
        digest.update(b"%d:%s\0%d:" % (len(rel), rel, len(data)))
        digest.update(data)
    return f"{version if version is not None else _version(root)}-{digest.hexdigest()[:12]}"
