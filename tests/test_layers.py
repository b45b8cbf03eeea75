"""Each package imports only the packages below it (DESIGN.md, section 1).

``kernels`` (compiled CPU kernels) sits below ``lattice`` and imports torch only; the
top-level helper modules (``errors``, ``atomic``, ``provenance``) may be imported anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lqcdml

ROOT = Path(lqcdml.__file__).parent
HELPERS = {"errors", "atomic", "provenance", "__version__"}
ALLOWED = {
    "kernels": set(),
    "lattice": {"kernels"},
    "solvers": set(),
    "theories": {"kernels", "lattice", "solvers"},
    "observables": {"lattice", "solvers", "theories"},
    "nn": {"lattice", "theories", "observables"},
    "samplers": {"lattice", "solvers", "theories", "observables", "nn"},
    "train": {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers"},
    "estimators": {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers", "train"},
    "analysis": {"kernels", "lattice", "solvers", "theories", "observables", "nn", "samplers", "train",
                 "estimators"},
    "store": {"lattice", "observables"},
}


def _imported_packages(path: Path) -> set[str]:
    """The lqcdml packages a module imports (relative or absolute imports)."""
    rel = path.relative_to(ROOT).parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = list(rel[:-1])
            base = base[: len(base) - (node.level - 1)]
            names = (node.module.split(".") if node.module else [])
            target = base + names
            if target:
                out.add(target[0])
            else:  # "from .. import x": x is a package or module of lqcdml
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lqcdml."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lqcdml."))
    return out


def test_packages_import_only_what_the_design_allows():
    violations = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            extra = _imported_packages(path) - allowed - HELPERS - {package}
            if extra:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not violations, "; ".join(violations)


def test_the_kernels_need_torch_only():
    for path in (ROOT / "kernels").rglob("*.py"):
        assert _imported_packages(path) <= {"kernels"}, path
