"""No data runs code in the workflow's shells: every value a rule puts into a shell command
is quoted ({x:q}), so a results path with spaces, `;`, quotes, backquotes or `$(...)` and
--config overrides reach lqcdml as literal arguments."""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
import subprocess
from pathlib import Path

import pytest
import yaml

from ..cli.helpers import BIN, REPO, env_with_bin

SNAKEMAKE = str(BIN / "snakemake")
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
#: a results folder that runs `touch M` and `touch BQ` if a shell ever reads it unquoted
HOSTILE = "res a;b'c`touch BQ`$(touch M)"
UNQUOTED_OK = re.compile(r"threads|resources\..+")
PATH_OPTIONS = {
    "--config",
    "--store",
    "--manifest",
    "--model",
    "--start-store",
    "--source-store",
    "--checkpoint",
    "--out",
    "--obs",
    "--expensive-obs",
    "--manifests",
    "--estimates",
}


def _shell_commands(path: Path) -> list[str]:
    """The command string of every `shell:` directive of a Snakemake file."""
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() != "shell:":
            continue
        parts = []
        for nxt in lines[i + 1 :]:
            text = nxt.strip()
            if text.startswith("#"):
                continue
            if not text.startswith(('"', "'")):
                break
            parts.append(text)
        out.append(ast.literal_eval("(" + " ".join(parts) + ")"))
    return out


def test_every_placeholder_of_every_shell_is_quoted():
    commands = {p.name: _shell_commands(p) for p in RULE_FILES}
    assert sum(map(len, commands.values())) >= 8, commands  # every rule that runs lqcdml
    for name, shells in commands.items():
        for command in shells:
            for _, field, spec, _ in string.Formatter().parse(command):
                if field is None or UNQUOTED_OK.fullmatch(field):
                    continue
                assert spec == "q", f"{name}: {{{field}}} is not quoted ({{{field}:q}}) in: {command}"


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
    )


def _hostile_override() -> str:
    """--config overrides=[...] with the hostile results folder (a Hydra double-quoted string)."""
    return "overrides=" + json.dumps([f'paths.results="{HOSTILE}"'])


def _no_markers(root: Path) -> None:
    found = [p for p in root.rglob("*") if p.name in ("M", "BQ")]
    assert not found, found


def test_compose_rule_writes_a_hostile_results_path_literally(tmp_path):
    target = f"{HOSTILE}/ci_tiny/config.yaml"
    out = _snakemake(tmp_path, "-c1", "--config", "experiment=ci_tiny", _hostile_override(), "--", target)
    assert out.returncode == 0, out.stderr[-3000:]
    _no_markers(tmp_path)
    written = tmp_path / HOSTILE / "ci_tiny" / "config.yaml"
    assert yaml.safe_load(written.read_text())["paths"]["results"] == HOSTILE
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [HOSTILE]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["ci_slhmc", "ci_estimators"])
def test_dry_run_shells_pass_each_path_as_one_argument(tmp_path, experiment):
    """--model, --start-store, --source-store, --obs/--expensive-obs/--store: each option and
    each path its own shell word (the rule functions return lists, quoted one by one)."""
    out = _snakemake(tmp_path, "-n", "-p", "--config", f"experiment={experiment}", _hostile_override())
    assert out.returncode == 0, out.stderr[-3000:]
    _no_markers(tmp_path)
    commands = [
        ln.split("Shell command: ", 1)[1]
        for ln in (out.stdout + out.stderr).splitlines()
        if ln.startswith("Shell command: lqcdml")
    ]
    assert len(commands) > 5, commands
    root = f"{HOSTILE}/{experiment}"
    seen = set()
    for command in commands:
        words = shlex.split(command)
        assert words[words.index(">") + 1].startswith(f"{root}/logs/"), command
        for option, value in zip(words, words[1:]):
            if option in PATH_OPTIONS and not value.startswith("--"):  # analyze: --estimates may be empty
                seen.add(option)
                assert value == root or value.startswith(f"{root}/"), (option, value, command)
        assert all(w.startswith(f"{root}/") for w in words if f"/{experiment}/" in w), command
    expected = {
        "ci_slhmc": {"--model", "--start-store", "--source-store", "--checkpoint"},
        "ci_estimators": {"--obs", "--expensive-obs", "--store"},
    }[experiment]
    assert expected <= seen, seen
