"""Rerun triggers: the import closure of a command's module, its digest, and Snakemake
rerunning exactly the jobs whose code changed."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lqcdml.code_digest import module_closure, source_digest

from ..cli.helpers import BIN, REPO, env_with_bin

SNAKEMAKE = str(BIN / "snakemake")
SRC = REPO / "src" / "lqcdml"

FAKE = {
    "__init__.py": '__version__ = "9.9.9"\n',
    "core.py": "thing = 1\n",
    "json.py": "",  # shadowed by the stdlib's: `import json` is not this one
    "lazy.py": "",
    "unused.py": "",
    "star.py": "",
    "cli/__init__.py": "",
    "cli/entry.py": (
        "import os\n"
        "import json\n"
        "from collections import OrderedDict\n"
        "import fakepkg.util.absmod\n"
        "from ..core import thing\n"
        "from . import helper\n"
        "from .. import sub\n"
        "from ..star import *\n"
        "\n"
        "def run():\n"
        "    from ..lazy import something\n"
        "    return something\n"
    ),
    "cli/helper.py": "",
    "cli/other.py": "import fakepkg.unused\n",
    "util/__init__.py": "from .inner import y\n",
    "util/inner.py": "y = 2\n",
    "util/absmod.py": "",
    "sub/__init__.py": "",
    "sub/deep.py": "",
}


def _fake_package(base: Path) -> Path:
    root = base / "fakepkg"
    for rel, text in FAKE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _rel(root: Path, files: list[Path]) -> set[str]:
    return {f.relative_to(root).as_posix() for f in files}


# --- the closure and the digest, on a small fake package ------------------------------


def test_closure_follows_absolute_relative_lazy_and_package_imports(tmp_path):
    root = _fake_package(tmp_path)
    closure = module_closure(root, "fakepkg.cli.entry")
    assert closure == sorted(closure)
    assert _rel(root, closure) == {
        "__init__.py",
        "cli/__init__.py",
        "cli/entry.py",  # the entry and its packages
        "util/__init__.py",
        "util/absmod.py",  # import fakepkg.util.absmod (and its package)
        "util/inner.py",  # imported by util/__init__.py
        "core.py",  # from ..core import thing: a name of the module core
        "cli/helper.py",  # from . import helper: a submodule
        "sub/__init__.py",  # from .. import sub: a package
        "star.py",  # from ..star import *
        "lazy.py",  # imported inside a function
    }


def test_closure_of_a_dispatcher_leaves_out_its_imports_inside_functions(tmp_path):
    root = _fake_package(tmp_path)
    entry = "fakepkg.cli.entry"
    closure = _rel(root, module_closure(root, entry, dispatchers=[entry]))
    assert "lazy.py" not in closure and {"core.py", "util/inner.py"} <= closure


def test_closure_of_a_package_and_of_several_entries(tmp_path):
    root = _fake_package(tmp_path)
    assert _rel(root, module_closure(root, "fakepkg.util")) == {"__init__.py", "util/__init__.py", "util/inner.py"}
    both = _rel(root, module_closure(root, "fakepkg.cli.other", "fakepkg.sub.deep"))
    assert both == {"__init__.py", "cli/__init__.py", "cli/other.py", "unused.py", "sub/__init__.py", "sub/deep.py"}


def test_closure_of_a_missing_entry_module_is_an_error(tmp_path):
    root = _fake_package(tmp_path)
    with pytest.raises(ValueError, match="fakepkg.cli.nothing"):
        module_closure(root, "fakepkg.cli.nothing")


def _fresh_cache(monkeypatch, path) -> None:
    """A new process's import cache, on the file ``path`` (``"off"``: none)."""
    from lqcdml import code_digest

    monkeypatch.setenv("LQCDML_IMPORT_CACHE", str(path))
    monkeypatch.setattr(code_digest._ImportCache, "_shared", None)


