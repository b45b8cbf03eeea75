"""Gauge-equivariant coupling layers for SU(N) lattice gauge theory (N = 2, 3) in ``d >= 2``
dimensions.

The U(1) construction of ``nn.u1_equivariant`` (Kanwar et al., arXiv:2003.06413) made
non-abelian (Boyda et al., arXiv:2008.05456) and taken to ``d`` dimensions (as in Abbott et al.,
arXiv:2208.03832, 4D SU(2) and SU(3)). Links are complex ``[B, d, L_0, ..., L_{d-1}, N, N]``.

Masks (``su_link_masks``)
-------------------------
A layer ``(mu, nu, offset)`` (``mu != nu``, ``offset`` in 0..3) updates the links ``U_mu(x)`` with

    ``x_mu % 2 == offset % 2`` and ``x_nu % 4 == offset`` (the other coordinates free);

it needs ``L_mu`` even, ``L_nu`` a multiple of 4 and the other extents ``>= 2``. In 2D
(``nu = 1 - mu``) these are the U(1) masks ``u1_link_masks``. The plaquette of plane ``(a, b)``, ``a < b``, at corner ``y`` is
``P_ab(y) = U_a(y) U_b(y + a) U_a(y + b)^dag U_b(y)^dag`` (``theories.gauge.plaquette_field``).
The *active loop* of an updated link is the plaquette of the ``(mu, nu)`` plane that holds it
with sign ``+``, at corner ``x`` for ``mu < nu`` and ``x - e_nu`` for ``mu > nu``, written as
the untraced loop ``W`` that starts with the link:

    ``mu < nu``: ``W = P_{mu nu}(x)``;
    ``mu > nu``: ``W = U_nu(x - e_nu)^dag P_{nu mu}(x - e_nu) U_nu(x - e_nu)``.

An active loop holds one updated link (its other ``mu`` link, at ``x +- e_nu``, has
``x_nu % 4 != offset``). *Frozen* plaquettes are those of all ``d (d - 1) / 2`` planes that
hold no updated link; the others (the active loops, their partners in the ``(mu, nu)`` plane,
and in ``d > 2`` the plaquettes of the planes ``(mu, rho)``, ``rho != nu``, which may hold two
updated links) are neither read nor written as such. ``su_link_masks`` checks both facts on
explicit link lists (an ``AssertionError`` if they failed).

Layer
-----
For an updated link ``U`` with active loop ``W`` and staple ``S = U^dag W`` (three links not
updated), the layer sets ``W' = h(W)`` with a conjugation-equivariant map of the eigenphases
(``nn.su_spectral_maps``) whose parameters come from the frozen plaquettes, and ``U' = W' S^dag
= h(W) W^dag U``. Under a gauge transformation ``W`` is conjugated by ``g(x)`` and ``S`` changes
by ``g(x + mu) . g(x)^dag``, so ``U'`` transforms as a link: the layer is gauge equivariant.
``U'`` depends on the links of its own loop and on frozen plaquettes only, none of them
updated: the Jacobian is block-triangular with one block per updated link and, Haar measure
being right-invariant, each block is that of ``h`` on ``W``: ``log|det| = sum over updated links
of log_det(h)`` (with the Weyl factor).

Conditioner: features ``Re tr P / N`` (SU(2)), and ``Im tr P / N`` (SU(3)), of each plane's
frozen plaquettes, zero elsewhere, as channels ``(plane, part)`` in the order of
``theories.gauge.planes`` (``[B, n_planes * parts, L...]``), through a periodic convolution net
to a context ``[B, C, L...]``, read at the active loop's corner (``x`` for ``mu < nu``,
``x - e_nu`` for ``mu > nu``; in 2D the placement of the original 2D layers). The net is
evaluated by torch's convolution where it has one (``d <= 3``) and by ``SiteConvNet`` (gathered
neighbours, the context computed at the corners only) in ``d >= 4``: a training step of 16 SU(3)
layers on 4^4 (batch 16, one thread) took 3.7 s against 13 s with the rolled sum of
``PeriodicConv``. In ``d >= 3`` the loops, eigenphase maps and phase flows run on the updated
links only (gathered: one in 8 of the ``mu`` links; 7.5 s with them at every site); in 2D at
every site and then masked, the arithmetic of the original 2D layers (their outputs bit for bit).

Cycle (``su_coupling_stack``)
-----------------------------
Layer ``i`` is ``(mu, nu) = pairs[i % n_pairs]``, ``offset = (i // n_pairs) % 4``, with the
``n_pairs = d (d - 1)`` ordered pairs taken plane by plane in the order of ``planes(d)``, each
plane's two orientations in turn: ``(a, b), (b, a)`` (2D: ``(0, 1), (1, 0)``, the cycle of the
original 2D stack). The first ``d (d - 1)`` layers visit every direction and plane; a full
cycle is ``4 d (d - 1)`` layers (8 in 2D, 48 in 4D). Per full cycle every plaquette of every
plane is the active loop of exactly one layer (plane ``(a, b)``: layers ``(a, b, .)`` take the
corners ``y_a = y_b (mod 2)``, layers ``(b, a, .)`` the others), and the link ``U_mu(x)`` is
updated by the layers ``(mu, nu, x_nu % 4)`` with ``x_nu = x_mu (mod 2)``: once for each such
``nu``, between 0 and ``d - 1`` times (in 2D the links with ``x_0 = x_1 (mod 2)`` once, the
others never; the flow moves the gauge-invariant content, every plaquette, all the same).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from ..lattice import SU, shift
from ..theories.gauge import planes, plaquette_field
from .conv import conv_net
from .flow import FlowModel
from .prior import HaarPrior, cast_precision
from .site_conv import SiteConvNet, site_conv_supported
from .su_phase_flows import SU2PhaseFlow, SU3PhaseFlow
from .su_spectral_maps import su2_spectral_map, su3_spectral_map
from .transform import InvertibleLayer

__all__ = ["SUEquivariantCoupling", "su_coupling_stack", "su_flow", "su_layer_cycle", "su_link_masks"]


def _check_layer(shape: tuple[int, ...], mu: int, nu: int, offset: int) -> None:
    d = len(shape)
    if d < 2:
        raise ValueError(f"su coupling: lattice shape {tuple(shape)}; allowed: two or more extents")
    if any(extent < 2 for extent in shape):
        raise ValueError(f"su coupling: lattice shape {tuple(shape)}; allowed: extents >= 2")
    if mu not in range(d):
        raise ValueError(f"su coupling: mu = {mu!r}; allowed: 0 .. {d - 1}")
    if nu not in range(d) or nu == mu:
        raise ValueError(f"su coupling: nu = {nu!r}; allowed: 0 .. {d - 1}, not mu = {mu}")
    if offset not in (0, 1, 2, 3):
        raise ValueError(f"su coupling: offset = {offset!r}; allowed: 0, 1, 2, 3")
    if shape[mu] % 2:
        raise ValueError(
            f"su coupling (mu = {mu}): L_{mu} = {shape[mu]}; allowed: an even extent along the updated direction mu"
        )
    if shape[nu] % 4:
        raise ValueError(f"su coupling (mu = {mu}): L_{nu} = {shape[nu]}; allowed: a multiple of 4 along nu = {nu}")


def _verify_masks(
    shape: tuple[int, ...], mu: int, nu: int, links: torch.Tensor, corners: torch.Tensor, frozen: torch.Tensor
) -> None:
    """The masks' two promises on explicit link lists (link id ``direction * V + site``): every
    active loop holds exactly one updated link, its own, and is not frozen; no frozen plaquette
    holds an updated link, and every other plaquette holds one."""
    d, volume = len(shape), math.prod(shape)
    site = torch.arange(volume).view(shape)

    def ids(direction: int, step: dict[int, int]) -> torch.Tensor:  # link U_direction(y + step), per y
        s = site
        for axis, k in step.items():
            s = torch.roll(s, -k, axis)
        return direction * volume + s.flatten()

    updated = torch.zeros(d * volume, dtype=torch.bool)
    updated[ids(mu, {})[links.flatten()]] = True
    for p, (a, b) in enumerate(planes(d)):
        loop = torch.stack([ids(a, {}), ids(b, {a: 1}), ids(a, {b: 1}), ids(b, {})], -1)  # [V, 4]
        holds = updated[loop].sum(-1)
        if not torch.equal(frozen[p].flatten(), holds == 0):
            raise AssertionError(f"su coupling masks: plane {(a, b)}'s frozen plaquettes are not those without updates")
        if (a, b) == (min(mu, nu), max(mu, nu)):
            active = corners.flatten()
            own = loop[active, 0 if mu < nu else 1]  # the link the loop starts with
            # as sets: ``own`` is ordered by corner, the updated links by site (they differ where a
            # corner wraps around the lattice)
            mine = ids(mu, {})[links.flatten()]
            if (holds[active] != 1).any() or not torch.equal(own.sort().values, mine.sort().values):
                raise AssertionError("su coupling masks: an active loop holds another updated link")


def su_link_masks(
    shape: tuple[int, ...], mu: int, nu: int, offset: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean masks of layer ``(mu, nu, offset)`` (module docstring): ``links [L...]`` (sites
    ``x`` of the updated ``U_mu(x)``), ``corners [L...]`` (corners of the active loops, in the
    plane ``(min(mu, nu), max(mu, nu))``) and ``frozen [n_planes, L...]`` (per plane of
    ``planes(d)``, the plaquettes holding no updated link). ``ValueError`` for a layer the lattice
    does not allow (``L_mu`` odd, ``L_nu`` not a multiple of 4)."""
    shape = tuple(int(s) for s in shape)
    _check_layer(shape, mu, nu, offset)
    x = torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij")
    links = (x[mu] % 2 == offset % 2) & (x[nu] % 4 == offset)
    corners = links if mu < nu else shift(links, nu, first_axis=0)  # corner y = x - e_nu
    frozen = []
    for a, b in planes(len(shape)):
        holds = torch.zeros_like(links)
        if mu == a:  # U_a(y), U_a(y + b)
            holds = links | shift(links, b, first_axis=0)
        elif mu == b:  # U_b(y + a), U_b(y)
            holds = links | shift(links, a, first_axis=0)
        frozen.append(~holds)
    frozen_planes = torch.stack(frozen)
    _verify_masks(shape, mu, nu, links, corners, frozen_planes)
    return links, corners, frozen_planes


