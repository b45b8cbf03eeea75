"""``lqcdml measure --expensive`` and ``lqcdml estimate`` from the command line: the labelled
split is what gets measured, the estimates are those of the library on the stored data, a
mismatched store or bad value is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump, load
from lqcdml.estimators import EnsembleIndex, make_regressor, p1, train_on_split
from lqcdml.estimators.pipeline_split import label_split
from lqcdml.kinds.estimators import n_measured
from lqcdml.kinds.observables import ama_generators
from lqcdml.lattice import make_generators
from lqcdml.store import read_observables

from .helpers import snapshot

AMA = [
    "ensembles.ama.chain.n_configs=60",
    "ensembles.ama.chain.n_therm=5",
    "ensembles.ama.chain.n_chains=2",
    "ensembles.ama.chain.replicas=1",
    "ensembles.ama.estimator.r_lb=0.5",
    "ensembles.ama.estimator.folds=3",
    "ensembles.ama.estimator.scan_r_lb=[]",
    "ensembles.ama.estimator.scan_r_tr=[]",
]


@pytest.fixture(scope="module")
def ama(tmp_path_factory):
    """A finished tiny two-colour chain with its cheap and its expensive (labelled) measurement."""
    root = tmp_path_factory.mktemp("ama")
    cfg = root / "config.yaml"
    dump(compose_experiment("ci_estimators", AMA), cfg)
    store, obs, exp = root / "r01.zarr", root / "obs.zarr", root / "exp.zarr"
    base = ["--config", str(cfg), "--ensemble", "ama"]
    assert main(["generate", *base, "--store", str(store), "--progress", "lines"]) == 0
    assert main(["measure", *base, "--store", str(store), "--out", str(obs), "--progress", "lines"]) == 0
    assert main(["measure", *base, "--store", str(store), "--out", str(exp), "--expensive", "--progress", "lines"]) == 0
    return cfg, store, obs, exp


def test_the_expensive_measurement_covers_exactly_the_labelled_split(ama):
    cfg, _, _, exp = ama
    ens = load(cfg).ensembles["ama"]
    ds = read_observables(exp)
    t = ds["trace_inverse_noise_re"].transpose("replica", "config", "noise", "power").values
    measured = np.isfinite(t[..., 0, 0]).reshape(-1)
    split = label_split(ens.estimator, n_measured(ens))
    assert np.array_equal(np.flatnonzero(measured), split.labelled)
    assert np.all(np.isfinite(t.reshape(len(measured), -1)[measured]))
    assert ds.attrs["measured_entries"] == len(split.labelled) and ds.attrs["expensive"] == 1


def test_estimate_is_the_library_estimate_of_the_stored_data(ama, tmp_path, capsys):
    cfg, _, obs, exp = ama
    out = tmp_path / "ama.json"
    assert (
        main(
            [
                "estimate",
                "--config",
                str(cfg),
                "--ensemble",
                "ama",
                "--obs",
                str(obs),
                "--expensive-obs",
                str(exp),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    est = res["estimates"]
    assert set(est) == {"tr1", "tr2", "tr3", "tr4", "tr1_pow2", "kappa1", "kappa2"}  # n_noise = 2: up to k = 2
    assert {"labelled_only", "p1", "p2", "power_tuned", "cross_fit"} <= set(est["tr1"])
    assert 0 < res["power_tuned_lambda"]["tr1"] < 1
    # recompute P1 of tr1 from the stores with the library: the same number
    ens = load(cfg).ensembles["ama"]
    cheap, expensive = read_observables(obs), read_observables(exp)
    flat = lambda da: np.asarray(da.transpose("replica", "config").values, dtype=float).reshape(-1)  # noqa: E731
    x = np.stack(
        [
            flat(cheap["plaquette"]),
            flat(cheap["polyakov_loop_re"]),
            flat(cheap["wilson_loop"].sel(loop="1x2")),
            flat(cheap["trace_inverse_sloppy_re"].sel(power=1)),
            flat(cheap["trace_inverse_sloppy_re"].sel(power=2)),
        ],
        axis=1,
    )
    y = np.asarray(
        expensive["trace_inverse_noise_re"].sel(power=1).mean("noise").transpose("replica", "config").values
    ).reshape(-1)
    n_cfg = cheap.sizes["config"]
    idx = EnsembleIndex("ama", np.repeat(cheap["replica"].values, n_cfg), np.tile(cheap["config"].values, 2))
    split = label_split(ens.estimator, n_measured(ens))
    f = train_on_split(x, y, split, make_regressor("ridge", ens.estimator.seed))
    want = p1(idx, y, f, split)
    want.gamma_method()
    assert est["tr1"]["p1"]["value"] == pytest.approx(float(want.value), abs=1e-12)
    assert est["tr1"]["p1"]["error"] == pytest.approx(float(want.dvalue), rel=1e-9)
    # the cumulants are functions of the estimates of tr1 and of its unbiased square
    assert est["kappa1"]["p2"]["value"] == est["tr1"]["p2"]["value"]
    v = 4 * 2 * 2 * 2
    assert est["kappa2"]["p1"]["value"] == pytest.approx(
        v * (est["tr1_pow2"]["p1"]["value"] - est["tr1"]["p1"]["value"] ** 2), rel=1e-12
    )
    assert 0 < res["cost"]["expensive_fraction"] == pytest.approx(0.5)


def test_estimate_refuses_an_expensive_store_of_another_split(ama, tmp_path, capsys):
    cfg, _, obs, exp = ama
    out = tmp_path / "ama.json"
    code = main(
        [
            "estimate",
            "--config",
            str(cfg),
            "--ensemble",
            "ama",
            "--obs",
            str(obs),
            "--expensive-obs",
            str(exp),
            "--out",
            str(out),
            "estimator.r_lb=0.4",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "does not cover the labelled configurations" in err
    assert not out.exists()


def test_measure_expensive_leaves_an_existing_store_alone_on_a_bad_value(ama, tmp_path, capsys):
    cfg, store, _, exp = ama
    before = snapshot(exp)
    code = main(
        [
            "measure",
            "--config",
            str(cfg),
            "--ensemble",
            "ama",
            "--store",
            str(store),
            "--out",
            str(exp),
            "--expensive",
            "estimator.r_lb=0",
        ]
    )
    assert code == 2 and "estimator.r_lb = 0.0; allowed: 0 < r_lb <= 1" in capsys.readouterr().err
    assert snapshot(exp) == before


def test_truncated_and_full_traces_use_the_same_noise(monkeypatch):
    """The cheap feature and the expensive target of a configuration see the same noise vectors,
    whatever else consumed the chain's generator before."""
    import lqcdml.observables.fermion as fermion

    drawn = []
    real = fermion.noise_vectors

    def spy(gens, shape, kind="z2", dtype=torch.complex128):
        v = real(gens, shape, kind, dtype)
        drawn.append(v.clone())
        return v

    monkeypatch.setattr(fermion, "noise_vectors", spy)
    gens = make_generators(7, 2)
    a = ama_generators(gens)
    torch.rand(5, generator=gens[0])  # someone else draws from the chain's generator
    b = ama_generators(gens)
    shape = (4, 2, 2, 2, 2)
    spy(a, shape), spy(b, shape)
    assert torch.equal(drawn[0], drawn[1])


