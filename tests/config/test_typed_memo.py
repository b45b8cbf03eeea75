"""Typing a section twice (a resolved YAML loaded, then overrides merged into it) gives what
typing it once gives: equal and independent objects, values told apart exactly."""

from __future__ import annotations

import dataclasses
from typing import Any

from lqcdml.config import compose_experiment, dump, load, merge_overrides
from lqcdml.config.schema import ChainConfig, MeasureConfig
from lqcdml.config.sections import _structured, typed_section


@dataclasses.dataclass
class _Free:
    x: Any = None


def test_a_typed_section_is_a_new_object_each_time():
    data = {"observables": ["plaquette"], "wilson_loops": [[1, 1]]}
    a = typed_section(MeasureConfig, data, "ensembles.x.measure")
    a.observables.append("polyakov_loop")
    a.wilson_loops[0][0] = 9
    b = typed_section(MeasureConfig, data, "ensembles.x.measure")
    assert b.observables == ["plaquette"] and b.wilson_loops == [[1, 1]]
    assert data == {"observables": ["plaquette"], "wilson_loops": [[1, 1]]}


def test_values_that_compare_equal_are_typed_apart():
    """1 and 1.0, 0.0 and -0.0, True and 1 are equal in Python but not the same config."""
    seen = [_structured(_Free, {"x": v}).x for v in (1, 1.0, True, 0.0, -0.0, "1")]
    assert [(type(v), repr(v)) for v in seen] == [
        (int, "1"),
        (float, "1.0"),
        (bool, "True"),
        (float, "0.0"),
        (float, "-0.0"),
        (str, "'1'"),
    ]
    assert typed_section(ChainConfig, {"seed": 5}, "c").seed == 5


def test_loading_and_merging_equals_composing_with_the_override(tmp_path):
    path = tmp_path / "config.yaml"
    dump(compose_experiment("ci_tiny"), path)
    merged = merge_overrides(load(path), ["threads=1", "ensembles.u1.chain.seed=7"])
    composed = compose_experiment("ci_tiny", ["threads=1", "ensembles.u1.chain.seed=7"])
    assert merged == composed
    assert merged.ensembles["u1"] is not load(path).ensembles["u1"]
