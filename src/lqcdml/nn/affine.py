"""Affine coupling layers with checkerboard masks for real scalar fields.

Fields ``[B, L_0, ..., L_{d-1}]``. A layer with mask ``m`` (1 on frozen sites) maps
``y = m x + (1 - m) (x e^{s(m x)} + t(m x))``, where ``(s, t)`` come from a periodic
convolutional network of the frozen sites; ``log|det dy/dx| = sum_{active} s``
(Dinh et al., arXiv:1605.08803; Albergo et al., arXiv:1904.12072 for lattice fields).

When the network is a ``conv_net`` (the usual case) a layer evaluates it with
``SiteConvNet`` (``site_conv``): from the frozen sites to the active sites only, no masks,
no padding copies, each convolution one matrix product of gathered neighbours, and the
whole coupling (conditioner, scale and shift, log-Jacobian) one autograd node with a
written-out backward pass. ``CheckerboardFlow`` keeps a stack of such layers on the two
checkerboard colours in the site-major layout ``[N/2, B]`` from the first layer to the
last. The maps, log-Jacobians and parameters (``state_dict`` keys and shapes) are those of
the masked formulation, which ``fast=False`` keeps; it alone has second derivatives (the
fast path raises on ``create_graph=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from ..lattice import checkerboard
from .conv import PeriodicConv, conv_net
from .flow import FlowModel, NormalPrior
from .prior import Prior
from .site_conv import SiteConvNet, site_conv_supported
from .transform import InvertibleLayer

__all__ = ["AffineCoupling", "CheckerboardFlow", "checkerboard_masks", "phi4_flow"]


def checkerboard_masks(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Even and odd site masks as float tensors ``[L...]``."""
    even = checkerboard(shape, 0).to(torch.get_default_dtype())
    return even, 1 - even


def _load_hook(module: AffineCoupling, incompatible_keys) -> None:
    module._build_site_tables()


class _SiteCoupling(torch.autograd.Function):
    """One coupling on site lists as one autograd node (first derivatives only):
    ``(tables, reverse, x_frozen [N_f, B], x_active [N_a, B], *conv parameters) -> (y_active, log_det)``.

    Forward map ``y = x e^s + t``, ``log_det = sum s``; reverse ``y = (x - t) e^{-s}``, ``-sum s``.
    """

    @staticmethod
    def forward(
        ctx,
        tables: SiteConvNet,
        reverse: bool,
        x_frozen: torch.Tensor,
        x_active: torch.Tensor,
        *params: torch.Tensor | None,
    ):
        out, state = tables.run(x_frozen.unsqueeze(0), params)
        s, t = out[0], out[1]
        if reverse:
            scale = torch.exp(-s)
            y = (x_active - t).mul_(scale)
            log_det = -s.sum(0)
        else:
            scale = torch.exp(s)
            y = torch.addcmul(t, x_active, scale)
            log_det = s.sum(0)
        ctx.tables, ctx.reverse, ctx.state = tables, reverse, state
        ctx.save_for_backward(y if reverse else x_active, scale, *params)
        return y, log_det

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, grad_log_det: torch.Tensor):
        if torch.is_grad_enabled():  # create_graph=True: refuse rather than drop the second derivative
            raise RuntimeError(
                "affine coupling on site lists: first derivatives only (create_graph=True); "
                "use the masked formulation (fast=False) for higher ones"
            )
        kept, scale, *params = ctx.saved_tensors
        grad_out = torch.empty((2, *grad_y.shape), dtype=grad_y.dtype, device=grad_y.device)
        grad_x_active = grad_y * scale
        if ctx.reverse:  # kept = y = (x - t) e^{-s}
            torch.neg(grad_x_active, out=grad_out[1])
            torch.mul(grad_y, kept, out=grad_out[0]).neg_().sub_(grad_log_det)
        else:  # kept = x
            grad_out[1].copy_(grad_y)
            torch.mul(grad_x_active, kept, out=grad_out[0]).add_(grad_log_det)
        needs = ctx.needs_input_grad
        grad_x, grads = ctx.tables.run_backward(ctx.state, params, grad_out, needs[2], needs[4:])
        return (None, None, None if grad_x is None else grad_x.squeeze(0), grad_x_active, *grads)


