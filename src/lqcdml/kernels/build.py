"""Build (or find) the compiled CPU kernels: ``python -m lqcdml.kernels.build``.

The shared object lives in the environment that runs it, ``<sys.prefix>/lib/lqcdml-kernels/
<tag>/``, where ``tag`` hashes the source, the compiler flags and the torch version; a
changed source or torch is a new build, never a stale one. Concurrent builders serialise
on torch's lock file in that directory.

Instruction set (``LQCDML_KERNEL_ARCH``): ``portable`` (default) targets x86-64-v3 (AVX2
and FMA: every x86 node since 2013), so one environment on a shared file system runs on
all nodes of a cluster; a CPU without those is refused at load time (the torch path runs).
``native`` builds for the building machine only (a few per cent faster with AVX-512 here).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import sys
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("csrc") / "lattice_kernels.cpp"
BASE_CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-std=c++17")
ARCHS = ("portable", "native")
#: CPU flags (/proc/cpuinfo) that x86-64-v3 code needs
X86_64_V3 = ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe")


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
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return all(f in flags for f in X86_64_V3)


def tag() -> str:
    """Hash of source, flags and torch version: the name of this build."""
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(repr((cflags(), torch.__version__, sys.version_info[:2])).encode())
    return h.hexdigest()[:16]


MODULE_PREFIX = "lqcdml_kernels_"


def module_name() -> str:
    return MODULE_PREFIX + tag()


def build_directory() -> Path:
    return Path(sys.prefix) / "lib" / "lqcdml-kernels" / tag()


def built_library() -> Path | None:
    """Path of the built shared object, or ``None`` when this build does not exist yet."""
    path = build_directory() / f"{module_name()}.so"
    return path if path.is_file() else None


def import_built() -> ModuleType | None:
    """Import the built extension without touching the compiler (``None`` if absent)."""
    path = built_library()
    if path is None:
        return None
    loader = importlib.machinery.ExtensionFileLoader(module_name(), str(path))
    spec = importlib.util.spec_from_file_location(module_name(), str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def build(verbose: bool = False) -> ModuleType:
    """Compile the extension (a no-op when this build exists) and return it."""
    from torch.utils.cpp_extension import load

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    return load(
        name=module_name(),
        sources=[str(SOURCE)],
        extra_cflags=list(cflags()),
        build_directory=str(directory),
        verbose=verbose,
    )


def remove_stale_builds() -> list[Path]:
    """Delete the builds of other sources, flags or torch versions beside this one."""
    import shutil

    current = build_directory()
    stale = [d for d in current.parent.iterdir() if d.is_dir() and d != current]
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    return stale


def main() -> None:
    """The install's step: build this source, drop builds of earlier ones."""
    build()
    removed = remove_stale_builds()
    print(f"lqcdml kernels: built {built_library()}" + (f" (removed {len(removed)} stale builds)" if removed else ""))


if __name__ == "__main__":
    main()
