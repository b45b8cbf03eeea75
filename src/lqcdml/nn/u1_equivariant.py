"""Gauge-equivariant coupling layers for 2D U(1) lattice gauge theory.

The method of Kanwar et al., arXiv:2003.06413: a coupling layer transforms a set of
plaquettes by an invertible map of the circle and changes one link per transformed
plaquette so that the plaquette takes its new value.

Conventions
-----------
Links are angles ``theta`` of shape ``[B, 2, L_0, L_1]``, direction ``mu`` on axis 1.
The plaquette is that of ``theories.gauge.plaquette_field``,

    ``P(x) = theta_0(x) + theta_1(x + 0) - theta_0(x + 1) - theta_1(x)``,

so a link ``theta_mu(x)`` lies in two plaquettes: with sign ``+1`` in ``P(x - a_mu)``
and with sign ``-1`` in ``P(x - b_mu)``, where, with unit vectors ``e_0, e_1``,
``a_0 = 0, b_0 = e_1`` and ``a_1 = e_0, b_1 = 0``: ``theta_0(x)`` enters ``P(x)`` with
``+`` and ``P(x - e_1)`` with ``-``; ``theta_1(x)`` enters ``P(x - e_0)`` with ``+`` and
``P(x)`` with ``-``. Plaquettes are labelled by their corner (the site of ``P(x)``).

A layer ``(mu, offset)``, ``nu = 1 - mu``, ``p = offset % 2``, updates the links

    ``theta_mu(x)`` with ``x_mu % 2 == p`` and ``x_nu % 4 == offset``.

Two updated links never share a plaquette, so every plaquette holds at most one of them:

* active: ``P(x - a_mu)``, where the updated link enters with sign ``+1``;
* passive: ``P(x - b_mu)``, the other plaquette of an updated link;
* frozen: all other plaquettes; they contain no updated link.

With ``A`` an active plaquette and ``h`` a circle map conditioned on the frozen plaquettes
only, the updated link becomes ``theta' = wrap(theta + h(A) - A)``, so that ``A' = h(A)``.
The Jacobian in the link variables is triangular with diagonal ``h'(A)`` on updated
links and ``1`` elsewhere: ``log|det| = sum_active log h'(A)``.

Plaquettes are gauge invariant, so the conditioner and ``h(A) - A`` are too; adding an
invariant shift to a link commutes with ``theta_mu(x) -> theta_mu(x) + alpha(x) -
alpha(x + mu)``: the layer is gauge equivariant and its log-Jacobian gauge invariant.

Across the 8 layers ``mu in {0, 1}``, ``offset in {0, 1, 2, 3}`` (``u1_flow``), the
active plaquettes at corner ``y`` are ``y_0 = y_1 (mod 2)`` for ``mu = 0`` and
``y_0 != y_1 (mod 2)`` for ``mu = 1``: each plaquette is active exactly once per cycle.
A layer needs ``L_mu`` even and ``L_nu`` a multiple of 4.

Circle map
----------
On ``u in [-pi, pi]``, ``g(u) = sum_k w_k 2 atan2(e^{s_k} sin(u/2), cos(u/2))`` is a
convex mixture (``w = softmax(logits)``) of non-compact projections: monotone increasing,
``g(+-pi) = +-pi``, ``g'(u) = sum_k w_k / (e^{-s_k} cos^2(u/2) + e^{s_k} sin^2(u/2))``.
With a rotation ``t``, ``h(P) = wrap(g(wrap(P - t)) + t)`` and ``h'(P) = g'(wrap(P - t))``.
The inverse of ``g`` is found by bisection, then one Newton step (which gives the
inverse its exact first derivatives for training). Angles are wrapped into ``[-pi, pi)``.

The conditioner is a periodic conv net ``[B, c, L_0, L_1] -> [B, 2 K + 2, L_0, L_1]``:
input ``(cos P, sin P)`` on frozen plaquettes, zero elsewhere, and with ``loop_context``
(``c = 4``) ``(cos C, sin C)`` at active corners, ``C = A + P_passive`` the 1 x 2 loop of an
active plaquette and its passive partner. The updated link lies inside that loop, so the
layer leaves ``C`` unchanged and conditioning on it keeps the Jacobian triangular; it lets
the map of ``A`` know what its partner will become (the target's conditional of ``A``
given ``C`` is a von Mises density of width set by ``2 beta |cos(C/2)|``). Output: ``K``
log-scales ``s_k``, ``K`` mixture logits and ``(a, b)`` with ``t = atan2(b, 1 + a)``.

Why local couplings struggle at large volume: a link update moves an active plaquette and
shifts its passive partner by the opposite amount, and ``sum_x P(x) = 0 (mod 2 pi)`` holds
throughout, so concentrating plaquettes means handing their uniform part on to others;
with a fixed number of layers a fraction of plaquettes stays poorly mapped and the reverse
KL grows like the volume (``u1_plaquette`` avoids this in 2D).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..lattice import U1, shift
from ..theories.gauge import plaquette_field
from .conv import PeriodicConv, conv_net
from .flow import FlowModel, UniformAnglePrior
from .transform import InvertibleLayer

__all__ = [
    "U1EquivariantCoupling",
    "circle_map",
    "check_links",
    "circle_map_inverse",
    "mixture_params",
    "projection_mixture",
    "projection_mixture_inverse",
    "u1_flow",
    "u1_link_masks",
    "zero_mixture_head",
]

_U1 = U1()


def wrap(theta: torch.Tensor) -> torch.Tensor:
    """Angles wrapped into ``[-pi, pi)``."""
    return torch.remainder(theta + math.pi, 2 * math.pi) - math.pi


def _half_angles(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos(u/2), sin(u/2))`` on ``[-pi, pi]``, ``[B, 1, L...]``.

    ``cos(u/2)`` as ``sin((pi - |u|)/2)``: exactly 0 at ``u = +-pi``, so that
    ``g(+-pi) = +-pi`` to rounding even for large ``|s|``.
    """
    u = u.unsqueeze(1)
    return torch.sin(0.5 * (math.pi - u.abs())), torch.sin(0.5 * u)


