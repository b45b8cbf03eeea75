"""The built-in models: flows (phi^4 affine, 2D U(1) local and plaquette-coordinate flows) and the
gauge-covariant networks of self-learning HMC (stout layers, CASK blocks)."""

from __future__ import annotations

import math

import torch

from .errors import fail as _fail
from .registry import MODELS, ModelKind

__all__ = ["build_model"]

_NET = ("n_layers", "hidden", "kernel", "activation")


def _shape(ens) -> tuple[int, ...]:
    return tuple(int(x) for x in ens.theory.lattice)


def _affine(ens) -> torch.nn.Module:
    from ..nn import phi4_flow

    mo = ens.model
    return phi4_flow(_shape(ens), mo.n_layers, tuple(mo.hidden), mo.kernel, mo.activation, mo.prior_scale)


def _u1_equivariant(ens) -> torch.nn.Module:
    from ..nn import u1_flow

    mo = ens.model
    return u1_flow(_shape(ens), mo.n_layers, tuple(mo.hidden), mo.kernel, mo.n_mix, mo.activation, mo.loop_context)


def _u1_plaquette(ens) -> torch.nn.Module:
    from ..nn import u1_plaquette_flow

    mo = ens.model
    return u1_plaquette_flow(_shape(ens), mo.n_layers, tuple(mo.hidden), mo.kernel, mo.n_mix, mo.activation,
                             mo.n_partners, tuple(mo.partner_hidden))


def _even_extents(ens, p: str) -> None:
    for mu, extent in enumerate(ens.theory.lattice):
        if extent % 2:
            _fail(f"{p}theory.lattice[{mu}]", extent, "even extents for checkerboard affine couplings")


def _two_dimensions(ens, p: str) -> None:
    if len(ens.theory.lattice) != 2:
        _fail(p + "theory.lattice", list(ens.theory.lattice), f"two dimensions for {ens.model.kind} flows")


def _u1_equivariant_checks(ens, p: str) -> None:
    _two_dimensions(ens, p)
    for mu, extent in enumerate(ens.theory.lattice):
        if extent % 4:
            _fail(f"{p}theory.lattice[{mu}]", extent, "multiples of 4 for u1_equivariant plaquette masks")


def _u1_plaquette_checks(ens, p: str) -> None:
    _two_dimensions(ens, p)
    mo, lattice = ens.model, list(ens.theory.lattice)
    volume = math.prod(lattice)
    if not 0 <= mo.n_partners <= volume - 2:
        _fail(p + "model.n_partners", mo.n_partners, f"0 .. {volume - 2} (V - 2 for lattice {lattice})")
    if not mo.partner_hidden or any(h < 1 for h in mo.partner_hidden):
        _fail(p + "model.partner_hidden", list(mo.partner_hidden), "one or more widths >= 1")


MODELS.register(ModelKind(
    name="affine", theory="phi4", build=_affine, reads=(*_NET, "prior_scale"), validate=_even_extents,
    doc="checkerboard affine couplings, normal prior",
))
MODELS.register(ModelKind(
    name="u1_equivariant", theory="u1", build=_u1_equivariant, reads=(*_NET, "n_mix", "loop_context"),
    validate=_u1_equivariant_checks, doc="local gauge-equivariant couplings of plaquettes (Kanwar et al.)",
))
MODELS.register(ModelKind(
    name="u1_plaquette", theory="u1", build=_u1_plaquette,
    reads=(*_NET, "n_mix", "n_partners", "partner_hidden"), validate=_u1_plaquette_checks,
    doc="couplings in plaquette coordinates with a sink plaquette and sink partners (2D)",
))


def _stout(ens) -> torch.nn.Module:
    from ..lattice import SU
    from ..nn import stout_net

    mo = ens.model
    return stout_net(SU(ens.theory.n_colors), len(ens.theory.lattice), mo.n_layers, tuple(mo.loops))


def _cask(ens) -> torch.nn.Module:
    from ..lattice import SU
    from ..nn import cask_net

    mo = ens.model
    return cask_net(SU(ens.theory.n_colors), len(ens.theory.lattice), mo.n_layers, tuple(mo.loops), mo.extent)


#: training methods of the SLHMC effective actions
SMEARING_TRAINING = ("online", "offline")


def _smearing_checks(ens, p: str) -> None:
    from ..nn import LOOP_TYPES

    mo, tr = ens.model, ens.train
    if not mo.loops or any(t not in LOOP_TYPES for t in mo.loops) or len(set(mo.loops)) != len(mo.loops):
        _fail(p + "model.loops", list(mo.loops), f"distinct loop types of {', '.join(LOOP_TYPES)}")
    if mo.kind == "cask" and mo.extent < 1:
        _fail(p + "model.extent", mo.extent, "extent >= 1 (rectangles 1 x 1 .. 1 x extent)")
    if tr.method not in SMEARING_TRAINING:
        _fail(p + "train.method", tr.method, ", ".join(SMEARING_TRAINING))
    if tr.loss not in SMEARING_LOSSES:
        _fail(p + "train.loss", tr.loss, ", ".join(SMEARING_LOSSES))
    if tr.probe < 1:
        _fail(p + "train.probe", tr.probe, "probe >= 1 (configurations of train.source)")
    if tr.method == "offline" and not tr.source:
        _fail(p + "train.source", tr.source, "the name of an HMC ensemble of the experiment (offline training)")


_SMEARING_TRAIN = ("method", "loss", "steps", "batch", "lr", "seed", "source")
SMEARING_LOSSES = ("centred", "plain")

MODELS.register(ModelKind(
    name="stout", theory="su", build=_stout, reads=("n_layers", "loops"), validate=_smearing_checks,
    family="smearing", train_reads=_SMEARING_TRAIN,
    doc="trainable stout layers (plaquette, rectangle, Polyakov-line staples): the covariant net of SLHMC",
))
MODELS.register(ModelKind(
    name="cask", theory="su", build=_cask, reads=("n_layers", "loops", "extent"), validate=_smearing_checks,
    family="smearing", train_reads=_SMEARING_TRAIN,
    doc="CASK gauge-covariant attention blocks over 1 x s rectangles",
))


def build_model(ens) -> torch.nn.Module:
    """The (untrained) model of ``ens.model`` in float64."""
    return MODELS.lookup(ens.model.kind).build(ens).double()
