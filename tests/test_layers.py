"""Each package imports only the packages below it (docs/architecture.md#layer-table), and no
module of ``src/lqcdml`` reaches itself through its imports.

``kernels`` (compiled CPU kernels) sits below ``lattice`` and imports torch only; the
top-level helper modules (``errors``, ``atomic``, ``provenance``, ``code_digest``, ``lazy_exports``) may be imported
anywhere.
``config`` (the config language) imports no physics: it finds the kinds through the plugin
loader ``config.catalogue`` by name, not by an import. Imports inside functions count.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import lqcdml

ROOT = Path(lqcdml.__file__).parent
HELPERS = {"errors", "atomic", "provenance", "code_digest", "lazy_exports", "__version__"}
PHYSICS = {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers", "train"}
ALLOWED = {
    "config": set(),
    "kernels": set(),
    "lattice": {"kernels"},
    "solvers": set(),
    "theories": {"kernels", "lattice", "solvers"},
    "observables": {"lattice", "solvers", "theories"},
    "nn": {"kernels", "lattice", "theories", "observables"},
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


#: what the Snakefile's parse must not import (seconds each; torch several)
HEAVY = ("torch", "scipy", "sklearn", "matplotlib", "pyerrors", "xarray", "zarr")


def test_composing_every_experiment_loads_no_torch():
    """The Snakefile imports the catalogue and composes experiments at parse time (twice per
    cluster job): the kinds import torch, the physics packages, ``estimators`` and ``analysis``
    only where they build or run something, never to type or validate a config."""
    below = sorted(f"lqcdml.{p}" for p in PHYSICS | {"estimators", "analysis", "assembly", "identity", "store"})
    code = (
        "import sys, lqcdml.kinds\n"
        "from lqcdml.config import compose_experiment, config_dir\n"
        "names = sorted(p.stem for p in (config_dir() / 'experiment').glob('*.yaml'))\n"
        "for name in names:\n"
        "    compose_experiment(name)\n"
        f"print(len(names), [m for m in {list(HEAVY) + below!r} if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LQCDML_PLUGINS"}  # the built-in kinds only
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    n, loaded = out.strip().split(" ", 1)
    assert int(n) >= 1 and loaded == "[]", out


def test_the_kinds_mirror_the_names_their_checks_allow():
    """The kinds' checks read copies of the names the physics packages accept (importing those
    would import torch): the same names, in the same order (the messages list them)."""
    from lqcdml.kinds.models import ACTIVATION_NAMES, LOOP_TYPE_NAMES
    from lqcdml.kinds.samplers import INTEGRATOR_NAMES
    from lqcdml.kinds.theories import PHI4_CONVENTIONS
    from lqcdml.kinds.trainers import SCHEDULE_NAMES
    from lqcdml.kinds.validate import NOISE_NAMES
    from lqcdml.nn import LOOP_TYPES
    from lqcdml.nn.conv import ACTIVATIONS
    from lqcdml.observables.fermion import NOISES
    from lqcdml.samplers.integrators import SCHEMES
    from lqcdml.theories.phi4 import CONVENTIONS
    from lqcdml.train.flow import SCHEDULES

    assert PHI4_CONVENTIONS == tuple(CONVENTIONS)
    assert ACTIVATION_NAMES == tuple(ACTIVATIONS)
    assert LOOP_TYPE_NAMES == tuple(LOOP_TYPES)
    assert INTEGRATOR_NAMES == tuple(SCHEMES)
    assert SCHEDULE_NAMES == tuple(SCHEDULES)
    assert NOISE_NAMES == tuple(NOISES)


def test_the_kinds_answer_fermion_questions_as_their_operators_do():
    """``TheoryKind.fermions`` and ``dynamical`` (asked by the checks, from the config alone)
    agree with building the operator and the pseudofermion terms."""
    from lqcdml.kinds import THEORIES
    from lqcdml.kinds.theories import SUTheory, U1Theory

    cases = [U1Theory(lattice=[4, 4]), U1Theory(lattice=[4, 4], fermion="staggered", n_flavours=0)]
    cases += [
        SUTheory(lattice=[4, 4, 4, 4], fermion=f, n_flavours=n)
        for f, n in [("none", 0), ("staggered", 0), ("staggered", 1), ("staggered", 4), ("staggered", 6), ("wilson", 2)]
    ]
    for th in cases:
        kind = THEORIES.lookup(th.name)
        assert kind.fermions is not None and kind.dynamical is not None
        assert kind.fermions(th) == (kind.fermion_operator(th) is not None), th
        assert kind.dynamical(th) == bool(kind.fermion_terms(th, 1e-10, 1e-12)), th


def test_the_kernels_need_torch_only():
    for name in MODULES:
        if _package(name) == "kernels":
            assert {_package(m) for m in _imports(name)} <= {"kernels", ""}, name
