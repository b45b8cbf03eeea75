"""lqcdml train: checkpoints, resume bit for bit, flow generate, bad input."""

import json

import pytest
import torch

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump
from lqcdml.train import FlowTrainer

from ..helpers import interrupt_at_step
from .helpers import snapshot


@pytest.fixture
def tiny_cfg(tmp_path):
    path = tmp_path / "config.yaml"
    dump(compose_experiment("ci_tiny", []), path)
    return path


def _train(cfg, ckpt, *extra, ensemble="flow"):
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


def test_train_writes_a_complete_checkpoint_and_a_manifest(tiny_cfg, tmp_path, capsys):
    assert _train(tiny_cfg, tmp_path / "m.pt", "--manifest", str(tmp_path / "m.json")) == 0
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["complete"] and ckpt["trainer"]["step"] == 40
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["steps"] == 40 and manifest["fresh"]["n_samples"] == 200
    assert 0 < manifest["fresh"]["ess"] <= 1 and 0 <= manifest["fresh"]["acceptance"] <= 1
    assert len(manifest["history"]["loss"]) == 40 and manifest["history"]["step"][-1] == 40


def test_killed_training_resumes_bit_for_bit(tiny_cfg, tmp_path, monkeypatch, capsys):
    assert _train(tiny_cfg, tmp_path / "full.pt") == 0
    original = FlowTrainer.step
    interrupt_at_step(monkeypatch, FlowTrainer, 25)
    assert _train(tiny_cfg, tmp_path / "part.pt") == 130  # interrupted after the checkpoint at 20
    assert torch.load(tmp_path / "part.pt", weights_only=True)["trainer"]["step"] == 20
    monkeypatch.setattr(FlowTrainer, "step", original)
    assert _train(tiny_cfg, tmp_path / "part.pt") == 0
    full = torch.load(tmp_path / "full.pt", weights_only=True)["trainer"]
    part = torch.load(tmp_path / "part.pt", weights_only=True)["trainer"]
    assert full["history"] == part["history"]
    for key, value in full["model"].items():
        assert torch.equal(value, part["model"][key]), key


def test_flow_generate_needs_a_matching_finished_model(tiny_cfg, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    gen = ["generate", "--config", str(tiny_cfg), "--ensemble", "flow", "--store", str(store)]
    assert main(gen) == 2
    assert "needs --model" in capsys.readouterr().err
    # an unfinished checkpoint is refused
    assert _train(tiny_cfg, tmp_path / "m.pt", "train.steps=40", "train.checkpoint_every=10") == 0
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    torch.save({**ckpt, "complete": False}, tmp_path / "half.pt")
    assert main([*gen, "--model", str(tmp_path / "half.pt")]) == 2
    assert "is incomplete" in capsys.readouterr().err
    # a model of another config is refused
    assert main([*gen, "--model", str(tmp_path / "m.pt"), "model.n_layers=2"]) == 2
    assert "different theory/model/train config" in capsys.readouterr().err
    assert not store.exists()
    assert main([*gen, "--model", str(tmp_path / "m.pt"), "--progress", "lines"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["n_committed"] == 12
    # the same store with a different model: refused, store unchanged
    _train(tiny_cfg, tmp_path / "other.pt", "train.seed=3")
    before = snapshot(store)
    assert main([*gen, "--model", str(tmp_path / "other.pt"), "train.seed=3", "chain.n_configs=14"]) == 2
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "sampler.name=flow",
            "ensembles.u1.model.kind = 'affine'; allowed: u1_equivariant, u1_plaquette, masked_stout, masked_cask for theory.name = 'u1'",
        ),
        ("train.lr=2.0", "train.lr = 2.0; allowed: 0 < lr < 1"),
        ("train.grad_clip=-1", "train.grad_clip = -1.0; allowed: grad_clip >= 0 (0: no clipping)"),
        (
            "~model.loop_context model.kind=u1_plaquette model.n_partners=15",
            "ensembles.u1flow.model.n_partners = 15; allowed: 0 .. 14 (V - 2 for lattice [4, 4])",
        ),
        (
            "~model.loop_context model.kind=u1_plaquette model.partner_hidden=[]",
            "ensembles.u1flow.model.partner_hidden = []; allowed: one",
        ),
    ],
)
def test_bad_flow_settings_stop_with_one_line(override, message, tiny_cfg, tmp_path, capsys):
    ensemble = "u1" if override.startswith("sampler") else "u1flow" if "u1_" in override else "flow"
    assert _train(tiny_cfg, tmp_path / "m.pt", *override.split(), ensemble=ensemble) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_u1_plaquette_flow_trains_and_generates(tiny_cfg, tmp_path, capsys):
    """The plaquette-coordinate flow through the CLI: train (with gradient clipping), then a
    chain from the checkpoint; the model's own keys are in its hash, another kind's are refused."""
    over = [
        "~model.loop_context",
        "model.kind=u1_plaquette",
        "model.n_layers=2",
        "model.n_partners=3",
        "model.partner_hidden=[8]",
        "train.grad_clip=1.0",
    ]
    ckpt = tmp_path / "p.pt"
    assert _train(tiny_cfg, ckpt, *over, "--manifest", str(tmp_path / "p.json"), ensemble="u1flow") == 0
    manifest = json.loads((tmp_path / "p.json").read_text())
    assert len(manifest["history"]["grad_norm"]) == manifest["steps"]
    gen = [
        "generate",
        "--config",
        str(tiny_cfg),
        "--ensemble",
        "u1flow",
        "--store",
        str(tmp_path / "s.zarr"),
        "--model",
        str(ckpt),
        "--progress",
        "lines",
    ]
    assert main([*gen, *over, "+model.prior_scale=3.0"]) == 2  # a key of another model kind
    assert "unknown key 'prior_scale' of model.kind = 'u1_plaquette'" in capsys.readouterr().err
    assert main([*gen, *over]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_committed"] == 10  # chain.n_configs
    assert main([*gen, *over, "model.n_partners=2"]) == 2
    assert "different theory/model/train config" in capsys.readouterr().err
