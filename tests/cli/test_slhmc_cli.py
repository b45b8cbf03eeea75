"""Self-learning HMC from the command line: offline and online training, generation with a
frozen model, resume bit for bit after an interruption, bad input as one line."""

import json

import pytest
import torch

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump
from lqcdml.store import EnsembleStore
from lqcdml.train import OfflineSLHMCTrainer, OnlineSLHMCTrainer

from ..helpers import interrupt_at_step
from .helpers import assert_same_chain, snapshot, store_digest


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """ci_slhmc's config and its finished HMC chain (the offline training's source)."""
    root = tmp_path_factory.mktemp("slhmc")
    cfg = root / "config.yaml"
    dump(compose_experiment("ci_slhmc", []), cfg)
    hmc = root / "hmc.zarr"
    assert main(["generate", "--config", str(cfg), "--ensemble", "hmc", "--store", str(hmc)]) == 0
    return cfg, hmc


def _train(cfg, ensemble, ckpt, *extra):
    return main(
        [
            "train",
            "--config",
            str(cfg),
            "--ensemble",
            ensemble,
            "--checkpoint",
            str(ckpt),
            "--progress",
            "lines",
            *extra,
        ]
    )


@pytest.mark.parametrize("ensemble, trainer", [("stout", OfflineSLHMCTrainer), ("cask", OnlineSLHMCTrainer)])
def test_killed_training_resumes_bit_for_bit(setup, tmp_path, monkeypatch, capsys, ensemble, trainer):
    cfg, hmc = setup
    source = ["--source-store", str(hmc)]
    assert _train(cfg, ensemble, tmp_path / "full.pt", *source, "--manifest", str(tmp_path / "m.json")) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= manifest["fresh"]["acceptance"] <= 1 and manifest["fresh"]["n_configs"] == 8
    original = trainer.step
    interrupt_at_step(monkeypatch, trainer, 3)
    assert _train(cfg, ensemble, tmp_path / "part.pt", *source) == 130  # after the checkpoint at 2
    assert torch.load(tmp_path / "part.pt", weights_only=True)["trainer"]["step"] == 2
    monkeypatch.setattr(trainer, "step", original)
    assert _train(cfg, ensemble, tmp_path / "part.pt", *source) == 0
    full = torch.load(tmp_path / "full.pt", weights_only=True)["trainer"]
    part = torch.load(tmp_path / "part.pt", weights_only=True)["trainer"]
    assert full["history"] == part["history"] and full["step"] == part["step"]
    for key, value in full["model"].items():
        assert torch.equal(value, part["model"][key]), key


def test_slhmc_generate_resumes_bit_for_bit_and_records_its_model(setup, tmp_path, capsys):
    cfg, hmc = setup
    model = tmp_path / "stout.pt"
    assert _train(cfg, "stout", model, "--source-store", str(hmc)) == 0
    gen = ["generate", "--config", str(cfg), "--ensemble", "stout", "--start-store", str(hmc), "--model", str(model)]
    assert main([*gen, "--store", str(tmp_path / "straight.zarr")]) == 0
    assert main([*gen, "--store", str(tmp_path / "split.zarr"), "chain.n_configs=7", "chain.n_therm=0"]) == 0
    assert main([*gen, "--store", str(tmp_path / "split.zarr")]) == 0
    assert_same_chain(store_digest(tmp_path / "straight.zarr"), store_digest(tmp_path / "split.zarr"))
    store = EnsembleStore.open(tmp_path / "straight.zarr")
    assert store.meta["model_digest"] and store.n_committed == 8
    assert store.read_records("cg_md").min() > 0 and store.read_records("cg_metropolis").min() > 0
    # the same store with another model is refused, unchanged
    other = tmp_path / "other.pt"
    assert _train(cfg, "stout", other, "--source-store", str(hmc), "train.seed=4") == 0
    before = snapshot(tmp_path / "straight.zarr")
    assert (
        main([*gen[:-1], str(other), "train.seed=4", "--store", str(tmp_path / "straight.zarr"), "chain.n_configs=9"])
        == 2
    )
    assert snapshot(tmp_path / "straight.zarr") == before


