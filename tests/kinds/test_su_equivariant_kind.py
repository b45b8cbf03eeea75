"""The ``su_equivariant`` model kind in 4D (and 3D): composed with the 4D SU(N) theories and the
``flow`` sampler it validates and builds a flow of 4D links; extents other than multiples of 4
and one-dimensional lattices are refused in one line naming the key."""

from __future__ import annotations

import pytest
import torch

from lqcdml.config import ConfigError, compose_experiment, merge_overrides
from lqcdml.kinds.models import build_model
from lqcdml.nn.su_equivariant import SUEquivariantCoupling

from .plugin_workflow import workflow_with

EXPERIMENT = """# @package _global_
defaults:
  - /theory@ensembles.su3flow.theory: su3_4d
  - /sampler@ensembles.su3flow.sampler: flow
  - /model@ensembles.su3flow.model: su_equivariant
  - /train@ensembles.su3flow.train: reverse_kl
  - /chain@ensembles.su3flow.chain: default
  - /measure@ensembles.su3flow.measure: default
experiment: su3flow
ensembles:
  su3flow:
    theory: {lattice: [4, 4, 4, 4], beta: 6.0}
    model: {n_layers: 13, hidden: 4, bins: 4}
"""


def test_su_equivariant_kind_accepts_4d_and_refuses_bad_extents(tmp_path):
    conf = workflow_with(tmp_path / "wf", "su3flow", EXPERIMENT) / "conf"
    cfg = compose_experiment("su3flow", conf_dir=conf)
    model = build_model(cfg.ensembles["su3flow"])
    layers = list(model.layers)
    assert len(layers) == 13 and all(isinstance(layer, SUEquivariantCoupling) for layer in layers)
    assert {(layer.mu, layer.nu) for layer in layers[:12]} == {(a, b) for a in range(4) for b in range(4) if a != b}
    with torch.no_grad():
        x, log_q = model.sample(1)
    assert x.shape == (1, 4, 4, 4, 4, 4, 3, 3) and torch.isfinite(log_q).all()
    assert (x @ x.mH - torch.eye(3, dtype=x.dtype)).abs().max() < 1e-12
    # 3D is allowed too
    merge_overrides(cfg, ["ensembles.su3flow.theory.lattice=[4,4,8]"])
    with pytest.raises(ConfigError, match=r"ensembles\.su3flow\.theory\.lattice\[3\] = 6; allowed: multiples of 4"):
        merge_overrides(cfg, ["ensembles.su3flow.theory.lattice=[4,4,4,6]"])
    with pytest.raises(ConfigError, match=r"theory\.lattice\[1\] = 2; allowed: multiples of 4"):
        merge_overrides(cfg, ["ensembles.su3flow.theory.lattice=[4,2,4,4]"])
