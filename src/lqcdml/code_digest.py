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
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

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


def _imports(nodes: Iterable[ast.AST], name: str, file: Path, root: Path) -> set[str]:
    """Dotted names of the package's modules imported by ``nodes`` of module ``name``."""
    top = root.name
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(name, file).split(".")
                if node.level - 1 >= len(package):
                    continue  # beyond the top-level package: an ImportError at run time
                base = ".".join(package[: len(package) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not (target == top or target.startswith(top + ".")):
                continue
            out.add(target)
            for alias in node.names:
                if alias.name != "*" and _is_module(root, f"{target}.{alias.name}"):
                    out.add(f"{target}.{alias.name}")
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
    while todo:
        for name in _with_parents(todo.pop()):
            if name in seen:
                continue
            file = _module_file(root, name)
            if file is None:
                continue
            seen[name] = file
            todo.extend(_file_imports(file.read_bytes(), name, file, root, name in shallow) - seen.keys())
    return sorted(set(seen.values()))


@functools.lru_cache(maxsize=4096)
def _file_imports(source: bytes, name: str, file: Path, root: Path, shallow: bool) -> frozenset[str]:
    """``_imports`` of one module file's source, cached by its bytes: the digests of a
    workflow's rules walk overlapping closures, each file is parsed once per process."""
    try:
        tree = ast.parse(source, filename=str(file))
    except SyntaxError:
        return frozenset()  # counted; the command fails on it anyway
    nodes = _outside_functions(tree) if shallow else _statements(tree)
    return frozenset(_imports(nodes, name, file, root))


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
