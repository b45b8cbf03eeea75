"""Property-based: random overrides end in a valid config or one clean error line (exit 2),
never a traceback; a results folder cannot escape the working directory."""

import dataclasses
import functools
import os
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lqcdml.cli.main import main
from lqcdml.config import ConfigError, compose_experiment, validate_root

from ..conftest import count_case

# no deadline: a compose takes ~1 s, several on a busy two-core machine
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = [
    "theory.beta",
    "theory.lattice",
    "theory.n_colors",
    "theory.m2",
    "theory.lam",
    "theory.fermion",
    "theory.n_flavours",
    "theory.fermion_mass",
    "sampler.name",
    "sampler.n_steps",
    "sampler.trajectory_length",
    "sampler.rational_tol",
    "chain.n_configs",
    "chain.n_therm",
    "chain.seed",
    "chain.start",
    "model.kind",
    "model.hidden",
    "model.n_layers",
    "train.lr",
    "train.steps",
    "train.dtype",
    "measure.observables",
    "dtype",
    "device",
    "threads",
    "paths.results",
    "experiment",
]
VALUES = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=30),
    st.lists(st.integers(-3, 64), max_size=6).map(lambda v: "[" + ",".join(map(str, v)) + "]"),
    st.sampled_from(["null", "true", "'", "[", "{a: 1}", "${oc.env:HOME}", "../../etc", "/tmp/x", "nan"]),
)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@SETTINGS
@given(
    key=st.one_of(st.sampled_from(KEYS), st.text(max_size=20)),
    value=VALUES,
    prefix=st.sampled_from(["", "+", "++", "~"]),
    ensemble=st.sampled_from(["u1", "flow", "stag"]),
)
@example(key="__dict__", value="0", prefix="+", ensemble="u1")  # once a TypeError from the dataclasses
def test_random_overrides_end_in_a_config_or_one_clean_line(in_tmp, capsys, key, value, prefix, ensemble):
    count_case("config: random overrides")
    out = in_tmp / "out.yaml"
    before = set(os.listdir(in_tmp))
    code = main(["compose", "+experiment=ci_tiny", f"{prefix}ensembles.{ensemble}.{key}={value}", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err.splitlines()) == 1 and err.startswith("lqcdml compose: error: ")
        assert set(os.listdir(in_tmp)) == before
    else:
        assert set(os.listdir(in_tmp)) - before <= {"out.yaml"}


@pytest.mark.parametrize("path", ["results", "../up", "a/../../b", "/abs/ok", "a/./b/.."])
def test_results_folder_given_as_an_override_cannot_escape(path):
    """The whole way: a Hydra override composed and validated."""
    try:
        cfg = compose_experiment("ci_tiny", [f"paths.results='{path}'"])
    except ConfigError as err:
        assert str(err).startswith(f"paths.results = {path!r}; allowed: ")
        return
    assert cfg.paths.results == path and (PurePath(path).is_absolute() or ".." not in PurePath(path).parts)


@functools.cache
def _ci_tiny():
    return compose_experiment("ci_tiny")


@SETTINGS
@given(
    path=st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(["..", ".", "a", "b", "/"]), max_size=6).map(lambda p: "/".join(p)),
    )
)
def test_results_folder_cannot_escape_unless_absolute(path):
    """Any string as ``paths.results`` of a composed config: the validation refuses it in one
    line or it stays below the working directory (composing once: Hydra takes ~1 s a config)."""
    count_case("config: results paths")
    cfg = _ci_tiny()
    try:
        validate_root(dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, results=path)))
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).startswith("paths.results = ")
        return
    results = PurePath(path)
    assert results.is_absolute() or ".." not in results.parts
    if not results.is_absolute():
        assert (Path.cwd() / results).resolve().is_relative_to(Path.cwd().resolve())
