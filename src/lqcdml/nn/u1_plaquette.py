"""Gauge-equivariant flow of 2D U(1) in plaquette coordinates (a global coupling).

On an ``L_0 x L_1`` torus the ``2 V`` link angles are, up to a unimodular linear change of
variables, ``V - 1`` gauge angles, ``V - 1`` plaquette angles and 2 holonomies: the last
plaquette is fixed by ``sum_x P(x) = 0 (mod 2 pi)``. Under the Haar measure those
``V - 1`` plaquettes are independent and uniform, and the Wilson action is a sum over
plaquettes, so the target is a product of von Mises densities ``exp(beta cos P)`` up to
the one constrained plaquette. A flow that moves plaquettes, not links, therefore meets
no local obstruction: this is the structure that 2D gauge theory has and 4D does not
(there the Bianchi identities tie plaquettes together), so use it for 2D U(1) only.

Coupling layer
--------------
Plaquettes are labelled by their corner ``x`` (``theories.gauge.plaquette_field``:
``P(x) = theta_0(x) + theta_1(x + e_0) - theta_0(x + e_1) - theta_1(x)``). The *sink* is
``s = (L_0 - 1, L_1 - 1)``. Layer ``parity`` transforms the active plaquettes
``(x_0 + x_1) % 2 == parity``, ``x != s``, by a circle map ``h`` (``u1_equivariant``'s
mixture of non-compact projections with a rotation) conditioned on the frozen plaquettes
(the others, without the sink); the sink takes up ``-sum dP``. The links change by a
gauge-invariant field ``delta(dP)`` with ``curl delta = dP`` (``plaquette_change_links``):
``theta' = wrap(theta + delta)``. In the coordinates above the layer is triangular (gauge
angles fixed, active plaquettes mapped by ``h``, frozen plaquettes fixed, holonomies shifted
by a function of the plaquettes), so ``log|det| = sum_active log h'(P)``. Adding an invariant
shift commutes with gauge transformations: the layer is gauge equivariant.

Sink partners
-------------
With exact one-plaquette maps only the sink is wrong: the log weight is ``beta cos P(s) +
const``, and the normalised ESS is ``I_0(beta)^2 / I_0(2 beta)`` at large volume (0.24 at
``beta = 6``), whatever ``V`` (local couplings lose ESS like ``exp(-c V)``). The ``m``
plaquettes before the sink in row-major order, ``q_1 .. q_m``, fix that autoregressively:
partner layer ``j`` maps ``q_j`` by a circle map conditioned on ``S_j``, the wrapped sum of
all plaquettes before ``q_j`` (unchanged by the layer, since ``sum_x P(x) = 0``), and the
sink takes up the change. The target conditional is ``p(q_j | S_j) ~ exp(beta cos q_j)
f_{m-j+1}(-S_j - q_j)``, with ``f_n`` the density of a sum of ``n`` independent plaquettes;
with exact maps the remaining weight is ``f_{m+1}(-S)`` for a nearly uniform ``S`` and

    ``ESS = 1 / (1 + 2 sum_{k >= 1} (I_k(beta) / I_0(beta))^(2 (m + 1)))``

(``partner_ess_bound``): 0.72 for ``m = 8`` and 0.92 for ``m = 16`` at ``beta = 6``.

Merged evaluation
-----------------
Every layer moves plaquettes only (the gauge angles stay, the holonomies follow), its maps
and its log-Jacobian read plaquettes only, and the link change of a plaquette change is
linear (``plaquette_change_links``). So ``PlaquetteFlowModel`` (``merged=True``) computes
the plaquette field once, runs all layers on it (``plaquette_forward`` /
``plaquette_reverse``: couplings evaluate ``h`` at their active plaquettes only; a run of
partners with increasing indices is one chain, ``S_{j+1} = wrap(S_j + q_j' + gap)``, and in
reverse reads all ``S_j`` at once and inverts its ``m`` maps in one batch), and changes the
links once, by ``delta`` of the accumulated change ``P_end - P_start`` off the sink and
``-sum`` of it at the sink. No layer reads the sink, so its value is left stale in between.
This is the layer-by-layer map (``merged=False``: each layer recomputes the plaquettes from
the links and moves the links) exactly, up to rounding and ``2 pi`` multiples of link
angles: the plaquettes a layer reads differ from the recomputed ones by ``2 pi`` multiples
(``U1.mul`` does not wrap), and every map reads them through ``cos``, ``sin``, ``wrap`` or
``h``, all ``2 pi``-periodic; ``delta`` of integer multiples of ``2 pi`` is one too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from ..lattice import U1
from ..theories.gauge import plaquette_field
from .conv import ACTIVATIONS, conv_net
from .flow import FlowModel, UniformAnglePrior
from .prior import Prior
from .transform import InvertibleLayer
from .u1_equivariant import (
    check_links,
    circle_map,
    circle_map_inverse,
    mixture_params,
    wrap,
    zero_mixture_head,
)

__all__ = [
    "PlaquetteCoupling",
    "PlaquetteFlowModel",
    "SinkPartnerCoupling",
    "partner_chain_forward",
    "partner_chain_reverse",
    "partner_ess_bound",
    "plaquette_change_links",
    "u1_plaquette_flow",
]

_U1 = U1()


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"u1 plaquette flow: lattice shape {tuple(shape)}; allowed: two extents (L_0, L_1), each >= 2")
    return int(shape[0]), int(shape[1])


def plaquette_change_links(dp: torch.Tensor) -> torch.Tensor:
    """Link angles ``delta`` ``[B, 2, L_0, L_1]`` whose plaquettes are ``dp`` ``[B, L_0, L_1]``.

    ``dp`` must sum to zero over the lattice (exactly, not only mod 2 pi). The
    solution uses direction-0 links on the last column ``x_0 = L_0 - 1`` to move each row's
    total ``R(x_1) = sum_{x_0} dp`` across rows, and direction-1 links to spread the
    remainder of a row along it: with ``r(x) = dp(x) - [x_0 = L_0 - 1] R(x_1)``,

        ``delta_0(L_0 - 1, x_1) = -sum_{y < x_1} R(y)``,  ``delta_1(x_0, x_1) = sum_{y < x_0} r(y, x_1)``,

    and ``delta = 0`` elsewhere. Linear in ``dp``; ``delta`` of a gauge-invariant ``dp`` is
    gauge invariant.
    """
    rows = dp.sum(dim=1)  # R(x_1): [B, L_1]
    d0_col = -(torch.cumsum(rows, dim=1) - rows)  # exclusive cumulative sum over x_1
    r = dp.clone()
    r[:, -1] = r[:, -1] - rows
    d1 = torch.cumsum(r, dim=1) - r  # exclusive cumulative sum over x_0
    d0 = torch.zeros_like(dp)
    d0[:, -1] = d0_col
    return torch.stack((d0, d1), dim=1)


def move_links(links: torch.Tensor, dp: torch.Tensor) -> torch.Tensor:
    """Links ``wrap(links + delta)`` whose plaquettes off the sink change by ``dp``.

    ``links`` ``[B, 2, L_0, L_1]``, ``dp`` ``[B, L_0, L_1]``; the sink entry of ``dp`` (the
    last plaquette, row-major) is ignored: the sink takes up ``-sum`` of the other changes,
    so the total is exactly zero as ``plaquette_change_links`` requires.
    """
    total = dp.flatten(1)[:, :-1].sum(1)
    dp = dp.clone()
    dp[:, -1, -1] = -total
    return wrap(links + plaquette_change_links(dp))


class PlaquetteCoupling(InvertibleLayer):
    """Checkerboard coupling of plaquette angles with a sink; see the module docstring.

    ``net``: ``[B, 2, L_0, L_1] -> [B, 2 n_mix + 2, L_0, L_1]``, input ``(cos P, sin P)`` on
    frozen plaquettes (zero on active ones and the sink), outputs read as in
    ``U1EquivariantCoupling``.
    """

    # buffers (register_buffer): declared for the type checker
    active: torch.Tensor
    frozen: torch.Tensor
    active_index: torch.Tensor

    def __init__(self, shape: tuple[int, int], parity: int, net: nn.Module, n_mix: int) -> None:
        super().__init__()
        if parity not in (0, 1):
            raise ValueError(f"u1 plaquette coupling: parity = {parity!r}; allowed: 0 or 1")
        if n_mix < 1:
            raise ValueError(f"u1 plaquette coupling: n_mix = {n_mix}; allowed: >= 1")
        self.shape, self.parity, self.n_mix = _check_shape(shape), parity, n_mix
        x = torch.meshgrid(*(torch.arange(n) for n in self.shape), indexing="ij")
        sink = (x[0] == self.shape[0] - 1) & (x[1] == self.shape[1] - 1)
        active = ((x[0] + x[1]) % 2 == parity) & ~sink
        self.register_buffer("active", active)
        self.register_buffer("frozen", ~(active | sink))
        # row-major indices of the active plaquettes, for plaquette_forward (not in the state_dict)
        self.register_buffer("active_index", active.flatten().nonzero()[:, 0], persistent=False)
        self.net = net

    def _params(self, plaq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frozen = self.frozen.to(plaq.dtype)
        out = self.net(torch.stack((torch.cos(plaq) * frozen, torch.sin(plaq) * frozen), dim=1))
        return mixture_params(out, self.n_mix, "u1 plaquette coupling")

    def _active_params(self, plaq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s, w, t)`` at the active plaquettes only: ``[B, n_mix, n_active]``, ..., ``[B, n_active]``."""
        frozen = self.frozen.to(plaq.dtype)
        out = self.net(torch.stack((torch.cos(plaq) * frozen, torch.sin(plaq) * frozen), dim=1))
        out = out.flatten(2)[:, :, self.active_index]
        return mixture_params(out, self.n_mix, "u1 plaquette coupling")

    def plaquette_forward(self, plaq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer on plaquettes ``[B, L_0, L_1]``: ``(P', log|det|)`` ``[B, L_0, L_1]``, ``[B]``.

        Active plaquettes mapped by ``h`` (evaluated there only), the others (the sink too: it
        is read by no layer) returned as given; ``P`` may be any ``2 pi`` representatives.
        """
        flat = plaq.flatten(1)
        new, dh = circle_map(flat[:, self.active_index], *self._active_params(plaq))
        return flat.index_copy(1, self.active_index, new).view_as(plaq), torch.log(dh).sum(1)

    def plaquette_reverse(self, plaq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of ``plaquette_forward``: ``(P, log|det dP/dP'|)``; sink returned as given."""
        flat = plaq.flatten(1)  # frozen plaquettes are unchanged by the layer
        old, dh = circle_map_inverse(flat[:, self.active_index], *self._active_params(plaq))
        return flat.index_copy(1, self.active_index, old).view_as(plaq), -torch.log(dh).sum(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, log|det dy/dx|)``: ``[B, 2, L_0, L_1]``, ``[B]``. Layer by layer: the reference."""
        check_links(x, self.shape, "u1 plaquette coupling")
        plaq = plaquette_field(x, _U1)[:, 0]
        s, w, t = self._params(plaq)
        new, dh = circle_map(plaq, s, w, t)
        y = move_links(x, torch.where(self.active, new - plaq, 0.0))
        return y, torch.log(torch.where(self.active, dh, 1.0)).flatten(1).sum(1)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``: ``[B, 2, L_0, L_1]``, ``[B]``. Layer by layer: the reference."""
        check_links(y, self.shape, "u1 plaquette coupling")
        plaq = plaquette_field(y, _U1)[:, 0]
        s, w, t = self._params(plaq)  # frozen plaquettes are unchanged by the layer
        old, dh = circle_map_inverse(plaq, s, w, t)
        x = move_links(y, torch.where(self.active, old - plaq, 0.0))
        return x, -torch.log(torch.where(self.active, dh, 1.0)).flatten(1).sum(1)


class SinkPartnerCoupling(InvertibleLayer):
    """Partner layer: plaquette ``index`` (row-major) mapped conditioned on the wrapped sum of
    the plaquettes before it; the sink (the last plaquette) takes up the change.

    ``net``: ``[B, 2] -> [B, 2 n_mix + 2]`` from ``(cos S, sin S)``; outputs read as in
    ``U1EquivariantCoupling``.
    """

    def __init__(self, shape: tuple[int, int], index: int, net: nn.Module, n_mix: int) -> None:
        super().__init__()
        self.shape, self.n_mix = _check_shape(shape), n_mix
        volume = self.shape[0] * self.shape[1]
        if not 1 <= index < volume - 1:
            raise ValueError(
                f"u1 sink partner: plaquette index {index}; allowed: 1 .. {volume - 2} "
                f"(at least one plaquette before it, the sink {volume - 1} after it)"
            )
        self.index = index
        self.net = net

    def conditioner(self, before: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s, w, t)`` ``[B, n_mix, 1]``, ``[B, n_mix, 1]``, ``[B, 1]`` from ``S`` ``[B]``."""
        out = self.net(torch.stack((torch.cos(before), torch.sin(before)), dim=1)).unsqueeze(-1)
        return mixture_params(out, self.n_mix, "u1 sink partner")

    def _params(self, plaq: torch.Tensor):
        flat = plaq.flatten(1)
        before = wrap(flat[:, : self.index].sum(1))
        return flat[:, self.index : self.index + 1], self.conditioner(before)

    def _move(self, links: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
        """Links whose plaquette ``index`` changes by ``change`` ``[B]`` (the sink by ``-change``)."""
        dp = torch.zeros(links.shape[0], self.shape[0] * self.shape[1], dtype=links.dtype, device=links.device)
        dp[:, self.index] = change
        return move_links(links, dp.view(-1, *self.shape))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_links(x, self.shape, "u1 sink partner")
        q, (s, w, t) = self._params(plaquette_field(x, _U1)[:, 0])
        new, dh = circle_map(q, s, w, t)
        return self._move(x, (new - q)[:, 0]), torch.log(dh[:, 0])

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_links(y, self.shape, "u1 sink partner")
        q, (s, w, t) = self._params(plaquette_field(y, _U1)[:, 0])
        old, dh = circle_map_inverse(q, s, w, t)
        return self._move(y, (old - q)[:, 0]), -torch.log(dh[:, 0])


def _chain_indices(partners: list[SinkPartnerCoupling]) -> list[int]:
    """The partners' plaquette indices; ``ValueError`` unless strictly increasing."""
    idx = [layer.index for layer in partners]
    if not idx or any(b <= a for a, b in zip(idx, idx[1:])):
        raise ValueError(f"u1 sink partner chain: plaquette indices {idx}; allowed: one or more, strictly increasing")
    return idx


def partner_chain_forward(plaq: torch.Tensor, partners: list[SinkPartnerCoupling]) -> tuple[torch.Tensor, torch.Tensor]:
    """Partner layers in sequence on flat plaquettes ``[B, V]`` (row-major; strictly
    increasing indices): ``(P', log|det|)`` ``[B, V]``, ``[B]``.

    The sum before each partner is carried, ``S_{j+1} = wrap(S_j + q_j' + sum of the
    plaquettes between q_j and q_{j+1})``; the sink is returned as given.
    """
    idx = _chain_indices(partners)
    before = wrap(plaq[:, : idx[0]].sum(1))
    news: list[torch.Tensor] = []
    log_det = torch.zeros(plaq.shape[0], dtype=plaq.dtype, device=plaq.device)
    for j, layer in enumerate(partners):
        if j:
            step = news[-1]
            if idx[j] > idx[j - 1] + 1:
                step = step + plaq[:, idx[j - 1] + 1 : idx[j]].sum(1)
            before = wrap(before + step)
        new, dh = circle_map(plaq[:, idx[j] : idx[j] + 1], *layer.conditioner(before))
        news.append(new[:, 0])
        log_det = log_det + torch.log(dh[:, 0])
    index = torch.tensor(idx, device=plaq.device)
    return plaq.index_copy(1, index, torch.stack(news, dim=1)), log_det


def partner_chain_reverse(plaq: torch.Tensor, partners: list[SinkPartnerCoupling]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of ``partner_chain_forward`` (same shapes; ``partners`` in forward order).

    Undoing partner ``j`` leaves the plaquettes before ``q_j`` as given, so every ``S_j``
    is read off the input at once and all ``m`` circle maps are inverted in one batch.
    """
    idx = _chain_indices(partners)
    n_mix = partners[0].n_mix
    if any(layer.n_mix != n_mix for layer in partners):
        raise ValueError(f"u1 sink partners: n_mix = {[layer.n_mix for layer in partners]}; allowed: one value")
    index = torch.tensor(idx, device=plaq.device)
    # sum of the plaquettes before idx[j]: the sum before idx[0] plus a cumulative sum
    between = torch.cumsum(plaq[:, idx[0] : idx[-1]], dim=1)
    offsets = torch.cat((between.new_zeros(plaq.shape[0], 1), between), dim=1)[:, index - idx[0]]
    before = wrap(plaq[:, : idx[0]].sum(1, keepdim=True) + offsets)  # [B, m]
    context = torch.stack((torch.cos(before), torch.sin(before)), dim=-1)  # [B, m, 2]
    out = torch.stack([layer.net(context[:, j]) for j, layer in enumerate(partners)], dim=-1)
    s, w, t = mixture_params(out, n_mix, "u1 sink partner")
    old, dh = circle_map_inverse(plaq[:, index], s, w, t)
    return plaq.index_copy(1, index, old), -torch.log(dh).sum(1)


class PlaquetteFlowModel(FlowModel):
    """``FlowModel`` of ``PlaquetteCoupling`` and ``SinkPartnerCoupling`` layers on one
    ``L_0 x L_1`` lattice, links ``[B, 2, L_0, L_1]``.

    ``merged=True``: the merged evaluation of the module docstring (plaquettes computed once,
    links changed once); ``merged=False``: layer by layer (``FlowModel``), the reference.
    Same bijection, log-Jacobian and ``state_dict`` either way.
    """

    def __init__(self, prior: Prior, layers: Sequence[InvertibleLayer], merged: bool = True) -> None:
        kinds = (PlaquetteCoupling, SinkPartnerCoupling)
        bad = [type(layer).__name__ for layer in layers if not isinstance(layer, kinds)]
        shapes = {layer.shape for layer in layers if isinstance(layer, kinds)}
        if bad or len(shapes) != 1:
            names = bad or [type(layer).__name__ for layer in layers]
            raise ValueError(
                f"u1 plaquette flow: layers {names} on lattices {sorted(shapes)}; allowed: "
                "PlaquetteCoupling and SinkPartnerCoupling layers, one lattice"
            )
        super().__init__(prior, layers)
        self.shape: tuple[int, int] = shapes.pop()
        self.merged = bool(merged)

    def _runs(self) -> list[PlaquetteCoupling | list[SinkPartnerCoupling]]:
        """Layers in order, partners grouped into runs of strictly increasing index and one
        ``n_mix`` (each run one ``partner_chain_forward``)."""
        runs: list[PlaquetteCoupling | list[SinkPartnerCoupling]] = []
        for layer in self.layers:
            last = runs[-1] if runs else None
            if isinstance(layer, SinkPartnerCoupling):
                if isinstance(last, list) and layer.index > last[-1].index and layer.n_mix == last[-1].n_mix:
                    last.append(layer)
                else:
                    runs.append([layer])
            else:  # __init__ admits only the two coupling kinds
                runs.append(cast(PlaquetteCoupling, layer))
        return runs

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)``: ``[B, 2, L_0, L_1]``, ``[B]``."""
        if not self.merged:
            return super().forward(z)
        check_links(z, self.shape, "u1 plaquette flow")
        plaq = plaquette_field(z, _U1)[:, 0]
        new, log_det = plaq, torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for run in self._runs():
            if isinstance(run, list):
                flat, ld = partner_chain_forward(new.flatten(1), run)
                new = flat.view_as(plaq)
            else:
                new, ld = run.plaquette_forward(new)
            log_det = log_det + ld
        return move_links(z, new - plaq), log_det

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)``: ``[B, 2, L_0, L_1]``, ``[B]``."""
        if not self.merged:
            return super().reverse(x)
        check_links(x, self.shape, "u1 plaquette flow")
        plaq = plaquette_field(x, _U1)[:, 0]
        old, log_det = plaq, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for run in reversed(self._runs()):
            if isinstance(run, list):
                flat, ld = partner_chain_reverse(old.flatten(1), run)
                old = flat.view_as(plaq)
            else:
                old, ld = run.plaquette_reverse(old)
            log_det = log_det + ld
        return move_links(x, old - plaq), log_det


def partner_ess_bound(beta: float, n_partners: int) -> float:
    """Normalised ESS of the plaquette flow with exact maps and ``n_partners`` sink partners,
    at large volume: ``1 / (1 + 2 sum_k (I_k / I_0)^(2 (m + 1)))``."""
    k = np.arange(1, int(30 + 4 * beta))
    from scipy import special  # on first use: scipy.special costs every job ~0.3 s to import

    rho = special.ive(k, beta) / special.ive(0, beta)
    return float(1.0 / (1.0 + 2.0 * np.sum(rho ** (2 * (n_partners + 1)))))


def _partner_net(hidden: tuple[int, ...], n_mix: int, activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"u1 sink partner: activation = {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    widths = [2, *hidden, 2 * n_mix + 2]
    mods: list[nn.Module] = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            mods.append(ACTIVATIONS[activation]())
    return nn.Sequential(*mods)


def u1_plaquette_flow(
    shape: tuple[int, ...],
    n_layers: int = 2,
    hidden: tuple[int, ...] = (8, 8),
    kernel: int = 3,
    n_mix: int = 6,
    activation: str = "leaky_relu",
    n_partners: int = 0,
    partner_hidden: tuple[int, ...] = (32, 32),
    merged: bool = True,
) -> PlaquetteFlowModel:
    """Uniform (Haar) prior on ``[B, 2, L_0, L_1]``, ``n_layers`` plaquette couplings, then
    ``n_partners`` sink-partner layers (plaquettes ``V - 1 - m .. V - 2`` in order).

    Layer ``i`` transforms parity ``i % 2``; the last layer of each conditioner starts as in
    ``u1_equivariant.zero_mixture_head``. Partner conditioners are perceptrons with
    ``partner_hidden`` widths. ``merged``: see ``PlaquetteFlowModel``.
    """
    if n_layers < 1:
        raise ValueError(f"u1_plaquette_flow: n_layers = {n_layers}; allowed: >= 1")
    shape = _check_shape(tuple(shape))
    volume = shape[0] * shape[1]
    if not 0 <= n_partners <= volume - 2:
        raise ValueError(
            f"u1_plaquette_flow: n_partners = {n_partners}; allowed: 0 .. {volume - 2} "
            f"(V - 2 on a {shape[0]} x {shape[1]} lattice)"
        )
    layers: list[InvertibleLayer] = []
    for i in range(n_layers):
        net = conv_net(2, 2, 2 * n_mix + 2, list(hidden), kernel, activation, final=None)
        zero_mixture_head(net, n_mix)
        layers.append(PlaquetteCoupling(shape, i % 2, net, n_mix))
    for index in range(volume - 1 - n_partners, volume - 1):
        net = _partner_net(tuple(partner_hidden), n_mix, activation)
        zero_mixture_head(net, n_mix)
        layers.append(SinkPartnerCoupling(shape, index, net, n_mix))
    return PlaquetteFlowModel(UniformAnglePrior((2, *shape)), layers, merged)
