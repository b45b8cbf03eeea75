"""A new estimator kind: this file and one registration, nothing else.

Mass reweighting for the free scalar field: the ensemble is sampled at ``m^2`` and the
estimator moves ``<phi^2>`` to ``estimator.target_m2`` by reweighting each configuration with
``w = exp(-(S_target - S))``, ``<phi^2>_target = <phi^2 w> / <w>`` (errors by pyerrors'
Gamma method, propagated through the ratio). The kind owns its section (``target_m2``), its
checks, the stores it reads (the ensemble stores), its estimate and its summary lines; an
experiment file uses it, the Snakemake DAG generates, measures, runs ``lqcdml estimate`` and
``lqcdml analyze``, their jobs finding the kind through ``LQCDML_PLUGINS``; the reweighted
``<phi^2>`` agrees with the exact free-field value at the target mass.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lqcdml.analysis.errors import derived_estimate, estimate
from lqcdml.analysis.exact import free_scalar_propagator
from lqcdml.config import ConfigError, EstimatorConfig, compose_experiment
from lqcdml.config.errors import fail
from lqcdml.kinds import ESTIMATORS, EstimatorKind
from lqcdml.theories import Phi4Action

from ..cli.helpers import BIN
from .plugin_workflow import plugin_env, workflow_with

KIND = "mass_reweighting_test"
PLUGIN = "tests.kinds.test_new_estimator"


@dataclass
class MassReweighting(EstimatorConfig):
    """``target_m2``: the mass squared ``<phi^2>`` is reweighted to."""

    kind: str = KIND
    target_m2: float = 1.0


def _checks(ens, p: str) -> None:
    if ens.theory.name != "phi4":
        fail(p + "estimator.kind", ens.estimator.kind, "bias_corrected, control_variate or none for this theory")
    if not ens.estimator.target_m2 > 0:
        fail(p + "estimator.target_m2", ens.estimator.target_m2, "target_m2 > 0")


def _reweight(ens, sources, log) -> dict:
    """``<phi^2>`` at ``m^2`` and reweighted to ``target_m2``, each with its Gamma-method error."""
    x, _ = sources.configurations()  # [N, L...] flat chain-major, ``per_chain`` consecutive each
    th = ens.theory
    source, target = sources.action(), Phi4Action(ens.estimator.target_m2, th.lam, th.convention)
    delta = (target.action(x) - source.action(x)).cpu().numpy()
    w = np.exp(-(delta - delta.min()))  # a constant factor cancels in the ratio
    phi2 = (x**2).reshape(len(x), -1).mean(dim=1).cpu().numpy()

    def chains(a: np.ndarray) -> np.ndarray:  # [configs, chains]
        return a.reshape(-1, sources.per_chain).T

    log(f"{len(x)} configurations reweighted from m2 = {th.m2} to {ens.estimator.target_m2}")
    plain = estimate(chains(phi2), sources.ensemble)
    moved = derived_estimate(lambda ow, ww: ow / ww, [chains(phi2 * w), chains(w)], sources.ensemble)
    as_dict = lambda e: {"value": e.value, "error": e.error, "tau_int": e.tau_int}  # noqa: E731
    return {"target_m2": ens.estimator.target_m2, "estimates": {"phi2": as_dict(plain), "phi2_target": as_dict(moved)}}


def _lines(result: dict, theory: dict | None) -> list[str]:
    est = result["estimates"]
    return [
        f"### `{result['ensemble']}`: mass reweighting",
        "",
        f"<phi^2> at m2 = {theory['m2'] if theory else '?'}: {est['phi2']['value']:.5f} +- {est['phi2']['error']:.5f}; "
        f"reweighted to m2 = {result['target_m2']}: {est['phi2_target']['value']:.5f} +- "
        f"{est['phi2_target']['error']:.5f}",
        "",
    ]


if KIND not in ESTIMATORS:
    ESTIMATORS.register(
        EstimatorKind(
            name=KIND,
            config=MassReweighting,
            validate=_checks,
            reads=("ensembles",),
            estimate_fn=_reweight,
            report_fn=_lines,
            doc="<phi^2> reweighted to another mass (test)",
        )
    )

L, M2, TARGET = 4, 0.8, 1.0
EXPERIMENT = f"""# @package _global_
defaults:
  - /theory@ensembles.free.theory: phi4_2d
  - /sampler@ensembles.free.sampler: hmc
  - /chain@ensembles.free.chain: default
  - /measure@ensembles.free.measure: default
experiment: reweighting
threads: 1
ensembles:
  free:
    theory: {{lattice: [{L}, {L}], lam: 0.0, m2: {M2}}}
    # tau = 0.5 keeps every mode's rotation per trajectory, omega tau with omega^2 = 2 (p^2 + m2),
    # away from 0 and pi (at tau = 1 the modes with p^2 = 4 turn by 0.99 pi: phi_k -> -phi_k, their
    # amplitude nearly frozen, and the chains disagree)
    sampler: {{n_steps: 4, trajectory_length: 0.5}}
    chain: {{n_configs: 820, n_therm: 20, n_chains: 16, replicas: 1, seed: 11}}
    measure: {{observables: [phi2]}}
    estimator: {{kind: {KIND}, target_m2: {TARGET}}}
"""


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """The repository's workflow and config with the experiment file added."""
    return workflow_with(tmp_path_factory.mktemp("workflow"), "reweighting", EXPERIMENT)


def test_the_kind_owns_its_section_and_checks_it(workflow):
    conf = workflow / "conf"
    cfg = compose_experiment("reweighting", conf_dir=conf)
    es = cfg.ensembles["free"].estimator
    assert isinstance(es, MassReweighting) and es.target_m2 == TARGET and ESTIMATORS.lookup(es.kind).runs
    cases = {
        "+ensembles.free.estimator.r_lb=0.1": (
            f"ensembles.free.estimator.r_lb: unknown key 'r_lb' of estimator.kind = '{KIND}'; "
            "allowed: kind, seed, target_m2"
        ),
        "ensembles.free.estimator.target_m2=-1": "ensembles.free.estimator.target_m2 = -1.0; allowed: target_m2 > 0",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError) as err:
            compose_experiment("reweighting", [override], conf)
        assert str(err.value) == message


def test_the_dag_estimates_with_it_and_the_summary_shows_it(workflow, tmp_path):
    out = subprocess.run(
        [str(BIN / "snakemake"), "-s", str(workflow / "Snakefile"), "-d", str(tmp_path), "-c2"]
        + ["--config", "experiment=reweighting"],
        env=plugin_env(PLUGIN),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "rule estimate:" in out.stdout + out.stderr
    result = json.loads((tmp_path / "results" / "reweighting" / "estimates" / "free.json").read_text())
    assert result["kind"] == KIND and result["ensemble"] == "free" and result["provenance"]
    est = result["estimates"]
    exact = {m2: free_scalar_propagator([L, L], m2, "flow")[0, 0] for m2 in (M2, TARGET)}
    for key, m2 in (("phi2", M2), ("phi2_target", TARGET)):
        value, error = est[key]["value"], est[key]["error"]
        assert abs(value - exact[m2]) < 4 * error, (key, value, error, exact[m2])
        # precise enough that the two masses (9 % apart in <phi^2>) are told apart (expected: 10 sigma)
        assert abs(exact[M2] - exact[TARGET]) > 6 * error, (key, error)
    summary = (tmp_path / "results" / "reweighting" / "summary.md").read_text()
    assert "### `free`: mass reweighting" in summary and f"reweighted to m2 = {TARGET}:" in summary