class AffineCoupling(InvertibleLayer):
    """One affine coupling: sites with ``frozen = 1`` condition the others.

    ``net`` maps ``[B, 1, L...]`` (the frozen sites, zero elsewhere) to ``[B, 2, L...]``
    (``s, t``). ``fast``: evaluate a ``conv_net`` on site lists (``None``: whenever the
    network and a 0/1 mask allow it; ``True``: required; ``False``: the plain masked
    formulation). ``parity`` is 0 or 1 when the frozen sites are the even or odd
    checkerboard colour and the fast path is on, else ``None``.
    """

    # buffers (register_buffer): declared for the type checker
    frozen: torch.Tensor
    frozen_sites: torch.Tensor
    active_sites: torch.Tensor

    def __init__(self, frozen: torch.Tensor, net: nn.Module, fast: bool | None = None) -> None:
        super().__init__()
        self.register_buffer("frozen", frozen.clone())
        self.net = net
        self.fast = fast
        self.conditioner: SiteConvNet | None = None
        self.parity: int | None = None
        self._build_site_tables()
        self.register_load_state_dict_post_hook(_load_hook)

    def _build_site_tables(self) -> None:
        """Site lists and convolution tables from the mask (again after a ``load_state_dict``)."""
        mask = self.frozen.detach()
        flat = mask.reshape(-1)
        frozen_sites = torch.nonzero(flat == 1).flatten()
        active_sites = torch.nonzero(flat == 0).flatten()
        reason = None
        if len(frozen_sites) + len(active_sites) != flat.numel():
            reason = "the mask is not 0/1"
        elif len(frozen_sites) == 0 or len(active_sites) == 0:
            reason = "the mask freezes no site or all sites"
        elif not site_conv_supported(self.net, mask.ndim):
            reason = "the network is not a conv_net of PeriodicConv layers with supported activations"
        else:
            # site_conv_supported: the network is a conv_net (an nn.Sequential)
            convs = [m for m in cast(nn.Sequential, self.net) if isinstance(m, PeriodicConv)]
            if convs[0].c_in != 1 or convs[-1].c_out != 2:
                reason = "the network does not map 1 channel to 2"
        if self.fast and reason is not None:
            raise ValueError(f"affine coupling: fast = True, but {reason}")
        self.parity = None
        if reason is not None or self.fast is False:
            self.conditioner = None
            return
        # supported (reason is None): the network is a conv_net (an nn.Sequential)
        self.conditioner = SiteConvNet(cast(nn.Sequential, self.net), tuple(mask.shape), frozen_sites, active_sites)
        self.register_buffer("frozen_sites", frozen_sites, persistent=False)
        self.register_buffer("active_sites", active_sites, persistent=False)
        if all(extent % 2 == 0 for extent in mask.shape):
            for parity in (0, 1):
                if torch.equal(
                    frozen_sites.cpu(), torch.nonzero(checkerboard(mask.shape, parity).reshape(-1)).flatten()
                ):
                    self.parity = parity

    def _scale_shift(self, x_frozen: torch.Tensor):
        out = self.net(x_frozen.unsqueeze(1))
        active = 1 - self.frozen
        return out[:, 0] * active, out[:, 1] * active

    def couple(self, x_frozen: torch.Tensor, x_active: torch.Tensor, reverse: bool = False):
        """The map on site lists (fast path): ``x_frozen [N_f, B]``, ``x_active [N_a, B]`` (sites in
        increasing flat index) to ``(y_active [N_a, B], log|det| [B])``; ``reverse``: the inverse map."""
        net = cast(nn.Sequential, self.net)  # a conditioner exists only for a conv_net (nn.Sequential)
        return _SiteCoupling.apply(self.conditioner, reverse, x_frozen, x_active, *SiteConvNet.parameters_of(net))

    def _map_sites(self, x: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        sites = x.reshape(x.shape[0], -1).t()
        y_active, log_det = self.couple(
            sites.index_select(0, self.frozen_sites), sites.index_select(0, self.active_sites), reverse
        )
        return sites.index_copy(0, self.active_sites, y_active).t().reshape(x.shape), log_det

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conditioner is not None:
            return self._map_sites(x, False)
        x_frozen = x * self.frozen
        s, t = self._scale_shift(x_frozen)
        y = x_frozen + (1 - self.frozen) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conditioner is not None:
            return self._map_sites(y, True)
        y_frozen = y * self.frozen
        s, t = self._scale_shift(y_frozen)
        x = y_frozen + (1 - self.frozen) * (y - t) * torch.exp(-s)
        return x, -s.flatten(1).sum(1)


class CheckerboardFlow(FlowModel):
    """A ``FlowModel`` whose layers are affine couplings on checkerboard colours.

    When every layer has a ``parity`` the field stays in the site-major layout (even and
    odd sites as two ``[N/2, B]`` halves, increasing flat index) from the first layer to
    the last; otherwise the layers run one by one as in ``FlowModel``. Same maps and
    ``state_dict`` as a ``FlowModel`` of the same layers.
    """

    # buffers (register_buffer): declared for the type checker
    order: torch.Tensor
    inverse: torch.Tensor

    def __init__(self, prior: Prior, layers: Sequence[InvertibleLayer], shape: tuple[int, ...]) -> None:
        super().__init__(prior, layers)
        even = checkerboard(tuple(shape), 0).reshape(-1)
        order = torch.cat([torch.nonzero(even).flatten(), torch.nonzero(~even).flatten()])
        self.n_half = math.prod(shape) // 2  # sites of one colour (not `half`: nn.Module.half)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    def _parities(self) -> list[int] | None:
        parities = [layer.parity if isinstance(layer, AffineCoupling) else None for layer in self.layers]
        return None if None in parities else parities  # type: ignore[return-value]

    def _run(self, x: torch.Tensor, parities: list[int], layers, reverse: bool):
        sites = x.reshape(x.shape[0], -1).t().index_select(0, self.order)
        halves = [sites[: self.n_half], sites[self.n_half :]]
        log_det = None
        for layer, p in zip(layers, parities):
            halves[1 - p], ld = layer.couple(halves[p], halves[1 - p], reverse)
            log_det = ld if log_det is None else log_det + ld
        out = torch.cat(halves).index_select(0, self.inverse).t().reshape(x.shape)
        return out, log_det

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)``."""
        parities = self._parities()
        if parities is None or not parities:
            return super().forward(z)
        return self._run(z, parities, self.layers, False)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)``."""
        parities = self._parities()
        if parities is None or not parities:
            return super().reverse(x)
        return self._run(x, parities[::-1], list(self.layers)[::-1], True)


def phi4_flow(
    shape: tuple[int, ...],
    n_layers: int = 16,
    hidden: tuple[int, ...] = (8, 8),
    kernel: int = 3,
    activation: str = "leaky_relu",
    prior_scale: float = 1.0,
    fast: bool | None = None,
) -> CheckerboardFlow:
    """Normal prior (width ``prior_scale``) and ``n_layers`` affine couplings with alternating checkerboards.

    The conditioner is ``Conv(1 -> h_1) - act - ... - Conv(h_k -> 2) - tanh`` with
    periodic padding (the architecture of the flow tutorial, arXiv:2101.08176).
    ``fast=False``: the plain masked couplings (same maps and parameters).
    """
    if n_layers < 1:
        raise ValueError(f"phi4_flow: n_layers = {n_layers}; allowed: >= 1")
    even, odd = checkerboard_masks(tuple(shape))
    dim = len(shape)
    layers = [
        AffineCoupling(
            even if i % 2 == 0 else odd, conv_net(dim, 1, 2, list(hidden), kernel, activation, "tanh"), fast=fast
        )
        for i in range(n_layers)
    ]
    return CheckerboardFlow(NormalPrior(tuple(shape), prior_scale), layers, tuple(shape))