@pytest.mark.parametrize(
    "override, message",
    [
        ("ensembles.ama.estimator.regressor=forest", "ensembles.ama.estimator.regressor = 'forest'; allowed: linear"),
        ("ensembles.ama.estimator.r_tr=1.0", "ensembles.ama.estimator.r_tr = 1.0; allowed: 0 < r_tr < 1"),
        ("ensembles.ama.estimator.folds=1", "ensembles.ama.estimator.folds = 1; allowed: 0 (no cross-fitting)"),
        # another kind's section keeps the old kind's keys: the new kind names them and its own
        (
            "ensembles.cv_phi4.estimator.kind=bias_corrected",
            "ensembles.cv_phi4.estimator.networks: unknown key 'networks' of estimator.kind = 'bias_corrected'",
        ),
        ("ensembles.cv_u1.estimator.n_train=[100000]", "ensembles.cv_u1.estimator.n_train[0] = 100000; allowed: 10"),
        ("ensembles.cv_u1.estimator.divergence=finite", "ensembles.cv_u1.estimator.divergence = 'finite'"),
        ("ensembles.ama.estimator.kind=magic", "ensembles.ama.estimator.kind = 'magic'; allowed: none, bias_corrected"),
    ],
)
def test_bad_estimator_values_name_the_key(tmp_path, capsys, override, message):
    code = main(["compose", "+experiment=ci_estimators", override, "--out", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_control_variate_estimate_from_the_command_line(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    dump(compose_experiment("ci_estimators", ["ensembles.cv_phi4.estimator.networks=[[]]"]), cfg)
    store, out = tmp_path / "cv.zarr", tmp_path / "cv.json"
    assert (
        main(["generate", "--config", str(cfg), "--ensemble", "cv_phi4", "--store", str(store), "--progress", "lines"])
        == 0
    )
    assert (
        main(["estimate", "--config", str(cfg), "--ensemble", "cv_phi4", "--store", str(store), "--out", str(out)]) == 0
    )
    (run,) = json.loads(out.read_text())["runs"]
    assert run["n_train"] == 400 and run["n_eval"] == 400  # two chains train, two others are judged
    plain, improved, zero = run["plain"], run["improved"], run["zero_mean"]
    assert abs(zero["value"]) < 4 * zero["error"]
    assert abs(improved["value"] - plain["value"]) < 4 * plain["error"]
    assert run["variance_reduction"] > 100  # the linear g nearly solves the quadratic part
