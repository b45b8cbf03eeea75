"""Where the kernels are built and found, first-use builds, stale-build removal, ``lqcdml devices``.

Fake builds (a stand-in for torch's compile, folders without a compiler) except the one
slow test, which builds into a temporary ``LQCDML_KERNEL_DIR`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types

import pytest
import torch

from lqcdml import kernels
from lqcdml.kernels import build, dispatch, report

BUILDING = "lqcdml kernels: building the compiled CPU kernels once into"


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process that has loaded no kernels, with its builds under ``tmp_path/kernels``."""
    monkeypatch.setenv("LQCDML_KERNEL_DIR", str(tmp_path / "kernels"))
    monkeypatch.setenv("LQCDML_KERNEL_ARCH", "portable")
    monkeypatch.setattr(build, "cpu_supported", lambda: True)
    dispatch.reset()
    yield tmp_path / "kernels"
    dispatch.reset()  # the next test loads the real build again


def _links() -> torch.Tensor:
    return torch.eye(3, dtype=torch.complex128).expand(1, 4, 2, 2, 2, 2, 3, 3).contiguous()


def _fake_compile(calls: list, fail: str | None = None):
    def compile_(directory, verbose):
        calls.append(directory)
        if fail:
            raise RuntimeError(fail)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{build.module_name()}.so").write_bytes(b"")
        return types.SimpleNamespace(__name__=build.module_name())

    return compile_


def test_the_build_folder_override_and_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LQCDML_KERNEL_DIR", str(tmp_path / "mine"))
    assert build.load_roots() == [tmp_path / "mine"]
    assert build.build_root() == (tmp_path / "mine", "")
    assert build.build_directory() == tmp_path / "mine" / build.build_name()
    monkeypatch.delenv("LQCDML_KERNEL_DIR")
    (tmp_path / "file").write_text("")  # a default root nobody can create: read-only installs
    monkeypatch.setattr(build, "default_root", lambda: tmp_path / "file" / "lqcdml-kernels")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root, why = build.build_root()
    assert root == tmp_path / "cache" / "lqcdml-kernels"
    assert why == f"{tmp_path / 'file' / 'lqcdml-kernels'} is not writable"
    assert build.load_roots() == [tmp_path / "file" / "lqcdml-kernels", root]
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG rules say
    assert build.cache_root() == build.Path.home() / ".cache" / "lqcdml-kernels"