def test_the_import_cache_is_used_across_processes_and_a_foreign_file_is_ignored(tmp_path, monkeypatch):
    """The cached import statements give the closure the parse gives (a second process parses
    nothing), the resolution against the tree runs every time (a new submodule counts at once),
    and a cache file some other program wrote, or a torn one, is ignored and rewritten."""
    import json

    from lqcdml import code_digest

    root, cache = _fake_package(tmp_path), tmp_path / "cache" / "imports.json"
    _fresh_cache(monkeypatch, "off")
    parsed = module_closure(root, "fakepkg.cli.entry")
    _fresh_cache(monkeypatch, cache)
    assert module_closure(root, "fakepkg.cli.entry") == parsed and cache.is_file()
    assert json.loads(cache.read_text())["version"] == code_digest._ImportCache.VERSION

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed although cached")

    _fresh_cache(monkeypatch, cache)
    with monkeypatch.context() as m:
        m.setattr(code_digest.ast, "parse", no_parse)
        assert module_closure(root, "fakepkg.cli.entry") == parsed
        # `from . import helper` names a module by the files present: a new one counts at once
        (root / "sub" / "extra.py").write_text("")
        (root / "cli" / "uses.py").write_text("from ..sub import extra\n")
        with pytest.raises(AssertionError, match="parsed although cached"):
            module_closure(root, "fakepkg.cli.uses")  # a new file's bytes are not cached
    (root / "sub" / "extra.py").unlink()
    for foreign in ("not json", "[1, 2]", '{"version": 1, "files": {"x": [["from", 1]]}}', '{"version": 99}'):
        cache.write_text(foreign)
        _fresh_cache(monkeypatch, cache)
        assert module_closure(root, "fakepkg.cli.entry") == parsed, foreign
        assert json.loads(cache.read_text())["version"] == code_digest._ImportCache.VERSION
    # a malformed entry under a real key is parsed again, not trusted
    data = json.loads(cache.read_text())
    data["files"] = {key: [["from", "x", None]] for key in data["files"]}
    cache.write_text(json.dumps(data))
    _fresh_cache(monkeypatch, cache)
    assert module_closure(root, "fakepkg.cli.entry") == parsed
    # where the cache lies: XDG_CACHE_HOME, else the home folder's .cache; without a home folder none
    from lqcdml.code_digest import _cache_file

    monkeypatch.delenv("LQCDML_IMPORT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache_file() == tmp_path / "xdg" / "lqcdml" / "import-scan.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache_file() == tmp_path / "home" / ".cache" / "lqcdml" / "import-scan.json"
    monkeypatch.delenv("HOME")
    monkeypatch.setattr("os.path.expanduser", lambda p: p)  # what it returns without HOME or a passwd entry
    assert _cache_file() is None
    monkeypatch.undo()
    # a folder where the cache file would be: no cache, the same closure, no error
    cache.unlink()
    cache.mkdir()
    _fresh_cache(monkeypatch, cache)
    assert module_closure(root, "fakepkg.cli.entry") == parsed


def test_digest_changes_with_a_file_of_the_closure_only(tmp_path):
    root = _fake_package(tmp_path)
    before = source_digest(root, "fakepkg.cli.entry")
    assert re.fullmatch(r"9\.9\.9-[0-9a-f]{12}", before), before
    assert source_digest(root, "fakepkg.cli.entry", version="1.2.3").startswith("1.2.3-")
    for outside in ("unused.py", "cli/other.py", "sub/deep.py", "json.py"):
        with open(root / outside, "a") as f:
            f.write("# a comment\n")
        assert source_digest(root, "fakepkg.cli.entry") == before, outside
    for inside in ("lazy.py", "util/inner.py", "sub/__init__.py", "cli/helper.py"):
        with open(root / inside, "a") as f:
            f.write("# a comment\n")
        after = source_digest(root, "fakepkg.cli.entry")
        assert after != before, inside
        before = after


def test_digest_depends_on_the_files_not_on_where_the_tree_lies(tmp_path):
    root = _fake_package(tmp_path / "a")
    copy = tmp_path / "b" / "fakepkg"
    shutil.copytree(root, copy)
    assert source_digest(root, "fakepkg.cli.entry") == source_digest(copy, "fakepkg.cli.entry")
    (copy / "helper2.py").write_text("")  # outside the closure
    assert source_digest(root, "fakepkg.cli.entry") == source_digest(copy, "fakepkg.cli.entry")
    (copy / "cli" / "helper.py").write_text("\n")
    assert source_digest(root, "fakepkg.cli.entry") != source_digest(copy, "fakepkg.cli.entry")


# --- the real package ---------------------------------------------------------------


def _folders(entries, dispatchers=()) -> set[str]:
    closure = module_closure(SRC, *entries, dispatchers=dispatchers)
    return {p.relative_to(SRC).parts[0] for p in closure}


def test_the_statement_walk_finds_every_import_that_ast_walk_finds():
    """The closure reads the statements of a file only (imports are statements): the same
    imports as a walk over every node, for each module of the package."""
    import ast

    from lqcdml.code_digest import _imports, _raw_imports, _statements

    for file in sorted(SRC.rglob("*.py")):
        tree = ast.parse(file.read_bytes())
        name = ".".join(file.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        walked = _imports(_raw_imports(ast.walk(tree)), name, file, SRC)
        assert _imports(_raw_imports(_statements(tree)), name, file, SRC) == walked, file
        assert sorted(map(ast.dump, (n for n in _statements(tree) if isinstance(n, (ast.Import, ast.ImportFrom))))) == (
            sorted(map(ast.dump, (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))))
        ), file


def test_generate_closure_has_every_folder_it_runs_and_not_the_analysis():
    folders = _folders(["lqcdml.cli.generate", "lqcdml.cli.main"], ["lqcdml.cli.main"])
    assert {"solvers", "observables", "nn", "samplers", "theories", "lattice", "store", "config"} <= folders
    assert "analysis" not in folders


def test_measure_closure_has_the_solvers():
    folders = _folders(["lqcdml.cli.measure"])
    assert {"solvers", "observables", "theories", "lattice", "store", "config"} <= folders


@pytest.mark.parametrize(
    "entry", ["lqcdml.cli.generate", "lqcdml.cli.measure", "lqcdml.cli.train", "lqcdml.cli.analyze", "lqcdml.cli.main"]
)
def test_closure_has_every_module_that_importing_it_loads(entry):
    """What Python actually loads on import is part of the static closure."""
    code = (
        "import sys, importlib; importlib.import_module(sys.argv[1]); "
        "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items()) "
        "if n.split('.')[0] == 'lqcdml' and getattr(m, '__file__', None)))"
    )
    out = subprocess.run([sys.executable, "-c", code, entry], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = {Path(f).resolve() for f in out.stdout.split()}
    assert loaded and all(SRC in f.parents for f in loaded), loaded
    missing = loaded - {p.resolve() for p in module_closure(SRC, entry)}
    assert not missing, missing


# --- Snakemake, in a copy of the repository ---------------------------------------------

TARGET = "results/ci_tiny/observables/u1/r01.zarr"


def _scheduled(text: str) -> dict[str, str]:
    """rule -> reason of every job of a dry run's output."""
    jobs, rule = {}, None
    for line in text.splitlines():
        m = re.match(r"(?:local)?rule (\w+):$", line.strip())
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("reason:"):
            jobs[rule] = line.strip().removeprefix("reason:").strip()
            rule = None
    return jobs


def _append(path: Path, line: str = "# a harmless comment") -> None:
    with open(path, "a") as f:
        f.write(f"\n{line}\n")


@pytest.mark.slow
def test_a_code_change_reruns_the_jobs_that_run_it(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("Snakefile", "pyproject.toml"):
        shutil.copy2(REPO / name, repo / name)
    for name in ("workflow", "conf", "src", "profiles"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    src = repo / "src" / "lqcdml"

    def snakemake(*args):
        out = subprocess.run(
            [SNAKEMAKE, "-s", str(repo / "Snakefile"), "-d", str(repo), "-c1", "--config", "experiment=ci_tiny", *args],
            env=env_with_bin(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout + out.stderr

    def dry_run():
        text = snakemake("-n", "--", TARGET)
        jobs = _scheduled(text)
        assert bool(jobs) != ("Nothing to be done" in text), text[-3000:]
        return jobs

    snakemake("--", TARGET)
    assert (repo / TARGET).is_dir()
    assert dry_run() == {}
    # outside the code of compose, generate and measure: nothing to rerun
    _append(src / "analysis" / "plots.py")
    assert dry_run() == {}
    # only measure runs cli/measure.py
    _append(src / "cli" / "measure.py")
    jobs = dry_run()
    assert set(jobs) == {"measure"} and jobs["measure"].startswith("Params have changed"), jobs
    # the solvers (left out of the hand-written lists before) rerun generate and measure
    _append(src / "solvers" / "cg.py")
    jobs = dry_run()
    assert {"generate", "measure"} <= set(jobs), jobs
    # by generate's own trigger, not only through the recomposed config: once the config
    # is recomposed (same contents), generate still reruns, for its changed code
    snakemake("--", "results/ci_tiny/config.yaml")
    jobs = dry_run()
    assert set(jobs) == {"generate", "measure"}, jobs
    assert jobs["generate"].startswith("Params have changed"), jobs