def su_layer_cycle(dim: int) -> list[tuple[int, int]]:
    """The ordered pairs ``(mu, nu)`` that ``su_coupling_stack`` cycles over: plane by plane
    (``planes(dim)``), each as ``(a, b)`` then ``(b, a)``."""
    return [pair for a, b in planes(dim) for pair in ((a, b), (b, a))]


class SUEquivariantCoupling(InvertibleLayer):
    """One coupling layer ``(mu, nu, offset)`` on SU(``n``) links of lattice ``shape`` (module
    docstring); ``nu`` defaults to ``1 - mu`` in 2D. ``net`` maps the frozen plaquettes'
    features ``[B, C_in, L...]`` (``C_in = n_planes * n_features(n)``) to a context
    ``[B, C, L...]`` of the phase flow (``SU2PhaseFlow`` / ``SU3PhaseFlow`` built with
    ``context_dim = C``). ``site_conv`` (default: ``d >= 4`` where ``SiteConvNet`` supports
    ``net``) evaluates ``net`` at the active corners only by gathered neighbours (first
    derivatives only: a backward with ``create_graph=True`` raises); ``False``: ``net`` itself.
    ``gather_links`` (default: ``d >= 3``) evaluates loops, maps and phase flows on the updated
    links only; ``False``: at every site, then masked (the 2D arithmetic, bit for bit).

    State: the parameters of ``net`` and ``flow`` and the persistent boolean buffers
    ``link_mask [L...]`` and ``frozen [n_planes, L...]`` (a 2D state of the original layers,
    ``frozen [L_0, L_1]``, loads too; masks that differ from this layer's raise on loading).
    """

    link_mask: torch.Tensor
    frozen: torch.Tensor
    sites: torch.Tensor
    evaluated: torch.Tensor
    corner_sites: torch.Tensor
    rows: torch.Tensor

    def __init__(
        self,
        shape: tuple[int, ...],
        n: int,
        mu: int,
        offset: int,
        net: nn.Module,
        flow: SU2PhaseFlow | SU3PhaseFlow,
        nu: int | None = None,
        site_conv: bool | None = None,
        gather_links: bool | None = None,
    ):
        super().__init__()
        if n not in (2, 3):
            raise ValueError(f"su coupling: n = {n!r}; allowed: 2, 3")
        self.shape = tuple(int(s) for s in shape)
        self.dim = d = len(self.shape)
        if nu is None:
            if d != 2:
                raise ValueError(f"su coupling: nu = None on a {d}D lattice; allowed: None in 2D only")
            nu = 1 - mu
        self.n, self.mu, self.nu, self.offset = n, mu, nu, offset
        self.group = SU(n)
        links, corners, frozen = su_link_masks(self.shape, mu, nu, offset)
        self.register_buffer("link_mask", links)
        self.register_buffer("frozen", frozen)
        # the updated links' sites (flat, row-major) and, for the sites where the loops and maps
        # are evaluated (the updated ones, or all with gather_links = False), their loops' corners
        volume = math.prod(self.shape)
        sites = torch.nonzero(links.flatten()).flatten()
        if gather_links is None:
            gather_links = d >= 3
        self.gather_links = bool(gather_links)
        evaluated = sites if self.gather_links else torch.arange(volume)
        coords = torch.stack(torch.unravel_index(evaluated, self.shape), -1)
        if mu > nu:
            coords[:, nu] = (coords[:, nu] - 1) % self.shape[nu]
        strides = torch.tensor([math.prod(self.shape[k + 1 :]) for k in range(d)])
        corner_sites = (coords * strides).sum(-1)
        rows = torch.arange(len(sites)) if self.gather_links else sites
        self.register_buffer("sites", sites, persistent=False)
        self.register_buffer("evaluated", evaluated, persistent=False)
        self.register_buffer("corner_sites", corner_sites, persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        if not torch.equal(corners.flatten()[corner_sites[rows]], torch.ones(len(sites), dtype=torch.bool)):
            raise AssertionError("su coupling: the updated links' corners are not the masks' active corners")
        self.plane = planes(d).index((min(mu, nu), max(mu, nu)))
        self.net, self.flow = net, flow
        self._map = su2_spectral_map if n == 2 else su3_spectral_map
        if site_conv is None:
            site_conv = d >= 4 and site_conv_supported(net, d)
        self.conditioner: SiteConvNet | None = None
        if site_conv:
            everywhere = torch.arange(volume)
            self.conditioner = SiteConvNet(cast(nn.Sequential, net), self.shape, everywhere, corner_sites)

    @staticmethod
    def n_features(n: int) -> int:
        """Feature channels per plane of the frozen plaquettes for SU(``n``)."""
        return 1 if n == 2 else 2

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        key = prefix + "frozen"
        stored = state_dict.get(key)
        if stored is not None and stored.shape == self.frozen.shape[1:] and self.frozen.shape[0] == 1:
            state_dict[key] = stored.unsqueeze(0)  # a 2D state of the original layers: one plane
        for name in ("link_mask", "frozen"):
            stored, own = state_dict.get(prefix + name), getattr(self, name)
            if stored is not None and stored.shape == own.shape and not torch.equal(stored.to(own.device), own):
                error_msgs.append(
                    f"su coupling (mu = {self.mu}, nu = {self.nu}, offset = {self.offset}): {prefix}{name} "
                    "differs from this layer's mask; allowed: a state of the same layer"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _loops(self, x: torch.Tensor, plaq: torch.Tensor) -> torch.Tensor:
        """``W`` ``[B, E, N, N]``: the active loops starting with ``U_mu(x)`` at the evaluated sites
        ``x`` (``plaq``: all plaquettes ``[B, n_planes, L..., N, N]``)."""
        p = plaq[:, self.plane].flatten(1, self.dim).index_select(1, self.corner_sites)
        if self.mu < self.nu:
            return p
        u = x[:, self.nu].flatten(1, self.dim).index_select(1, self.corner_sites)  # U_nu(x - e_nu)
        return u.mH @ p @ u

    def _context(self, plaq: torch.Tensor) -> torch.Tensor:
        """Context ``[B, E, C]`` at the evaluated sites' corners from the frozen plaquettes only."""
        trace = torch.diagonal(plaq, dim1=-2, dim2=-1).sum(-1) / self.n  # [B, n_planes, L...]
        frozen = self.frozen.to(trace.real.dtype)
        parts = [trace.real * frozen] + ([trace.imag * frozen] if self.n == 3 else [])
        features = torch.stack(parts, dim=2).flatten(1, 2)  # channels (plane, part)
        if self.conditioner is not None:
            site_major = features.flatten(2).permute(1, 2, 0).contiguous()  # [C_in, V, B]
            return self.conditioner(cast(nn.Sequential, self.net), site_major).permute(2, 1, 0)
        context = self.net(features)  # [B, C, L...]
        return context.flatten(2).index_select(2, self.corner_sites).movedim(1, -1)

    def _couple(self, x: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        plaq = plaquette_field(x, self.group)
        w = self._loops(x, plaq)
        context = self._context(plaq)  # frozen plaquettes: unchanged by the layer

        def phases(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.flow.inverse(theta, context) if reverse else self.flow(theta, context)

        new, log_det = self._map(w, phases)
        mu, d = self.mu, self.dim
        u = x[:, mu].flatten(1, d)
        moved = (new @ w.mH @ u.index_select(1, self.evaluated)).index_select(1, self.rows)
        # back onto the group: a link's rounding error enters the loops of the next layers and grows
        # ~20x per 12 layers (float32 links of an identity 96-layer flow left SU(2) by layer 60)
        moved = self.group.reunitarize(moved)
        updated = u.index_copy(1, self.sites, moved).view_as(x[:, mu])
        y = torch.stack([updated if k == mu else x[:, k] for k in range(d)], dim=1)
        # the sum over all sites with zeros at the others (the original 2D layers' arithmetic)
        total = log_det.new_zeros(u.shape[:2]).index_copy(1, self.sites, log_det.index_select(1, self.rows))
        return y, total.sum(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, log|det dy/dx|)`` against Haar: ``[B, d, L..., N, N]``, ``[B]``."""
        return self._couple(x, reverse=False)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``: the inverse of ``forward``."""
        return self._couple(y, reverse=True)


def _check_stack_shape(shape: tuple[int, ...], who: str) -> None:
    if len(shape) < 2:
        raise ValueError(f"{who}: lattice shape {tuple(shape)}; allowed: two or more extents")
    for k, extent in enumerate(shape):
        if extent % 4 or extent < 4:
            raise ValueError(f"{who}: L_{k} = {extent}; allowed: multiples of 4 (every direction is nu of some layer)")


def su_coupling_stack(
    shape: tuple[int, ...], n: int, layers: int, hidden: int = 16, bins: int = 8
) -> list[SUEquivariantCoupling]:
    """``layers`` couplings on a lattice of ``d = len(shape) >= 2`` extents, all multiples of 4,
    cycling over ``(mu, nu) in su_layer_cycle(d)`` (fastest) and ``offset in {0, 1, 2, 3}`` (module
    docstring: a full cycle is ``4 d (d - 1)`` layers), each with a one-hidden-layer periodic
    convolution of the frozen plaquettes (4 context channels)."""
    shape = tuple(int(s) for s in shape)
    _check_stack_shape(shape, "su_coupling_stack")
    d = len(shape)
    pairs = su_layer_cycle(d)
    out = []
    c_in, context = len(planes(d)) * SUEquivariantCoupling.n_features(n), 4
    for i in range(layers):
        (mu, nu), offset = pairs[i % len(pairs)], (i // len(pairs)) % 4
        net = conv_net(d, c_in, context, [hidden], kernel=3, final="tanh")
        flow = (
            SU2PhaseFlow(bins=bins, context_dim=context)
            if n == 2
            else SU3PhaseFlow(layers=2, bins=bins, context_dim=context)
        )
        out.append(SUEquivariantCoupling(shape, n, mu, offset, net, flow, nu=nu))
    return out


def su_flow(shape: tuple[int, ...], n: int, n_layers: int = 16, hidden: int = 16, bins: int = 8) -> FlowModel:
    """Haar prior on SU(``n``) links ``[B, d, L..., n, n]`` (``d = len(shape) >= 2``, extents
    multiples of 4) and ``n_layers`` couplings (``su_coupling_stack``), in float64 (cast by the
    caller for another precision)."""
    if n_layers < 1:
        raise ValueError(f"su_flow: n_layers = {n_layers}; allowed: >= 1")
    shape = tuple(int(x) for x in shape)
    _check_stack_shape(shape, "su_flow")
    return cast_precision(
        FlowModel(HaarPrior((len(shape), *shape, n, n)), su_coupling_stack(shape, n, n_layers, hidden, bins)),
        "float64",
    )
