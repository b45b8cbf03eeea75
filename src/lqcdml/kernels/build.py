"""Build (or find) the compiled CPU kernels: ``python -m lqcdml.kernels.build``, or on first use.

A build is the folder ``ROOT/<arch>-<python>-<platform>-<tag>/`` (e.g.
``portable-py311-linux_x86_64-e0d472bf3821411a``), where ``tag`` hashes the source, the
compiler flags, torch's and Python's versions: a changed source or torch is a new build,
never a stale one. ``ROOT`` is, for building and loading alike:

- ``LQCDML_KERNEL_DIR`` when set (read-only installs, a cluster's shared folder);
- else ``<sys.prefix>/lib/lqcdml-kernels`` (the environment's own), where a build found is
  loaded, and built into while it is writable;
- else the user's cache, ``$XDG_CACHE_HOME/lqcdml-kernels`` or ``~/.cache/lqcdml-kernels``.

Builders of one (arch, python, platform) group in one ROOT serialise on the file lock
``ROOT/.lock-<group>`` (exclusive); loaders hold it shared while they open the library. A
build removes, under that lock, the older builds of its own group only (and folders of
the old bare-``<tag>`` layout, which nothing loads): the other architecture's, Python's or
platform's builds stay.

Instruction set (``LQCDML_KERNEL_ARCH``): ``portable`` (default) targets x86-64-v3 (AVX2
and FMA: every x86 node since 2013), so one environment on a shared file system runs on
all nodes of a cluster; a CPU without those is refused at load time (the torch path runs).
``native`` builds for the building machine only (a few per cent faster with AVX-512 here).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import platform
import re
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("csrc") / "lattice_kernels.cpp"
BASE_CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-std=c++17")
ARCHS = ("portable", "native")
#: CPU flags (/proc/cpuinfo) that x86-64-v3 code needs
X86_64_V3 = ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe")
MODULE_PREFIX = "lqcdml_kernels_"
#: ``arch-python-platform-tag``: the folder name of a build
BUILD_NAME = re.compile(r"^(portable|native)-(py\d+)-(\w+)-([0-9a-f]{16})$")
LEGACY_NAME = re.compile(r"^[0-9a-f]{16}$")


def arch() -> str:
    value = os.environ.get("LQCDML_KERNEL_ARCH", "portable")
    if value not in ARCHS:
        raise ValueError(f"LQCDML_KERNEL_ARCH = {value!r}; allowed: {', '.join(ARCHS)}")
    return value


def cflags() -> tuple[str, ...]:
    if arch() == "native":
        return (*BASE_CFLAGS, "-march=native")
    if platform.machine() == "x86_64":
        return (*BASE_CFLAGS, "-march=x86-64-v3")
    return BASE_CFLAGS


def cpu_supported() -> bool:
    """Whether this CPU runs a portable build (always true for native builds and non-x86)."""
    if arch() == "native" or platform.machine() != "x86_64":
        return True
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    lines = (line for line in text.splitlines() if line.startswith("flags"))
    flags = next((line.split(":", 1)[1].split() for line in lines), [])
    return all(f in flags for f in X86_64_V3)


def tag() -> str:
    """Hash of source, flags and torch version: the name of this build."""
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(repr((cflags(), torch.__version__, sys.version_info[:2])).encode())
    return h.hexdigest()[:16]


def module_name() -> str:
    return MODULE_PREFIX + tag()


def group() -> str:
    """``arch-python-platform``: builds of one group replace each other, others stay."""
    plat = re.sub(r"\W", "_", f"{sys.platform}_{platform.machine()}")
    return f"{arch()}-py{sys.version_info[0]}{sys.version_info[1]}-{plat}"


def build_name() -> str:
    return f"{group()}-{tag()}"


def default_root() -> Path:
    return Path(sys.prefix) / "lib" / "lqcdml-kernels"


def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "lqcdml-kernels"


def override_root() -> Path | None:
    """``LQCDML_KERNEL_DIR`` (unset or empty: none)."""
    value = os.environ.get("LQCDML_KERNEL_DIR", "")
    return Path(value).expanduser().absolute() if value else None


def writable(path: Path) -> bool:
    """Whether ``path`` is, or can be made as, a folder this process writes into."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def load_roots() -> list[Path]:
    override = override_root()
    return [override] if override else [default_root(), cache_root()]