def test_the_chain_hash_includes_the_trained_model(setup, tmp_path, capsys):
    """Two models of the same config (same training hash, other weights) sample two chains:
    their stores have different chain hashes, and neither continues the other's store."""
    from lqcdml.config import load
    from lqcdml.identity import ensemble_hash, file_digest, matches_chain

    cfg, hmc = setup
    model, tampered = tmp_path / "stout.pt", tmp_path / "tampered.pt"
    assert _train(cfg, "stout", model, "--source-store", str(hmc)) == 0
    ckpt = torch.load(model, weights_only=True)
    key = next(iter(ckpt["trainer"]["model"]))
    ckpt["trainer"]["model"][key] = ckpt["trainer"]["model"][key] + 0.01
    torch.save(ckpt, tampered)
    gen = [
        "generate",
        "--config",
        str(cfg),
        "--ensemble",
        "stout",
        "--start-store",
        str(hmc),
        "chain.n_configs=5",
        "chain.n_therm=0",
    ]
    for path in (model, tampered):
        assert (
            main(
                [
                    *gen,
                    "--model",
                    str(path),
                    "--store",
                    str(tmp_path / f"{path.stem}.zarr"),
                    "--manifest",
                    str(tmp_path / f"{path.stem}.json"),
                ]
            )
            == 0
        )
    metas = [EnsembleStore.open(tmp_path / f"{p.stem}.zarr").meta for p in (model, tampered)]
    assert [m["model_digest"] for m in metas] == [file_digest(model), file_digest(tampered)]
    assert metas[0]["config_hash"] != metas[1]["config_hash"]
    ens = load(cfg).ensembles["stout"]  # the chain's length is not part of its hash
    for meta, path in zip(metas, (model, tampered)):
        assert meta["config_hash"] == ensemble_hash(ens, "float64", file_digest(path)) != ensemble_hash(ens, "float64")
        assert matches_chain(meta, ens, "float64")
        assert not matches_chain({**meta, "model_digest": "0" * 16}, ens, "float64")
    manifest = json.loads((tmp_path / "tampered.json").read_text())
    assert manifest["config_hash"] == metas[1]["config_hash"] and manifest["model_digest"] == file_digest(tampered)
    assert manifest["provenance"]["model_digest"] == file_digest(tampered)
    # continuing a store with the other model: refused in one line, the store unchanged
    before = snapshot(tmp_path / "stout.zarr")
    capsys.readouterr()
    assert (
        main(
            [
                *gen[:-2],
                "chain.n_configs=6",
                "chain.n_therm=0",
                "--model",
                str(tampered),
                "--store",
                str(tmp_path / "stout.zarr"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert f"was sampled with model {file_digest(model)}, not {file_digest(tampered)}" in err and "\n" not in err
    assert snapshot(tmp_path / "stout.zarr") == before


def test_a_chain_starts_where_its_start_from_ensemble_ends(setup, tmp_path, capsys):
    cfg, hmc = setup
    gen = ["generate", "--config", str(cfg), "--ensemble", "thin", "--store", str(tmp_path / "thin.zarr")]
    assert main(gen) == 2
    assert "--start-store: needed exactly when chain.start_from is set (it is 'hmc')" in capsys.readouterr().err
    assert main([*gen, "--start-store", str(tmp_path / "thin.zarr")]) == 2  # not a store of hmc
    assert main([*gen, "--start-store", str(hmc), "chain.n_configs=5", "chain.n_therm=0"]) == 0
    # a longer source chain is another start: the store refuses to continue from it, unchanged
    before = snapshot(tmp_path / "thin.zarr")
    assert main([*gen, "--start-store", str(hmc), "ensembles.hmc.chain.n_configs=14", "chain.n_therm=0"]) == 2
    assert "started from" in capsys.readouterr().err
    assert snapshot(tmp_path / "thin.zarr") == before
    from lqcdml.config import load
    from lqcdml.driver.specs import chain_spec

    spec = chain_spec(load(cfg), "thin", 1, store_path=tmp_path / "other.zarr", start_store=hmc)
    from lqcdml.lattice import make_generators

    start = spec.default_start(make_generators(1, 2))
    source = EnsembleStore.open(hmc)
    assert torch.equal(start, torch.from_numpy(source.read_fields(source.n_committed - 1)))
    # the first stored configuration is the chain's first trajectory from there
    state = spec.sampler.start(make_generators(spec.seed, 2), spec.default_start)
    state, _ = spec.sampler.step(state)
    first = torch.from_numpy(EnsembleStore.open(tmp_path / "thin.zarr").read_fields(0))
    assert torch.equal(first, state.fields)


def test_training_needs_its_source_store(setup, tmp_path, capsys):
    cfg, _ = setup
    assert _train(cfg, "stout", tmp_path / "m.pt") == 2
    assert "train.source = 'hmc': no --source-store given" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "ensembles.stout.sampler.options.m_eff=inf",
            "ensembles.stout.sampler.options.m_eff = inf; allowed: a finite number",
        ),
        (
            "ensembles.thin.sampler.options.m_eff=-0.1",
            "ensembles.thin.sampler.options.m_eff = -0.1; allowed: m_eff > 0",
        ),
        (
            "ensembles.stout.train.source=nowhere",
            "ensembles.stout.train.source = 'nowhere'; allowed: an ensemble of "
            "this experiment without a model: hmc, thin",
        ),
        (
            "ensembles.stout.model.loops=[plaquette,hexagon]",
            "ensembles.stout.model.loops = ['plaquette', 'hexagon']; "
            "allowed: distinct loop types of plaquette, rectangle, polyakov",
        ),
        ("ensembles.cask.train.method=later", "ensembles.cask.train.method = 'later'; allowed: online, offline"),
        (
            "~ensembles.stout.model.loops ensembles.stout.model.kind=affine",
            "ensembles.stout.model.kind = 'affine'; allowed: stout, cask for theory.name = 'su'",
        ),
    ],
)
def test_bad_slhmc_settings_are_one_line(override, message, tmp_path, capsys):
    assert main(["compose", "+experiment=ci_slhmc", *override.split(), "--out", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