def projection_mixture(u: torch.Tensor, s: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g(u), g'(u))`` for ``u in [-pi, pi]``.

    ``u``: ``[B, L...]``; ``s`` (log-scales) and ``w`` (weights, summing to 1 on axis 1):
    ``[B, K, L...]``.
    """
    c, sn = _half_angles(u)
    scale = torch.exp(s)
    g = (w * 2 * torch.atan2(scale * sn, c)).sum(1)
    dg = (w / (c**2 / scale + scale * sn**2)).sum(1)
    return g, dg


def projection_mixture_inverse(
    v: torch.Tensor, s: torch.Tensor, w: torch.Tensor, n_iter: int | None = None
) -> torch.Tensor:
    """``u = g^{-1}(v)`` for ``v in [-pi, pi]``: bisection on ``[-pi, pi]``, then a Newton step.

    Shapes as in ``projection_mixture``. ``n_iter`` halvings (default: mantissa bits + 3,
    i.e. 55 in float64, 26 in float32) bring the bracket below the float resolution of
    ``pi``; the Newton step from the (detached) bisection result polishes it and makes the
    output differentiable in ``v``, ``s`` and ``w`` (implicit-function derivatives).
    """
    if n_iter is None:
        n_iter = round(-math.log2(torch.finfo(v.dtype).eps)) + 3
    with torch.no_grad():
        scale = torch.exp(s)
        lo = torch.full_like(v, -math.pi)
        hi = torch.full_like(v, math.pi)
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            c, sn = _half_angles(mid)
            below = (w * 2 * torch.atan2(scale * sn, c)).sum(1) < v  # g(mid) < v
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        u0 = 0.5 * (lo + hi)
    g, dg = projection_mixture(u0, s, w)
    return u0 - (g - v) / dg


def circle_map(p: torch.Tensor, s: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h(p), h'(p))`` with ``h(p) = wrap(g(wrap(p - t)) + t)``; ``p, t``: ``[B, L...]``."""
    g, dg = projection_mixture(wrap(p - t), s, w)
    return wrap(g + t), dg


def circle_map_inverse(
    q: torch.Tensor, s: torch.Tensor, w: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p, h'(p))`` with ``h(p) = q``, ``p`` in ``[-pi, pi)``."""
    u = projection_mixture_inverse(wrap(q - t), s, w)
    return wrap(u + t), projection_mixture(u, s, w)[1]


def u1_link_masks(
    shape: tuple[int, ...], mu: int, offset: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean masks ``[L_0, L_1]`` of layer ``(mu, offset)``: ``(links, active, passive, frozen)``.

    ``links``: sites ``x`` whose ``theta_mu(x)`` is updated; the others mark plaquettes by
    their corner. Raises ``ValueError`` unless ``L_mu`` is even and ``L_nu % 4 == 0``.
    """
    if mu not in (0, 1):
        raise ValueError(f"u1 coupling: mu = {mu!r}; allowed: 0 or 1")
    if offset not in (0, 1, 2, 3):
        raise ValueError(f"u1 coupling: offset = {offset!r}; allowed: 0, 1, 2, 3")
    if len(shape) != 2:
        raise ValueError(f"u1 coupling: lattice shape {tuple(shape)}; allowed: two extents (L_0, L_1)")
    nu = 1 - mu
    if shape[mu] % 2 or shape[mu] < 2:
        raise ValueError(
            f"u1 coupling (mu = {mu}): L_{mu} = {shape[mu]}; allowed: an even extent along the updated direction mu"
        )
    if shape[nu] % 4 or shape[nu] < 4:
        raise ValueError(f"u1 coupling (mu = {mu}): L_{nu} = {shape[nu]}; allowed: a multiple of 4 along nu = {nu}")
    x = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    links = (x[mu] % 2 == offset % 2) & (x[nu] % 4 == offset)
    # active(y) = links(y + a_mu), passive(y) = links(y + b_mu); see the module docstring
    active = shift(links, 0, first_axis=0) if mu == 1 else links
    passive = shift(links, 1, first_axis=0) if mu == 0 else links
    if (active & passive).any():  # impossible for the extents allowed above
        raise AssertionError("u1 coupling: an active plaquette is also passive")
    return links, active, passive, ~(active | passive)


class U1EquivariantCoupling(InvertibleLayer):
    """Gauge-equivariant coupling on links ``[B, 2, L_0, L_1]`` (angles); see the module docstring.

    ``net``: ``[B, 2, L_0, L_1] -> [B, 2 n_mix + 2, L_0, L_1]``; its outputs are read as
    ``n_mix`` log-scales, ``n_mix`` mixture logits, then ``(a, b)`` with ``t = atan2(b, 1 + a)``.
    """

    # buffers (register_buffer): declared for the type checker
    link_mask: torch.Tensor
    active: torch.Tensor
    passive: torch.Tensor
    frozen: torch.Tensor

    def __init__(
        self,
        shape: tuple[int, ...],
        mu: int,
        offset: int,
        net: nn.Module,
        n_mix: int,
        loop_context: bool = True,
    ) -> None:
        super().__init__()
        if n_mix < 1:
            raise ValueError(f"u1 coupling: n_mix = {n_mix}; allowed: >= 1")
        self.shape, self.mu, self.offset, self.n_mix = tuple(shape), mu, offset, n_mix
        self.loop_context = bool(loop_context)
        links, active, passive, frozen = u1_link_masks(self.shape, mu, offset)
        self.register_buffer("link_mask", links)
        self.register_buffer("active", active)
        self.register_buffer("passive", passive)
        self.register_buffer("frozen", frozen)
        self.net = net

    def _check(self, x: torch.Tensor) -> None:
        check_links(x, self.shape, "u1 coupling")

    def _params(self, plaq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s, w, t)`` from the frozen plaquettes of ``plaq`` ``[B, L_0, L_1]``."""
        frozen = self.frozen.to(plaq.dtype)
        context = [torch.cos(plaq) * frozen, torch.sin(plaq) * frozen]
        if self.loop_context:
            active = self.active.to(plaq.dtype)
            loop = self.loop_angle(plaq)
            context += [torch.cos(loop) * active, torch.sin(loop) * active]
        return mixture_params(self.net(torch.stack(context, dim=1)), self.n_mix, "u1 coupling")

    def loop_angle(self, plaq: torch.Tensor) -> torch.Tensor:
        """Angle of the 1 x 2 loop ``A + P`` of each active plaquette and its passive partner.

        At active corner ``y``: ``P(y) + P(y - e_1)`` (``mu = 0``) or ``P(y) + P(y + e_0)``
        (``mu = 1``); the updated link is interior to the loop, so the layer leaves it unchanged.
        Meaningful at active corners only.
        """
        partner = shift(plaq, 1, -1) if self.mu == 0 else shift(plaq, 0, 1)
        return plaq + partner

    def _update(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Add ``delta`` ``[B, L_0, L_1]`` of active plaquette ``x - a_mu`` to ``theta_mu(x)``."""
        if self.mu == 1:
            delta = shift(delta, 0, -1)
        mu = self.mu
        new = torch.where(self.link_mask, wrap(x[:, mu] + delta), x[:, mu])
        return torch.stack([new if d == mu else x[:, d] for d in range(2)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, log|det dy/dx|)``: ``[B, 2, L_0, L_1]``, ``[B]``."""
        self._check(x)
        plaq = plaquette_field(x, _U1)[:, 0]
        s, w, t = self._params(plaq)
        new, dh = circle_map(plaq, s, w, t)
        y = self._update(x, torch.where(self.active, new - plaq, 0.0))
        log_det = torch.log(torch.where(self.active, dh, 1.0)).flatten(1).sum(1)
        return y, log_det

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``: ``[B, 2, L_0, L_1]``, ``[B]``."""
        self._check(y)
        plaq = plaquette_field(y, _U1)[:, 0]
        s, w, t = self._params(plaq)  # frozen plaquettes are unchanged by the layer
        old, dh = circle_map_inverse(plaq, s, w, t)
        x = self._update(y, torch.where(self.active, old - plaq, 0.0))
        log_det = -torch.log(torch.where(self.active, dh, 1.0)).flatten(1).sum(1)
        return x, log_det


def check_links(x: torch.Tensor, shape: tuple[int, ...], who: str) -> None:
    """``ValueError`` unless ``x`` holds 2D U(1) links ``[B, 2, L_0, L_1]`` of ``shape``."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (2, *shape):
        raise ValueError(f"{who}: links of shape {tuple(x.shape)}; allowed: [B, 2, {shape[0]}, {shape[1]}]")


def mixture_params(out: torch.Tensor, n_mix: int, who: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Circle-map parameters ``(s, w, t)`` from conditioner output ``[B, 2 n_mix + 2, ...]``:
    ``n_mix`` log-scales, softmax weights of ``n_mix`` logits, and ``t = atan2(b, 1 + a)``
    from the last two channels ``(a, b)``."""
    k = n_mix
    if out.shape[1] != 2 * k + 2:
        raise ValueError(f"{who}: net gives {out.shape[1]} channels; allowed: 2 n_mix + 2 = {2 * k + 2}")
    s, w = out[:, :k], torch.softmax(out[:, k : 2 * k], dim=1)
    return s, w, torch.atan2(out[:, 2 * k + 1], 1 + out[:, 2 * k])


def zero_mixture_head(net: nn.Module, n_mix: int, spread: float = 0.5) -> None:
    """Initialise the last layer (convolution or linear) of a circle-map conditioner: zero
    weights, zero biases except the log-scales, whose biases are spread over ``[-spread, spread]``.

    Identical mixture components would receive identical gradients for ever, and the
    mixture would stay a single non-compact projection (a wrapped-Cauchy push-forward of
    the uniform density, reverse KL ~0.4 nats per plaquette against ``exp(6 cos P)``).
    Distinct log-scales separate under training (a 1D fit to ``exp(6 cos P)`` reaches
    ~5e-4 nats from a spread of 0.5, 1 or 2 alike); with the default 0.5 the untrained map
    stays within ~6 % of the identity in slope.
    """
    last = [m for m in net.modules() if isinstance(m, (PeriodicConv, nn.Linear))][-1]
    with torch.no_grad():
        for p in last.parameters():
            p.zero_()
        bias = last.conv.bias if isinstance(last, PeriodicConv) and last.native else last.bias
        if n_mix > 1:
            assert bias is not None  # a circle-map conditioner's last layer has biases
            bias[:n_mix] = torch.linspace(-spread, spread, n_mix)


def u1_flow(
    shape: tuple[int, ...],
    n_layers: int = 24,
    hidden: tuple[int, ...] = (8, 8),
    kernel: int = 3,
    n_mix: int = 6,
    activation: str = "leaky_relu",
    loop_context: bool = True,
) -> FlowModel:
    """Uniform (Haar) prior on ``[B, 2, L_0, L_1]`` and ``n_layers`` gauge-equivariant couplings.

    Layer ``i`` has ``mu = i % 2`` and ``offset = (i // 2) % 4`` (8 layers per cycle).
    Conditioner: ``Conv(c -> h_1) - act - ... - Conv(h_k -> 2 n_mix + 2)``, periodic, ``c = 4``
    with ``loop_context`` (frozen plaquettes and the active 1 x 2 loops), else 2; the last
    convolution starts as in ``zero_mixture_head``.
    """
    if n_layers < 1:
        raise ValueError(f"u1_flow: n_layers = {n_layers}; allowed: >= 1")
    shape = tuple(int(n) for n in shape)
    layers = []
    for i in range(n_layers):
        c_in = 4 if loop_context else 2
        net = conv_net(2, c_in, 2 * n_mix + 2, list(hidden), kernel, activation, final=None)
        zero_mixture_head(net, n_mix)
        layers.append(U1EquivariantCoupling(shape, i % 2, (i // 2) % 4, net, n_mix, loop_context))
    return FlowModel(UniformAnglePrior((2, *shape)), layers)