@pytest.mark.parametrize("arch", ["portable", "native"])
def test_stale_removal_keeps_the_other_architecture(monkeypatch, tmp_path, arch):
    monkeypatch.setenv("LQCDML_KERNEL_ARCH", arch)
    other = "native" if arch == "portable" else "portable"
    py, plat = build.group().split("-")[1:]
    names = {
        "current": build.build_name(),
        "older": f"{arch}-{py}-{plat}-{'0' * 16}",
        "other_arch": f"{other}-{py}-{plat}-{'1' * 16}",
        "other_python": f"{arch}-py39-{plat}-{'2' * 16}",
        "other_platform": f"{arch}-{py}-linux_aarch64-{'3' * 16}",
        "old_layout": "0123456789abcdef",
        "unrelated": "notes",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.so").write_bytes(b"")
    removed = build.remove_stale_builds(tmp_path)
    assert sorted(p.name for p in removed) == sorted([names["older"], names["old_layout"]])
    kept = {k for k, name in names.items() if (tmp_path / name).is_dir()}
    assert kept == {"current", "other_arch", "other_python", "other_platform", "unrelated"}


def test_removal_waits_for_a_loader(monkeypatch, tmp_path):
    monkeypatch.setenv("LQCDML_KERNEL_ARCH", "portable")
    stale = tmp_path / f"{build.group()}-{'0' * 16}"
    stale.mkdir()
    with build.locked(tmp_path, shared=True):  # a process opening a build of this group
        remover = threading.Thread(target=build.remove_stale_builds, args=(tmp_path,))
        remover.start()
        remover.join(0.5)
        assert remover.is_alive() and stale.is_dir()
    remover.join(10)
    assert not remover.is_alive() and not stale.exists()


def test_the_first_use_builds_once_and_says_so(fresh, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(build, "_compile", _fake_compile(calls))
    assert kernels.extension() is None  # reporting never compiles
    assert kernels.enabled(_links(), n=3) and kernels.enabled(_links(), n=3)
    assert calls == [fresh / build.build_name()]
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"{BUILDING} {fresh / build.build_name()} (about a minute)"]


def test_a_failed_build_runs_torch_and_says_why_once(fresh, monkeypatch, capsys):
    from lqcdml.lattice import SU, make_generators
    from lqcdml.theories import WilsonGaugeAction

    calls = []
    error = "Error building extension 'k': c++: not found\nlog"
    monkeypatch.setattr(build, "_compile", _fake_compile(calls, error))
    links = SU(3).haar(make_generators(1, 1), (4, 2, 2, 2, 2)).to(torch.complex128)
    action = WilsonGaugeAction(5.0, SU(3))
    assert torch.equal(action.force(links), action.force_torch(links))
    assert not kernels.enabled(links, n=3) and len(calls) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == [
        (
            "lqcdml kernels: no compiled kernels, the torch path runs "
            "(RuntimeError: Error building extension 'k': c++: not found)"
        )
    ]
    assert err[0].startswith(BUILDING)
    monkeypatch.setenv("LQCDML_KERNELS", "extension")
    with pytest.raises(RuntimeError, match=r"unavailable \(RuntimeError: Error building extension"):
        kernels.enabled(links, n=3)


KERNEL_NAMES = {
    "gauge_force",
    "staggered_hop",
    "wilson_hop",
    "su3_exp_update",
    "u1_stout",
    "small_matmul",
    "plaquette_staple",
    "polyakov_staples",
    "su2_stout_update",
    "su3_stout_update",
    "stout_rotation",
}


def test_devices_lists_the_kernels():
    from lqcdml.cli.devices import devices

    out = json.loads(json.dumps(devices()))  # what the command prints
    assert out["torch"] == torch.__version__  # the earlier fields stay
    k = out["kernels"]
    assert set(k["paths"]) == KERNEL_NAMES
    assert (k["mode"], k["arch"], k["tag"], k["built"]) == ("auto", "portable", build.tag(), True)
    assert k["directory"] == str(build.build_directory())
    assert all(p["path"] == "compiled" and p["why"] == "built" for p in k["paths"].values())


def test_the_devices_command_prints_them(capsys):
    from lqcdml.cli.main import main

    assert main(["devices"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["kernels"]["paths"]) == KERNEL_NAMES


def test_devices_says_why_the_torch_path_runs(fresh, monkeypatch):
    assert report.cpu_path()[1].startswith("not built")
    assert report.report()["directory"] == str(fresh / build.build_name())
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    why = "not built, and no C++ compiler (no-such-compiler-here) to build it on first use"
    assert report.cpu_path() == ("torch", why)
    monkeypatch.setattr(build, "cpu_supported", lambda: False)
    assert report.cpu_path() == ("torch", dispatch.CPU_REASON)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    assert report.cpu_path() == ("torch", "disabled by LQCDML_KERNELS=torch")


SCRIPT = """
import torch
from lqcdml import kernels
links = torch.eye(3, dtype=torch.complex128).expand(1, 4, 2, 2, 2, 2, 3, 3).contiguous()
assert kernels.enabled(links, n=3) and kernels.enabled(links, n=3)
assert kernels.gauge_force(links, 5.0).abs().max().item() == 0.0
print(kernels.extension().__file__)
"""


@pytest.mark.slow
def test_a_real_build_goes_into_the_override_folder_once(tmp_path):
    real = build.built_library()
    before = os.stat(real).st_mtime_ns if real else None
    env = {**os.environ, "LQCDML_KERNEL_DIR": str(tmp_path), "LQCDML_KERNELS": "auto"}
    env.pop("LQCDML_KERNEL_ARCH", None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900, check=False
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    first, second = ([line for line in run.stderr.splitlines() if BUILDING in line] for run in runs)
    assert len(first) == 1 and second == []
    assert first[0].startswith(f"{BUILDING} {tmp_path}/portable-")
    assert runs[0].stdout.strip() == runs[1].stdout.strip()
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    assert runs[0].stdout.strip().startswith(str(tmp_path / f"portable-{py}-"))
    # the environment's build untouched
    assert (os.stat(real).st_mtime_ns if real else None) == before
