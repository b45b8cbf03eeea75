"""Each package imports only the packages below it (docs/architecture.md#layer-table), and no
module of ``src/lqcdml`` reaches itself through its imports.

``kernels`` (compiled CPU kernels) sits below ``lattice`` and imports torch only; the
top-level helper modules (``errors``, ``atomic``, ``provenance``, ``code_digest``) may be imported anywhere.
``config`` (the config language) imports no physics: it finds the kinds through the plugin
loader ``config.catalogue`` by name, not by an import. Imports inside functions count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lqcdml

ROOT = Path(lqcdml.__file__).parent
HELPERS = {"errors", "atomic", "provenance", "code_digest", "__version__"}
PHYSICS = {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers", "train"}
ALLOWED = {
    "config": set(),
    "kernels": set(),
    "lattice": {"kernels"},
    "solvers": set(),
    "theories": {"kernels", "lattice", "solvers"},
    "observables": {"lattice", "solvers", "theories"},
    "nn": {"lattice", "theories", "observables"},
    "samplers": {"lattice", "solvers", "theories", "observables", "nn"},
    "train": {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers"},
    "kinds": PHYSICS | {"config"},
    "assembly": PHYSICS | {"config", "kinds"},
    "store": {"lattice", "observables"},
    "identity": PHYSICS | {"config", "kinds", "store"},
    "estimators": PHYSICS,
    "analysis": PHYSICS | {"estimators"},
    "driver": PHYSICS | {"config", "kinds", "assembly", "identity", "store", "estimators", "analysis"},
    "cli": PHYSICS | {"config", "kinds", "assembly", "identity", "store", "estimators", "analysis", "driver"},
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The lqcdml modules that module ``name`` imports (at any depth of its code), with the
    packages above each that importing it executes (except its own)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    own = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 2)}
    targets = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: package.count(".") + 2 - node.level]
                module = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                module = node.module or ""
            targets += [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        elif isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
    out = set()
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if not target or target == name:
            continue
        parts = target.split(".")
        out.update(anc for k in range(2, len(parts) + 1) if (anc := ".".join(parts[:k])) not in own)
    return out


def _package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_every_package_is_in_the_table():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED), packages ^ set(ALLOWED)


def test_packages_import_only_what_the_design_allows():
    violations = []
    for name in MODULES:
        package = _package(name)
        if package not in ALLOWED:
            continue
        extra = {_package(m) for m in _imports(name)} - ALLOWED[package] - HELPERS - {package, ""}
        if extra:
            violations.append(f"{name} imports {sorted(extra)}")
    assert not violations, "; ".join(violations)


def test_no_module_imports_itself_through_others():
    """Tarjan's strongly connected components of the module graph: every one a single module."""
    graph = {name: _imports(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_config_language_loads_without_torch():
    """The workflow composes configs at parse time: the language itself imports no physics."""
    code = "import sys, lqcdml.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_kernels_need_torch_only():
    for name in MODULES:
        if _package(name) == "kernels":
            assert {_package(m) for m in _imports(name)} <= {"kernels", ""}, name
