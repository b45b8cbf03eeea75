"""Hostile command lines and files end in exactly one stderr line and exit code 2: no
traceback, no Python warning, nothing written (empty paths, huge or sparse gauge files,
byte-swapped and infinite links, argparse errors, overflowing seeds, ensemble names)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lqcdml.cli import main as cli
from lqcdml.cli.main import main
from lqcdml.config import ConfigError
from lqcdml.store import gauge_layout, write_nersc

from ..store import hostile_gauge_files as hostile

TINY = ["+experiment=ci_tiny", "--ensemble", "u1"]


@dataclass(frozen=True)
class Case:
    """``argv(inputs)`` (input files are made in ``inputs``), the stderr line's start and a
    part of it."""

    id: str
    argv: Callable[[Path], list[str]]
    prefix: str
    match: str
    code: int = 2


def _file(make: Callable[[Path], Path], name: str) -> Callable[[Path], str]:
    return lambda inputs: str(make(inputs / name))


def _good_nersc(inputs: Path) -> str:
    write_nersc(inputs / "good.nersc", hostile.links())
    return str(inputs / "good.nersc")


def _import(make: Callable[[Path], str], *options: str) -> Callable[[Path], list[str]]:
    return lambda inputs: ["import", make(inputs), "--store", "s.zarr", *options]


EMPTY = "path ''; allowed: a non-empty path"
MEMORY = "needs about 88.6 GiB of memory; allowed: 1 GiB"
SWAPPED = "links are not SU(3): max(|U^dag U - 1|, |det U - 1|) = nan; allowed: 1e-05"
SEED = "0 <= seed <= "

CASES = [
    # 1. empty (and name-less) paths
    Case(
        "generate-store-empty",
        lambda i: ["generate", *TINY, "--store", ""],
        "lqcdml generate: error:",
        f"argument --store: {EMPTY}",
    ),
    Case(
        "generate-store-dot",
        lambda i: ["generate", *TINY, "--store", "."],
        "lqcdml generate: error:",
        "argument --store: path '.'; allowed: a path ending in a file or folder name",
    ),
    Case(
        "generate-manifest-empty",
        lambda i: ["generate", *TINY, "--store", "s.zarr", "--manifest", ""],
        "lqcdml generate: error:",
        f"argument --manifest: {EMPTY}",
    ),
    Case(
        "import-store-empty",
        lambda i: ["import", _good_nersc(i), "--store", ""],
        "lqcdml import: error:",
        f"argument --store: {EMPTY}",
    ),
    Case(
        "import-store-root",
        lambda i: ["import", _good_nersc(i), "--store", "/"],
        "lqcdml import: error:",
        "argument --store: path '/'; allowed: a path ending in a file or folder name",
    ),
    Case(
        "import-file-empty",
        lambda i: ["import", "", "--store", "s.zarr"],
        "lqcdml import: error:",
        f"argument files: {EMPTY}",
    ),
    Case("verify-empty", lambda i: ["verify", ""], "lqcdml verify: error:", f"argument store: {EMPTY}"),
    Case("info-empty", lambda i: ["info", ""], "lqcdml info: error:", f"argument store: {EMPTY}"),
    Case(
        "export-empty",
        lambda i: ["export", "", "--out", "x", "--format", "nersc"],
        "lqcdml export: error:",
        f"argument store: {EMPTY}",
    ),
    Case(
        "export-out-empty",
        lambda i: ["export", "s.zarr", "--out", "", "--format", "nersc"],
        "lqcdml export: error:",
        f"argument --out: {EMPTY}",
    ),
    Case(
        "measure-store-empty",
        lambda i: ["measure", *TINY, "--store", "", "--out", "o.zarr"],
        "lqcdml measure: error:",
        f"argument --store: {EMPTY}",
    ),
    Case(
        "train-checkpoint-empty",
        lambda i: ["train", "+experiment=ci_tiny", "--checkpoint", ""],
        "lqcdml train: error:",
        f"argument --checkpoint: {EMPTY}",
    ),
    Case(
        "estimate-obs-empty",
        lambda i: ["estimate", *TINY, "--out", "e.json", "--obs", ""],
        "lqcdml estimate: error:",
        f"argument --obs: {EMPTY}",
    ),
    Case(
        "compose-out-empty",
        lambda i: ["compose", "+experiment=ci_tiny", "--out", ""],
        "lqcdml compose: error:",
        f"argument --out: {EMPTY}",
    ),
    Case(
        "compose-config-empty",
        lambda i: ["compose", "--config", "", "--out", "c.yaml"],
        "lqcdml compose: error:",
        f"argument --config: {EMPTY}",
    ),
    Case(
        "compose-config-dir-empty",
        lambda i: ["compose", "--config-dir", "", "--out", "c.yaml"],
        "lqcdml compose: error:",
        f"argument --config-dir: {EMPTY}",
    ),
    Case(
        "analyze-out-empty",
        lambda i: ["analyze", "--obs", "o.zarr", "--out", ""],
        "lqcdml analyze: error:",
        f"argument --out: {EMPTY}",
    ),
    Case("devices-out-empty", lambda i: ["devices", "--out", ""], "lqcdml devices: error:", f"argument --out: {EMPTY}"),
    Case(
        "profile-dest-empty",
        lambda i: ["profile", "install", "cluster", "--dest", ""],
        "lqcdml profile install: error:",
        f"argument --dest: {EMPTY}",
    ),
    # 2. extents no int64 holds
    Case(
        "nersc-dimension-1e22",
        _import(_file(hostile.huge_dimension_nersc, "huge.nersc")),
        "lqcdml import: error:",
        "DIMENSION_1 = 10000000000000000000000; allowed: 1 <= DIMENSION_1 <= 2^28",
    ),
    Case(
        "nersc-sites-2^64",
        _import(_file(lambda p: hostile.huge_dimension_nersc(p, (2**16,) * 4), "sites.nersc")),
        "lqcdml import: error:",
        "65536x65536x65536x65536 is 18446744073709551616 sites; allowed: at most 2^28",
    ),
    # 3. ~10.5 GB sparse files whose headers agree with their sizes
    Case("nersc-sparse-10GB", _import(_file(hostile.sparse_nersc, "big.nersc")), "lqcdml import: error:", MEMORY),
    Case("ildg-sparse-10GB", _import(_file(hostile.sparse_ildg, "big.lime")), "lqcdml import: error:", MEMORY),
    Case(
        "ildg-sparse-10GB-no-checksum",
        _import(_file(lambda p: hostile.sparse_ildg(p, checksum=False), "big.lime"), "--no-checksum"),
        "lqcdml import: error:",
        MEMORY,
    ),
    Case(
        "ildg-sparse-10GB-wrong-geometry",
        _import(_file(lambda p: hostile.sparse_ildg(p, (4, 4, 4, 4)), "g.lime")),
        "lqcdml import: error:",
        f"ildg-binary-data has {hostile.BIG_BYTES} bytes; su3gauge 4x4x4x4",
    ),
    # 4. byte-swapped data: NaN group deviation
    Case(
        "ildg-byte-swapped-no-checksum",
        _import(_file(hostile.byte_swapped_ildg, "swapped.lime"), "--no-checksum"),
        "lqcdml import: error:",
        SWAPPED,
    ),
    Case(
        "ildg-byte-swapped-reproject",
        _import(_file(hostile.byte_swapped_ildg, "swapped.lime"), "--no-checksum", "--reproject"),
        "lqcdml import: error:",
        SWAPPED,
    ),
    Case(
        "ildg-byte-swapped-checksummed",
        _import(_file(lambda p: hostile.byte_swapped_ildg(p, True), "sw.lime")),
        "lqcdml import: error:",
        SWAPPED,
    ),
    # 5. infinite links: no RuntimeWarning before the line
    Case(
        "nersc-inf-link",
        _import(_file(hostile.inf_nersc, "inf.nersc")),
        "lqcdml import: error:",
        "links hold NaN or infinite numbers",
    ),
    Case(
        "nersc-inf-link-two-rows",
        _import(_file(lambda p: hostile.inf_nersc(p, True), "inf2.nersc")),
        "lqcdml import: error:",
        "links hold NaN or infinite numbers",
    ),
    # 6. argparse errors: one line, not the usage
    Case(
        "unknown-option",
        lambda i: ["generate", *TINY, "--store", "s.zarr", "--bogus"],
        "lqcdml: error:",
        "unrecognized arguments: --bogus",
    ),
    Case(
        "unknown-option-import",
        lambda i: ["import", "a.nersc", "--store", "s.zarr", "--fast"],
        "lqcdml: error:",
        "unrecognized arguments: --fast",
    ),
    Case(
        "missing-required",
        lambda i: ["generate", *TINY],
        "lqcdml generate: error:",
        "the following arguments are required: --store",
    ),
    Case(
        "bad-choice",
        lambda i: ["generate", *TINY, "--store", "s.zarr", "--progress", "fast"],
        "lqcdml generate: error:",
        "argument --progress: invalid choice: 'fast'",
    ),
    Case(
        "bad-int",
        lambda i: ["generate", *TINY, "--store", "s.zarr", "--replica", "one"],
        "lqcdml generate: error:",
        "argument --replica: invalid int value: 'one'",
    ),
    Case(
        "bad-int-nested",
        lambda i: ["profile", "install", "cluster", "--gpus", "x"],
        "lqcdml profile install: error:",
        "argument --gpus: invalid int value: 'x'",
    ),
    Case("unknown-command", lambda i: ["frobnicate"], "lqcdml: error:", "argument command: invalid choice"),
    Case("no-command", lambda i: [], "lqcdml: error:", "the following arguments are required: command"),
    Case("no-subcommand", lambda i: ["profile"], "lqcdml profile: error:", "required: profile_command"),
    # 7. a seed whose derived seeds overflow (one through the command line; every seed: tests/config)
    Case(
        "chain-seed-2^70",
        lambda i: ["generate", *TINY, "chain.seed=1180591620717411303424", "--store", "s.zarr"],
        "lqcdml generate: error:",
        f"ensembles.u1.chain.seed = 1180591620717411303424; allowed: {SEED}18446744073709551",
    ),
    # 8. ensemble names that are not identifiers, checked before they become override keys
    Case(
        "ensemble-dotdot",
        lambda i: ["generate", "+experiment=quickstart", "--ensemble", "..", "--store", "s.zarr", "chain.n_configs=7"],
        "lqcdml generate: error:",
        "--ensemble = '..'; allowed: an ensemble name of letters, digits and '_'",
    ),
    Case(
        "ensemble-space",
        lambda i: ["generate", "+experiment=quickstart", "--ensemble", "a b", "--store", "s.zarr"],
        "lqcdml generate: error:",
        "--ensemble = 'a b'; allowed",
    ),
    Case(
        "ensemble-equals",
        lambda i: ["generate", "+experiment=quickstart", "--ensemble", "x=1", "--store", "s.zarr", "chain.n_configs=7"],
        "lqcdml generate: error:",
        "--ensemble = 'x=1'; allowed",
    ),
    Case(
        "ensemble-empty",
        lambda i: ["compose", "+experiment=quickstart", "--ensemble", "", "--out", "c.yaml"],
        "lqcdml compose: error:",
        "--ensemble = ''; allowed",
    ),
]


def _listing(root: Path) -> list[str]:
    """Every path below ``root`` (names only: the sparse files are never read)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory (relative and empty paths land here), input files in
    ``inputs``, and 1 GiB for reading gauge files whatever this machine has."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gauge_layout, "memory_allowed", lambda: 1 << 30)
    (tmp_path / "inputs").mkdir()
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_ends_in_one_line_and_writes_nothing(case, workdir, capsys):
    argv = case.argv(workdir / "inputs")
    before = _listing(workdir)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip() and err.endswith("\n"), err
    assert lines[0].startswith(case.prefix) and case.match in lines[0], err
    assert "Traceback" not in err and "Warning" not in err
    assert _listing(workdir) == before


def test_help_still_prints_the_full_usage(capsys):
    assert main(["generate", "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: lqcdml generate") and "--store STORE" in out and out.count("\n") > 10
    assert err == ""


def test_python_warnings_stay_off_stderr_and_the_callers_filters_are_kept(monkeypatch, capsys):
    def noisy(args):
        warnings.warn("overflow encountered in multiply", RuntimeWarning, stacklevel=2)
        raise ConfigError("x = 1; allowed: 2")

    monkeypatch.setattr(cli, "run", noisy)
    filters = list(warnings.filters)
    assert main(["info", "s.zarr"]) == 2
    assert capsys.readouterr().err == "lqcdml info: error: x = 1; allowed: 2\n"
    assert warnings.filters == filters
