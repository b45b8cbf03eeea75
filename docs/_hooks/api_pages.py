"""mkdocs hook: the API reference, one generated page per package of ``src/lqcdml``.

Every package (a folder of ``src/lqcdml`` with an ``__init__.py``) gets ``api/<package>.md``
holding ``::: lqcdml.<package>`` (mkdocstrings renders its public names, then each of its
modules); the top-level modules (``errors``, ``atomic``, ``provenance``, ...) share
``api/lqcdml.md``; ``api/index.md`` lists them all with the first line of each docstring.
Packages are found when the site is built, so a new package is documented, and its
docstrings checked by ``mkdocs build --strict``, without editing the docs. Pages come in
the order of the layer table (docs/architecture.md#layer-table); packages not named
there follow in alphabetical order.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mkdocs.structure.files import File

#: the order of the layer table; the configuration packages after the physics and I/O
LAYER_ORDER = (
    "kernels",
    "lattice",
    "solvers",
    "theories",
    "observables",
    "nn",
    "samplers",
    "train",
    "estimators",
    "analysis",
    "store",
    "driver",
    "config",
    "kinds",
    "assembly",
    "identity",
    "cli",
)
API_SECTION = "API reference"


def _source(config) -> Path:
    return Path(config.config_file_path).parent / "src" / "lqcdml"


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line ("" without one)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def _packages(root: Path) -> list[str]:
    found = sorted(p.parent.name for p in root.glob("*/__init__.py"))
    return [p for p in LAYER_ORDER if p in found] + [p for p in found if p not in LAYER_ORDER]


def _top_modules(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__")


def on_config(config):
    """Point the nav's API section at the generated pages."""
    root = _source(config)
    pages = ["api/index.md", {"lqcdml": "api/lqcdml.md"}]
    pages += [{f"lqcdml.{p}": f"api/{p}.md"} for p in _packages(root)]
    for item in config.nav or []:
        if isinstance(item, dict) and API_SECTION in item:
            item[API_SECTION] = pages
    return config


def on_files(files, config):
    root = _source(config)
    packages = _packages(root)
    top = _top_modules(root)
    top_blocks = "".join(f"\n::: lqcdml.{m}\n" for m in top)
    generated = {
        "api/lqcdml.md": (
            "---\ntitle: lqcdml\n---\n\nThe package root and its top-level helper modules, which every "
            "layer may import ([layer table](../architecture.md#layer-table)).\n\n"
            "::: lqcdml\n    options:\n      show_submodules: false\n" + top_blocks
        ),
    }
    rows = [
        f"| [`lqcdml`](lqcdml.md) | {_summary(root / '__init__.py')} (modules: "
        + ", ".join(f"`{m}`" for m in top)
        + ") |"
    ]
    for p in packages:
        generated[f"api/{p}.md"] = f"---\ntitle: lqcdml.{p}\n---\n\n::: lqcdml.{p}\n"
        rows.append(f"| [`lqcdml.{p}`]({p}.md) | {_summary(root / p / '__init__.py')} |")
    generated["api/index.md"] = (
        "# API reference\n\nGenerated from the docstrings of `src/lqcdml` when the site is built: one page "
        "per package, in the order of the [layer table](../architecture.md#layer-table). Each page "
        "starts with the package's public names (its `__all__`), then every module of the package. "
        "The docstrings are plain prose with ``literals``, rendered as Markdown.\n\n"
        "| package | holds |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    for uri, content in generated.items():
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, content=content))
    return files
