"""The estimate of each estimator kind from the data it reads (``estimators.pipeline_*``): the
kinds that estimate name their function, the labelled split is shared with the expensive
measurement, and the estimates are those of the library on the same arrays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import xarray as xr

from lqcdml.estimators import EnsembleIndex, make_regressor, p1, train_on_split
from lqcdml.estimators.cv_problems import SCALAR_TIMESLICE
from lqcdml.estimators.pipeline_bias import run_bias_corrected
from lqcdml.estimators.pipeline_cv import run_control_variate
from lqcdml.estimators.pipeline_inputs import EstimateInputError
from lqcdml.estimators.pipeline_split import flat_position, label_split
from lqcdml.lattice import Real
from lqcdml.theories import Phi4Action

N_CFG, N_CHAINS = 40, 2  # one job replica of two chains


def test_each_kind_that_estimates_names_its_estimate_and_the_others_make_none(monkeypatch):
    from lqcdml.kinds import ESTIMATORS

    # (a test module may have registered more kinds in this process)
    assert [k.name for k in ESTIMATORS if k.runs][:2] == ["bias_corrected", "control_variate"]
    assert not ESTIMATORS.lookup("none").runs and ESTIMATORS.lookup("none").reads == ()
    # the kind's function runs the pipeline function of estimators/ (imported when called)
    assert ESTIMATORS.lookup("control_variate").modules == (
        "lqcdml.analysis.estimates",
        "lqcdml.estimators.pipeline_cv",
    )
    seen = []
    monkeypatch.setattr("lqcdml.estimators.pipeline_cv.run_control_variate", lambda *a: seen.append(a) or {})
    assert ESTIMATORS.lookup("control_variate").estimate("ens", "sources", print) == {}
    assert seen == [("ens", "sources", print)]


def test_an_ensemble_without_an_estimate_is_one_line(tmp_path):
    from lqcdml.config import compose_experiment
    from lqcdml.driver.estimate import estimate

    cfg = compose_experiment("quickstart")
    name = sorted(cfg.ensembles)[0]
    with pytest.raises(EstimateInputError) as err:
        estimate(cfg, name, tmp_path / "e.json", [], [], [])
    assert str(err.value).startswith(
        f"ensembles.{name}.estimator.kind = 'none'; allowed: bias_corrected, control_variate"
    )
    assert str(err.value).endswith(" (nothing to estimate)")
    assert err.value.exit_code == 2 and not (tmp_path / "e.json").exists()


def test_flat_positions_run_replica_major():
    assert flat_position(5, np.array([1, 2, 2]), np.array([0, 0, 4])).tolist() == [0, 5, 9]


class _Sources:
    """``EstimatorSources`` of arrays made here."""

    def __init__(self, cheap=(), expensive=(), fields=None, per_chain=N_CFG):
        self.ensemble, self.n_measured, self.per_chain = "ama", N_CFG * N_CHAINS, per_chain
        self._obs, self._fields = (list(cheap), list(expensive)), fields

    def observables(self):
        return self._obs

    def configurations(self):
        n = len(self._fields)
        replica = np.repeat(np.arange(1, n // self.per_chain + 1), self.per_chain)
        return self._fields, EnsembleIndex(
            self.ensemble, replica, np.tile(np.arange(self.per_chain), n // self.per_chain)
        )

    def action(self):
        return Phi4Action(-1.0, 1.0, "standard")

    def group(self):
        return Real()

    def control_variate(self):
        return SCALAR_TIMESLICE


def _bias_corrected_ens(**estimator):
    es = (
        dict(
            features=["plaquette"],
            regressor="ridge",
            r_lb=0.5,
            r_tr=0.5,
            seed=3,
            folds=0,
            scan_r_lb=[],
            scan_r_tr=[],
            scan_estimator="p2",
        )
        | estimator
    )
    return SimpleNamespace(
        estimator=SimpleNamespace(**es),
        measure=SimpleNamespace(n_noise=2),
        theory=SimpleNamespace(lattice=[2, 2, 2, 2]),
    )


def _stores(ens, scanned: bool = False):
    """A cheap store (the plaquette) and an expensive one (tr D^-n per noise, on the labelled
    entries of the split only), one job replica: [config, replica]."""
    rng = np.random.default_rng(0)
    plaq = rng.normal(0.6, 0.01, (N_CFG, N_CHAINS))
    noise = rng.normal(0.0, 0.1, (N_CFG, N_CHAINS, 2, 4))
    traces = 2.0 * plaq[:, :, None, None] + noise
    labelled = label_split(ens.estimator, N_CFG * N_CHAINS).labelled
    flat = flat_position(N_CFG, np.arange(1, N_CHAINS + 1)[None, :], np.arange(N_CFG)[:, None])
    traces[~np.isin(flat, labelled) & (not scanned)] = np.nan
    coords = {"config": np.arange(N_CFG), "replica": np.arange(1, N_CHAINS + 1)}
    cheap = xr.Dataset({"plaquette": (("config", "replica"), plaq)}, coords=coords)
    expensive = xr.Dataset({"trace_inverse_noise_re": (("config", "replica", "noise", "power"), traces)}, coords=coords)
    cheap.attrs.update(measure_seconds=1.0, measured_entries=N_CFG * N_CHAINS)
    expensive.attrs.update(measure_seconds=10.0, measured_entries=len(labelled))
    return cheap, expensive


def test_bias_corrected_estimates_are_the_library_estimates_of_the_stores():
    ens = _bias_corrected_ens()
    cheap, expensive = _stores(ens)
    res = run_bias_corrected(ens, _Sources([cheap], [expensive]), print)
    assert res["kind"] == "bias_corrected" and res["targets"] == ["tr1", "tr2", "tr3", "tr4", "tr1_pow2"]
    assert set(res["estimates"]) == {*res["targets"], "kappa1", "kappa2"}
    assert res["cost"]["expensive_fraction"] == 0.5 and res["split"]["N"] == N_CFG * N_CHAINS
    x = np.asarray(cheap["plaquette"].transpose("replica", "config").values).reshape(-1, 1)
    y = np.asarray(
        expensive["trace_inverse_noise_re"].isel(power=0).mean("noise").transpose("replica", "config").values
    ).reshape(-1)
    idx = EnsembleIndex("ama", np.repeat([1, 2], N_CFG), np.tile(np.arange(N_CFG), 2))
    split = label_split(ens.estimator, N_CFG * N_CHAINS)
    want = p1(idx, y, train_on_split(x, y, split, make_regressor("ridge", 3)), split)
    want.gamma_method()
    assert res["estimates"]["tr1"]["p1"]["value"] == float(want.value)
    assert res["estimates"]["tr1"]["p1"]["error"] == float(want.dvalue)


def test_bias_corrected_scan_fills_the_grid_and_logs_each_row():
    ens = _bias_corrected_ens(scan_r_lb=[0.5, 0.9], scan_r_tr=[0.5])
    lines = []
    res = run_bias_corrected(ens, _Sources(*map(lambda s: [s], _stores(ens, scanned=True))), lines.append)
    scan = res["scan"]
    assert lines == ["estimate: scan r_lb = 0.5 done", "estimate: scan r_lb = 0.9 done"]
    assert len(scan["sigma_ratio"]["tr1"]) == 2 and all(len(row) == 1 for row in scan["sigma_ratio"]["tr1"])
    assert "full" in res["estimates"]["tr1"] and set(scan["full"]) == set(res["estimates"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda ens: setattr(ens.measure, "n_noise", 1), "ensembles.ama.measure.n_noise = 1; allowed: >= 2"),
        (lambda ens: setattr(ens.estimator, "r_lb", 0.4), "does not cover the labelled configurations"),
        (
            lambda ens: setattr(ens.estimator, "features", ["polyakov"]),
            "estimator feature 'polyakov': no variable 'polyakov' in the observable store; allowed: plaquette",
        ),
    ],
)
def test_bias_corrected_refuses_stores_that_do_not_fit_the_config_in_one_line(change, message):
    ens = _bias_corrected_ens()
    cheap, expensive = _stores(ens)
    change(ens)
    with pytest.raises(EstimateInputError, match=message.replace("(", r"\(")):
        run_bias_corrected(ens, _Sources([cheap], [expensive]), print)


def test_control_variate_trains_each_network_and_estimates_on_the_other_chains():
    es = SimpleNamespace(
        n_train=[10],
        networks=[[], [2]],
        seed=0,
        steps=3,
        lr=0.01,
        batch=5,
        divergence="exact",
        n_probe=1,
        schedule="constant",
    )
    ens = SimpleNamespace(estimator=es, theory=SimpleNamespace(name="phi4", lattice=[4, 2]))
    fields = torch.randn(30, 4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lines = []
    res = run_control_variate(ens, _Sources(fields=fields, per_chain=10), lines.append)
    assert res["observable"] == "timeslice_correlator(t = 2)" and len(lines) == 2
    assert [r["network"] for r in res["runs"]] == ["linear", "mlp 2"]
    assert all(r["n_train"] == 10 and r["n_eval"] == 20 for r in res["runs"])
    again = run_control_variate(ens, _Sources(fields=fields, per_chain=10), lambda line: None)
    assert [r["improved"] for r in again["runs"]] == [r["improved"] for r in res["runs"]]  # seeded