def build_root() -> tuple[Path, str]:
    """Where a build goes, and why there when it is not the default (else ``""``)."""
    override = override_root()
    if override:
        return override, ""
    if writable(default_root()):
        return default_root(), ""
    return cache_root(), f"{default_root()} is not writable"


def built_library() -> Path | None:
    """Path of the built shared object, or ``None`` when this build does not exist yet."""
    for root in load_roots():
        path = root / build_name() / f"{module_name()}.so"
        if path.is_file():
            return path
    return None


def build_directory() -> Path:
    """The folder of this build: where it is, else where it would be built."""
    path = built_library()
    return path.parent if path else build_root()[0] / build_name()


@contextlib.contextmanager
def locked(root: Path, shared: bool) -> Iterator[None]:
    """Hold ``root``'s lock of this group (shared: loading; exclusive: building, removing).

    A shared lock in a folder this process cannot write to (no lock file) is skipped.
    """
    path = root / f".lock-{group()}"
    if not shared:
        root.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        if not shared:
            raise
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            yield
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _import(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(module_name(), str(path))
    spec = importlib.util.spec_from_file_location(module_name(), str(path), loader=loader)
    assert spec is not None  # a loader given: always a spec
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def import_built() -> ModuleType | None:
    """Import the built extension without touching the compiler (``None`` if absent)."""
    path = built_library()
    if path is None:
        return None
    with locked(path.parent.parent, shared=True):
        return _import(path) if path.is_file() else None


def _compile(directory: Path, verbose: bool) -> ModuleType:
    """torch's extension build into ``directory`` (ninja from this environment's scripts too)."""
    from torch.utils.cpp_extension import load

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lock").unlink(missing_ok=True)  # torch's baton, left by a killed build
    path, log = os.environ.get("PATH", ""), logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), path])
    if not verbose:
        log.setLevel(logging.ERROR)  # its compiler warnings: not the one line of a first use
    try:
        return load(
            name=module_name(),
            sources=[str(SOURCE)],
            extra_cflags=list(cflags()),
            build_directory=str(directory),
            verbose=verbose,
        )
    finally:
        os.environ["PATH"] = path
        log.setLevel(level)


def _remove_stale(root: Path) -> list[Path]:
    """Older builds of this group in ``root``, and old-layout folders (caller holds the lock)."""
    current, mine = build_name(), group()
    stale = []
    for d in root.iterdir() if root.is_dir() else ():
        match = BUILD_NAME.match(d.name)
        same_group = match is not None and "-".join(match.groups()[:3]) == mine
        if d.is_dir() and d.name != current and (same_group or LEGACY_NAME.match(d.name)):
            stale.append(d)
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    return stale


def remove_stale_builds(root: Path | None = None) -> list[Path]:
    """Delete the older builds of this group (default: in the build root), under its lock."""
    root = root or build_root()[0]
    with locked(root, shared=False):
        return _remove_stale(root)


def build(verbose: bool = False) -> ModuleType:
    """Compile the extension unless built (one line on stderr when it compiles), drop stale
    builds of its group, and return it."""
    found = built_library()
    if found and not writable(found.parent.parent):
        return _import(found)  # a read-only install's build
    root, why = (found.parent.parent, "") if found else build_root()
    directory = root / build_name()
    library = directory / f"{module_name()}.so"
    with locked(root, shared=False):
        if library.is_file():
            module = _import(library)
        else:
            note = f"; {why}" if why else ""
            print(
                f"lqcdml kernels: building the compiled CPU kernels once into {directory} (about a minute{note})",
                file=sys.stderr,
                flush=True,
            )
            module = _compile(directory, verbose)
        _remove_stale(root)
    return module


def main() -> None:
    """The install's step: build this source, drop older builds of its group."""
    build()
    print(f"lqcdml kernels: built {built_library()}")


if __name__ == "__main__":
    main()
