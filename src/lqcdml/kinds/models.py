"""Model kinds: normalizing flows (phi^4 affine, 2D U(1) local and plaquette-coordinate flows,
SU(N) gauge-equivariant flows in any d >= 2) and the gauge-covariant networks of self-learning
HMC (stout layers, CASK blocks).

A model kind owns the ``model`` section: its dataclass holds exactly the architecture keys
its builder reads (they, and ``kind``, are the model's part of every hash). It names the
theory kind it models, its ``family`` (what kind of object it is: a ``flow`` density or a
``smearing`` of links for an effective action; a sampler asks for one family) and its
``trainer`` (a kind of ``kinds.TRAINERS``, whose dataclass types the ``train`` section).

Importing this module imports neither torch nor ``nn`` (the workflow validates configs at
parse time): the builders import the networks when called, and the checks read
``ACTIVATION_NAMES`` and ``LOOP_TYPE_NAMES``, which mirror ``nn.conv.ACTIVATIONS`` and
``nn.LOOP_TYPES`` (a test keeps them equal).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..config.errors import fail
from ..config.schema import ModelConfig
from .registry import Kind, Registry

if TYPE_CHECKING:
    import torch

__all__ = [
    "ModelKind",
    "MODELS",
    "AffineModel",
    "U1EquivariantModel",
    "U1PlaquetteModel",
    "StoutModel",
    "MaskedStoutModel",
    "MaskedCaskModel",
    "CaskModel",
    "build_model",
    "check_model_fits",
    "ACTIVATION_NAMES",
    "LOOP_TYPE_NAMES",
]

#: the keys of ``nn.conv.ACTIVATIONS`` and ``nn.LOOP_TYPES`` (a test keeps them equal): the
#: checks of the model section import no torch
ACTIVATION_NAMES = ("leaky_relu", "tanh", "silu", "relu")
LOOP_TYPE_NAMES = ("plaquette", "rectangle", "polyakov")


@dataclass(frozen=True, kw_only=True)
class ModelKind(Kind):
    """A trained model: ``build(ensemble) -> Module`` (untrained, float64). ``theory``: the theory
    kind it models, or a tuple of them (a transform defined for U(1) and SU(N) alike)."""

    theory: str | tuple[str, ...]
    build: Callable[[Any], torch.nn.Module]
    family: str = "flow"
    trainer: str = "reverse_kl"

    @property
    def theories(self) -> tuple[str, ...]:
        """The theory kinds it models."""
        return (self.theory,) if isinstance(self.theory, str) else tuple(self.theory)

    @property
    def reads(self) -> tuple[str, ...]:
        """The keys of the ``model`` section it reads (its dataclass's, without ``kind``)."""
        config = cast(type, self.config)  # a model kind owns the model section: never None
        return tuple(f.name for f in dataclasses.fields(config) if f.name != "kind")


MODELS: Registry[ModelKind] = Registry("model", "model.kind")


def check_model_fits(kind: str, theory: str, family: str | None, sampler: str, prefix: str) -> None:
    """Refuse model kind ``kind`` unless it models ``theory`` and is of the ``family`` the sampler
    needs (``prefix``: ``ensembles.NAME.``)."""
    model = MODELS.lookup(kind, prefix + "model.kind")
    if theory not in model.theories or model.family != family:
        wanted = [k.name for k in MODELS if theory in k.theories and k.family == family]
        fail(
            prefix + "model.kind",
            kind,
            f"{', '.join(wanted) or 'none'} for theory.name = {theory!r} and "
            f"sampler.name = {sampler!r} (a {family} model)",
        )


def build_model(ens) -> torch.nn.Module:
    """The (untrained) model of ``ens.model`` in float64."""
    return MODELS.lookup(ens.model.kind).build(ens).double()


def _shape(ens) -> tuple[int, ...]:
    return tuple(int(x) for x in ens.theory.lattice)


# --- the dataclasses -----------------------------------------------------------------------


@dataclass
class _Convolutional(ModelConfig):
    """``n_layers`` couplings, each conditioned by periodic convolutions with ``hidden``
    channels, a ``kernel``-wide stencil and ``activation``."""

    n_layers: int = 16
    hidden: list[int] = field(default_factory=lambda: [8, 8])
    kernel: int = 3
    activation: str = "leaky_relu"


@dataclass
class AffineModel(_Convolutional):
    """phi^4: checkerboard affine couplings, normal prior of width ``prior_scale``."""

    kind: str = "affine"
    prior_scale: float = 1.0


@dataclass
class U1EquivariantModel(_Convolutional):
    """2D U(1): local gauge-equivariant couplings of plaquettes (Kanwar et al.); circle maps
    mix ``n_mix`` non-compact projections; ``loop_context`` adds the 1 x 2 loop of each active
    plaquette to the conditioner's input; uniform prior."""

    kind: str = "u1_equivariant"
    n_mix: int = 6
    loop_context: bool = True


@dataclass
class U1PlaquetteModel(_Convolutional):
    """2D U(1): checkerboard couplings in plaquette coordinates with one sink plaquette, then
    ``n_partners`` autoregressive sink-partner layers with perceptrons of ``partner_hidden``."""

    kind: str = "u1_plaquette"
    n_mix: int = 6
    n_partners: int = 0
    partner_hidden: list[int] = field(default_factory=lambda: [32, 32])


@dataclass
class SUEquivariantModel(ModelConfig):
    """SU(2)/SU(3) in ``d >= 2`` dimensions (2D, 4D, ...): gauge-equivariant couplings of untraced
    plaquettes (Boyda et al.; Abbott et al. in 4D), the eigenphases moved by rational-quadratic
    splines (``bins``) conditioned on the frozen plaquettes of every plane through a periodic
    convolution of ``hidden`` channels; Haar prior. ``n_layers`` cycles over ordered planes
    ``(mu, nu)`` and four mask offsets: a full cycle is ``4 d (d - 1)`` layers (8 in 2D, 48 in 4D)."""

    kind: str = "su_equivariant"
    n_layers: int = 16
    hidden: int = 16
    bins: int = 8


@dataclass
class MaskedStoutModel(ModelConfig):
    """U(1) or SU(N) links in any ``d >= 2``: ``n_layers`` masked stout steps (links of one
    direction and sublattice parity moved towards staples of fixed links; ``2 d`` layers move
    every link once), each with one trainable step size; exact Jacobians; Haar prior. The
    transform of field-transformed HMC (``fthmc``)."""

    kind: str = "masked_stout"
    n_layers: int = 8


@dataclass
class MaskedCaskModel(ModelConfig):
    """U(1) or SU(N) links in any ``d >= 2``: ``n_layers`` masked CASK steps (the masked stout
    step with the staples weighted by ``heads``-head attention among them, the weights from fixed
    links only); exact Jacobians; Haar prior. A transform of field-transformed HMC (``fthmc``)."""

    kind: str = "masked_cask"
    n_layers: int = 8
    heads: int = 2


@dataclass
class StoutModel(ModelConfig):
    """``n_layers`` trainable stout layers weighing the staples of ``loops`` (plaquette,
    rectangle, polyakov); all weights start at zero (the identity)."""

    kind: str = "stout"
    n_layers: int = 16
    loops: list[str] = field(default_factory=lambda: ["plaquette", "polyakov"])


@dataclass
class CaskModel(StoutModel):
    """``n_layers`` CASK attention blocks over ``1 x s`` rectangles, ``s = 1..extent``, each
    with query, key, value and final stout layers of ``loops``; zero weights at the start."""

    kind: str = "cask"
    extent: int = 2


# --- validation ----------------------------------------------------------------------------


def _network_checks(ens, p: str) -> None:
    mo = ens.model
    if mo.n_layers < 1:
        fail(p + "model.n_layers", mo.n_layers, "n_layers >= 1")
    if any(h < 1 for h in mo.hidden):
        fail(p + "model.hidden", list(mo.hidden), "channel counts >= 1")
    if mo.kernel < 1 or mo.kernel % 2 == 0:
        fail(p + "model.kernel", mo.kernel, "an odd kernel width >= 1")
    if mo.activation not in ACTIVATION_NAMES:
        fail(p + "model.activation", mo.activation, ", ".join(ACTIVATION_NAMES))


def _affine_checks(ens, p: str) -> None:
    _network_checks(ens, p)
    for mu, extent in enumerate(ens.theory.lattice):
        if extent % 2:
            fail(f"{p}theory.lattice[{mu}]", extent, "even extents for checkerboard affine couplings")
    if not ens.model.prior_scale > 0:
        fail(p + "model.prior_scale", ens.model.prior_scale, "prior_scale > 0")


def _two_dimensions(ens, p: str) -> None:
    if len(ens.theory.lattice) != 2:
        fail(p + "theory.lattice", list(ens.theory.lattice), f"two dimensions for {ens.model.kind} flows")


def _circle_checks(ens, p: str) -> None:
    _network_checks(ens, p)
    _two_dimensions(ens, p)
    if ens.model.n_mix < 1:
        fail(p + "model.n_mix", ens.model.n_mix, "n_mix >= 1")


def _u1_equivariant_checks(ens, p: str) -> None:
    _circle_checks(ens, p)
    for mu, extent in enumerate(ens.theory.lattice):
        if extent % 4:
            fail(f"{p}theory.lattice[{mu}]", extent, "multiples of 4 for u1_equivariant plaquette masks")


def _su_equivariant_checks(ens, p: str) -> None:
    mo, th = ens.model, ens.theory
    if len(th.lattice) < 2:
        fail(p + "theory.lattice", list(th.lattice), "two or more dimensions for su_equivariant flows")
    if th.n_colors not in (2, 3):
        fail(p + "theory.n_colors", th.n_colors, "2 or 3 for su_equivariant flows")
    if th.fermion != "none":
        fail(p + "theory.fermion", th.fermion, "none for su_equivariant flows (pure gauge)")
    for mu, extent in enumerate(th.lattice):
        if extent % 4 or extent < 4:
            fail(
                f"{p}theory.lattice[{mu}]",
                extent,
                "multiples of 4 for su_equivariant plaquette masks (every direction is a layer's nu; any d >= 2)",
            )
    for key in ("n_layers", "hidden", "bins"):
        if getattr(mo, key) < 1:
            fail(f"{p}model.{key}", getattr(mo, key), f"{key} >= 1")


def _su_equivariant(ens) -> torch.nn.Module:
    from ..nn.su_equivariant import su_flow

    mo = ens.model
    return su_flow(_shape(ens), int(ens.theory.n_colors), mo.n_layers, mo.hidden, mo.bins)


def _masked_stout_checks(ens, p: str) -> None:
    th, kind = ens.theory, ens.model.kind
    if len(th.lattice) < 2:
        fail(p + "theory.lattice", list(th.lattice), f"two or more dimensions for {kind}")
    for mu, extent in enumerate(th.lattice):
        if extent % 2:
            fail(f"{p}theory.lattice[{mu}]", extent, f"even extents for {kind} (sublattice parity masks)")
    if getattr(th, "fermion", "none") != "none":
        fail(p + "theory.fermion", th.fermion, f"none for {kind} (pure gauge)")
    if ens.model.n_layers < 1:
        fail(p + "model.n_layers", ens.model.n_layers, "n_layers >= 1")


def _masked_cask_checks(ens, p: str) -> None:
    _masked_stout_checks(ens, p)
    if ens.model.heads < 1:
        fail(p + "model.heads", ens.model.heads, "heads >= 1")


def _masked_stout(ens) -> torch.nn.Module:
    from ..lattice import SU, U1
    from ..nn.masked_stout import masked_stout_flow

    th = ens.theory
    group = U1() if th.name == "u1" else SU(int(th.n_colors))
    return masked_stout_flow(_shape(ens), group, ens.model.n_layers)


def _masked_cask(ens) -> torch.nn.Module:
    from ..lattice import SU, U1
    from ..nn.masked_cask import masked_cask_flow

    th = ens.theory
    group = U1() if th.name == "u1" else SU(int(th.n_colors))
    return masked_cask_flow(_shape(ens), group, ens.model.n_layers, ens.model.heads)


def _u1_plaquette_checks(ens, p: str) -> None:
    _circle_checks(ens, p)
    mo, lattice = ens.model, list(ens.theory.lattice)
    volume = math.prod(lattice)
    if not 0 <= mo.n_partners <= volume - 2:
        fail(p + "model.n_partners", mo.n_partners, f"0 .. {volume - 2} (V - 2 for lattice {lattice})")
    if not mo.partner_hidden or any(h < 1 for h in mo.partner_hidden):
        fail(p + "model.partner_hidden", list(mo.partner_hidden), "one or more widths >= 1")


def _smearing_checks(ens, p: str) -> None:
    mo = ens.model
    if mo.n_layers < 1:
        fail(p + "model.n_layers", mo.n_layers, "n_layers >= 1")
    if not mo.loops or any(t not in LOOP_TYPE_NAMES for t in mo.loops) or len(set(mo.loops)) != len(mo.loops):
        fail(p + "model.loops", list(mo.loops), f"distinct loop types of {', '.join(LOOP_TYPE_NAMES)}")


def _cask_checks(ens, p: str) -> None:
    _smearing_checks(ens, p)
    if ens.model.extent < 1:
        fail(p + "model.extent", ens.model.extent, "extent >= 1 (rectangles 1 x 1 .. 1 x extent)")


# --- builders ------------------------------------------------------------------------------


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
    return u1_plaquette_flow(
        _shape(ens),
        mo.n_layers,
        tuple(mo.hidden),
        mo.kernel,
        mo.n_mix,
        mo.activation,
        mo.n_partners,
        tuple(mo.partner_hidden),
    )


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


# --- the built-in kinds --------------------------------------------------------------------

MODELS.register(
    ModelKind(
        name="affine",
        config=AffineModel,
        theory="phi4",
        build=_affine,
        validate=_affine_checks,
        doc="checkerboard affine couplings, normal prior",
    )
)
MODELS.register(
    ModelKind(
        name="u1_equivariant",
        config=U1EquivariantModel,
        theory="u1",
        build=_u1_equivariant,
        validate=_u1_equivariant_checks,
        doc="local gauge-equivariant couplings of plaquettes (Kanwar et al.)",
    )
)
MODELS.register(
    ModelKind(
        name="su_equivariant",
        config=SUEquivariantModel,
        theory="su",
        build=_su_equivariant,
        validate=_su_equivariant_checks,
        doc="SU(N) gauge-equivariant couplings of plaquette eigenphases in d >= 2 (Boyda et al.)",
    )
)
MODELS.register(
    ModelKind(
        name="u1_plaquette",
        config=U1PlaquetteModel,
        theory="u1",
        build=_u1_plaquette,
        validate=_u1_plaquette_checks,
        doc="couplings in plaquette coordinates with a sink plaquette and sink partners (2D)",
    )
)
MODELS.register(
    ModelKind(
        name="masked_stout",
        config=MaskedStoutModel,
        theory=("u1", "su"),
        build=_masked_stout,
        validate=_masked_stout_checks,
        doc="masked stout steps with exact Jacobians (U(1), SU(N), any d): the transform of field-transformed HMC",
    )
)
MODELS.register(
    ModelKind(
        name="masked_cask",
        config=MaskedCaskModel,
        theory=("u1", "su"),
        build=_masked_cask,
        validate=_masked_cask_checks,
        doc="masked CASK steps: attention-weighted staples of fixed links, exact Jacobians (U(1), SU(N), any d)",
    )
)
MODELS.register(
    ModelKind(
        name="stout",
        config=StoutModel,
        theory="su",
        build=_stout,
        validate=_smearing_checks,
        family="smearing",
        trainer="slhmc",
        doc="trainable stout layers (plaquette, rectangle, Polyakov-line staples): the covariant net of SLHMC",
    )
)
MODELS.register(
    ModelKind(
        name="cask",
        config=CaskModel,
        theory="su",
        build=_cask,
        validate=_cask_checks,
        family="smearing",
        trainer="slhmc",
        doc="CASK gauge-covariant attention blocks over 1 x s rectangles",
    )
)
