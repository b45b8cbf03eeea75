"""A stack of periodic convolutions evaluated on lists of lattice sites, for small lattices.

``conv_net``'s ``PeriodicConv -> act -> ... -> PeriodicConv -> act`` computed as matrix
products of gathered neighbours, on tensors in the *site-major* layout ``[C, M, B]``
(channel, site of a site list, batch): the batch is the innermost axis, so that every
gather moves contiguous rows of ``B`` numbers and every convolution is one matrix
product. The first convolution reads only the sites of its input list (the others are
zero) and the last writes only the sites of its output list: for an affine coupling the
frozen and the active sites. The maps are those of the ``PeriodicConv`` modules whose
parameters are passed at call time (this module holds index tables only, so it adds no
``state_dict`` entries); the backward pass is written out (one autograd node for the
whole stack; first derivatives only: a backward with ``create_graph=True`` raises).

A convolution ``C -> O`` channels from site list ``S_in`` to ``S_out`` with offsets
``d_k`` (the row-major kernel index order of ``PeriodicConv``, both forms) is
``out[o, n] = b[o] + sum_{c,k} W[o, c, k] in[c, pos_in(S_out[n] + d_k)]`` (zero where the
neighbour is not in ``S_in``). It is evaluated either by gathering the input
(``[C K, M_out B]``, then ``W @ .``: cheap when ``C`` is small) or by multiplying first
(``[(k, o), C] @ in``, then a gather-and-sum over ``k``: cheap when ``O`` is small); the
input gradient likewise by gathering the output gradient or by multiplying first.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .conv import PeriodicConv, kernel_offsets

__all__ = ["SiteConvNet", "site_conv_supported"]

_ACTIVATION_KINDS: dict[type, str] = {
    nn.LeakyReLU: "leaky_relu",
    nn.ReLU: "leaky_relu",
    nn.Tanh: "tanh",
    nn.SiLU: "silu",
}


def _activation(module: nn.Module | None) -> tuple[str | None, float]:
    """``(kind, negative slope)`` of a supported activation module (``(None, 0)`` for none)."""
    if module is None:
        return None, 0.0
    kind = _ACTIVATION_KINDS.get(type(module))
    if kind is None:
        raise ValueError(
            f"site convolution: activation {type(module).__name__}; allowed: "
            + ", ".join(t.__name__ for t in _ACTIVATION_KINDS)
        )
    slope = float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
    if slope < 0:
        raise ValueError(f"site convolution: LeakyReLU negative_slope = {slope}; allowed: >= 0")
    return kind, slope


def _stages(net: nn.Module, dim: int) -> list[tuple[PeriodicConv, nn.Module | None]]:
    """``net`` as ``(convolution, activation after it or None)`` pairs; ``ValueError`` if it is not
    an alternation of ``PeriodicConv`` (in ``dim`` dimensions) and single supported activations."""
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"site convolution: network {type(net).__name__}; allowed: nn.Sequential")
    stages: list[tuple[PeriodicConv, nn.Module | None]] = []
    for module in net:
        if isinstance(module, PeriodicConv):
            if module.dim != dim:
                raise ValueError(f"site convolution: a {module.dim}D convolution on a {dim}D lattice")
            stages.append((module, None))
        elif stages and stages[-1][1] is None:
            _activation(module)
            stages[-1] = (stages[-1][0], module)
        else:
            raise ValueError(
                f"site convolution: {type(module).__name__} not after a convolution; "
                "allowed: PeriodicConv, each followed by at most one activation"
            )
    if not stages:
        raise ValueError("site convolution: the network has no convolution")
    return stages


def site_conv_supported(net: nn.Module, dim: int) -> bool:
    """Whether ``SiteConvNet`` can evaluate ``net`` (a ``conv_net`` of ``PeriodicConv`` layers)."""
    try:
        _stages(net, dim)
    except ValueError:
        return False
    return True


def _positions(
    coords: torch.Tensor, shape: tuple[int, ...], sites: torch.Tensor, targets: torch.Tensor, offsets: torch.Tensor
) -> tuple[torch.Tensor, bool]:
    """``pos[k, n]``: the position in ``sites`` of site ``targets[n] + offsets[k]`` (periodic),
    ``len(sites)`` where it is not in ``sites``; and whether that happens."""
    n_sites = coords.shape[0]
    where = torch.full((n_sites,), len(sites), dtype=torch.long)
    where[sites] = torch.arange(len(sites))
    extents = torch.tensor(shape)
    strides = torch.tensor([math.prod(shape[mu + 1 :]) for mu in range(len(shape))])
    neighbours = ((coords[targets][None] + offsets[:, None]) % extents * strides).sum(-1)
    pos = where[neighbours]
    return pos, bool((pos == len(sites)).any())


@dataclass(frozen=True)
class _Stage:
    """One convolution ``c_in -> c_out`` from ``m_in`` to ``m_out`` sites, and its activation.

    ``fwd_gather``: the forward pass gathers the input (else multiplies first);
    ``bwd_gather``: the input gradient gathers the output gradient (else multiplies first).
    ``fwd_pad`` / ``bwd_pad``: the gathered tensor needs a zero site appended.
    """

    c_in: int
    c_out: int
    taps: int
    m_in: int
    m_out: int
    native: bool
    fwd_gather: bool
    bwd_gather: bool
    fwd_pad: bool
    bwd_pad: bool
    act: str | None
    slope: float


_WORKSPACE = threading.local()


def _gather(x: torch.Tensor, index: torch.Tensor, rows: int) -> torch.Tensor:
    """``x [R, M, B] .index_select(1, index)`` as ``[rows, numel / rows]``, in a reused per-thread
    buffer (per device and dtype).

    For gathered tensors that the next matrix product consumes and then drops: fresh
    allocations of that size (megabytes) make the C allocator return memory to the system
    and fault it in again every step on CPU. Valid until the next ``_gather`` of the thread.
    Elsewhere (CUDA: a caching allocator already) a plain ``index_select``.
    """
    if x.device.type != "cpu":
        return x.index_select(1, index).view(rows, -1)
    numel = x.shape[0] * index.shape[0] * x.shape[2]
    buffers = _WORKSPACE.__dict__.setdefault("buffers", {})
    key = (x.device, x.dtype)
    buf = buffers.get(key)
    if buf is None or buf.numel() < numel:
        buf = buffers[key] = torch.empty(numel, dtype=x.dtype, device=x.device)
    out = buf[:numel].view(x.shape[0], index.shape[0], x.shape[2])
    return torch.index_select(x, 1, index, out=out).view(rows, -1)


def _activate(stage: _Stage, pre: torch.Tensor) -> torch.Tensor:
    if stage.act == "leaky_relu":
        return F.leaky_relu_(pre, stage.slope)
    if stage.act == "tanh":
        return pre.tanh_()
    if stage.act == "silu":
        return F.silu(pre)
    return pre


def _activation_backward(stage: _Stage, grad: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """``grad * act'``; ``kept`` is the output of the activation (its input for SiLU)."""
    if stage.act == "leaky_relu":  # the output has the sign of the input (slope >= 0)
        return torch.ops.aten.leaky_relu_backward(grad, kept, stage.slope, True)
    if stage.act == "tanh":
        return torch.ops.aten.tanh_backward(grad, kept)
    if stage.act == "silu":
        return torch.ops.aten.silu_backward(grad, kept)
    return grad


def _stage_forward(
    stage: _Stage, fwd_index: torch.Tensor, x: torch.Tensor, batch: int, weight: torch.Tensor, bias: torch.Tensor | None
):
    """``x [C, M_in B] -> (activated output [O, M_out B], the gathered input or None, kept)``."""
    c, o, k = stage.c_in, stage.c_out, stage.taps
    gathered = None
    if stage.fwd_gather:
        x3 = x.view(c, stage.m_in, batch)
        if stage.fwd_pad:
            x3 = F.pad(x3, (0, 0, 0, 1))
        if stage.bwd_gather:  # not needed after the product
            g = _gather(x3, fwd_index, c * k)
        else:
            g = gathered = x3.index_select(1, fwd_index).view(c * k, -1)  # rows (c, k)
        w = weight.view(o, c * k) if stage.native else weight.permute(1, 2, 0).reshape(o, c * k)
        out = torch.mm(w, g) if bias is None else torch.addmm(bias.unsqueeze(1), w, g)
    else:
        w = weight.view(o, c, k).permute(2, 0, 1).reshape(k * o, c) if stage.native else weight.view(k * o, c)
        products = torch.mm(w, x)  # rows (k, o)
        if stage.fwd_pad:
            products = F.pad(products.view(k * o, stage.m_in, batch), (0, 0, 0, 1))
        out = products.view(-1, batch).index_select(0, fwd_index).view(k, -1).sum(0).view(o, -1)
        if bias is not None:
            out += bias.unsqueeze(1)
    kept = out.clone() if stage.act == "silu" else out
    out = _activate(stage, out)
    return out, gathered, kept


def _stage_backward(
    stage: _Stage,
    bwd_index: torch.Tensor,
    g: torch.Tensor,
    batch: int,
    x: torch.Tensor,
    gathered: torch.Tensor | None,
    weight: torch.Tensor,
    kept: torch.Tensor,
    need_x: bool,
    need_w: bool,
    need_b: bool,
):
    """Gradients ``(x [C, M_in B], weight, bias)`` of one stage from that of its output ``[O, M_out B]``."""
    c, o, k = stage.c_in, stage.c_out, stage.taps
    g = _activation_backward(stage, g, kept)
    gx = gw = gb = None
    if need_b:
        gb = g.sum(1)
    if stage.bwd_gather:
        if need_x or need_w:
            g3 = g.view(o, stage.m_out, batch)
            if stage.bwd_pad:
                g3 = F.pad(g3, (0, 0, 0, 1))
            gg = _gather(g3, bwd_index, o * k)  # rows (o, k)
            if need_x:
                w = weight.view(o, c, k) if stage.native else weight.permute(1, 2, 0)
                gx = torch.mm(w.transpose(0, 1).reshape(c, o * k), gg)
            if need_w:  # dW[o, c, k] = sum_m x[c, m] g[o, pos_out(S_in[m] - d_k)]
                gw = torch.mm(gg, x.t()).view(o, k, c)
                gw = gw.transpose(1, 2).reshape(weight.shape) if stage.native else gw.permute(1, 0, 2).contiguous()
    else:
        if need_x:
            w = weight.view(o, c, k).permute(2, 1, 0) if stage.native else weight.permute(0, 2, 1)
            products = torch.mm(w.reshape(k * c, o), g)  # rows (k, c)
            if stage.bwd_pad:
                products = F.pad(products.view(k * c, stage.m_out, batch), (0, 0, 0, 1))
            gx = products.view(-1, batch).index_select(0, bwd_index).view(k, -1).sum(0).view(c, -1)
        if need_w:
            assert gathered is not None  # no bwd_gather implies fwd_gather: the forward kept it
            gw = torch.mm(g, gathered.t())
            gw = gw.view(weight.shape) if stage.native else gw.view(o, c, k).permute(2, 0, 1).contiguous()
    return gx, gw, gb


@dataclass
class SiteConvState:
    """What the backward pass of ``SiteConvNet.run`` needs: per stage its input, its gathered
    input (only where the weight gradient comes from it) and its kept activation tensor."""

    inputs: list[torch.Tensor]
    gathered: list[torch.Tensor | None]
    kept: list[torch.Tensor]


class _SiteConvFunction(torch.autograd.Function):
    """The whole stack as one autograd node: ``(net, x, w_0, b_0, w_1, b_1, ...) -> out``."""

    @staticmethod
    def forward(ctx, net: SiteConvNet, x: torch.Tensor, *params: torch.Tensor | None) -> torch.Tensor:
        out, state = net.run(x, params)
        ctx.net, ctx.state = net, state
        ctx.save_for_backward(*params)
        return out.clone()  # the output itself stays with the backward pass

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if torch.is_grad_enabled():  # create_graph=True: refuse rather than drop the second derivative
            raise RuntimeError(
                "site convolution on site lists: first derivatives only (create_graph=True); "
                "use the masked formulation (fast=False) for higher ones"
            )
        needs = ctx.needs_input_grad
        gx, grads = ctx.net.run_backward(ctx.state, ctx.saved_tensors, grad, needs[1], needs[2:])
        return (None, gx, *grads)


class SiteConvNet(nn.Module):
    """Index tables to evaluate a ``conv_net`` from the sites ``sites_in`` to ``sites_out``.

    ``forward(net, x)``: ``x [C_0, len(sites_in), B]`` (site-major; sites in the order of
    ``sites_in``, flat row-major site indices of a lattice ``shape``) to
    ``[C_last, len(sites_out), B]``, equal to ``net`` applied to the field that is ``x`` on
    ``sites_in`` and zero elsewhere, read at ``sites_out``. Hidden layers live on all sites.
    ``gather`` forces ``(forward gathers the input, input gradient gathers the output
    gradient)`` in every stage (for tests; the default picks per stage by channel counts).
    The tables are non-persistent buffers: they follow ``.to(device)`` and stay out of
    ``state_dict``.
    """

    def __init__(
        self,
        net: nn.Sequential,
        shape: tuple[int, ...],
        sites_in: torch.Tensor,
        sites_out: torch.Tensor,
        gather: tuple[bool, bool] | None = None,
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in shape)
        dim = len(shape)
        pairs = _stages(net, dim)
        if len(sites_in) == 0 or len(sites_out) == 0:
            raise ValueError("site convolution: an empty site list")
        device = sites_in.device
        n = math.prod(shape)
        coords = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij"), -1).reshape(n, dim)
        everywhere = torch.arange(n)
        sites_in, sites_out = sites_in.detach().cpu().long(), sites_out.detach().cpu().long()
        stages = []
        for i, (conv, act) in enumerate(pairs):
            s_in = sites_in if i == 0 else everywhere
            s_out = sites_out if i == len(pairs) - 1 else everywhere
            offsets = torch.tensor(kernel_offsets(dim, conv.kernel)).reshape(-1, dim)
            c_in, c_out, taps = conv.c_in, conv.c_out, offsets.shape[0]
            fwd_gather, bwd_gather = gather if gather is not None else (c_in <= c_out, c_out <= c_in)
            bwd_gather = bwd_gather or not fwd_gather  # the weight gradient needs one gathered tensor
            fwd_pos, fwd_pad = _positions(coords, shape, s_in, s_out, offsets)  # [K, m_out] into s_in
            bwd_pos, bwd_pad = _positions(coords, shape, s_out, s_in, -offsets)  # [K, m_in] into s_out
            m_in, m_out = len(s_in), len(s_out)
            if not fwd_gather:  # rows of the products [(k, o), m_in (+1)] for each (k, o, n)
                k_ = torch.arange(taps)[:, None, None]
                fwd_pos = (k_ * c_out + torch.arange(c_out)[None, :, None]) * (m_in + fwd_pad) + fwd_pos[:, None, :]
            if not bwd_gather:  # rows of the products [(k, c), m_out (+1)] for each (k, c, m)
                k_ = torch.arange(taps)[:, None, None]
                bwd_pos = (k_ * c_in + torch.arange(c_in)[None, :, None]) * (m_out + bwd_pad) + bwd_pos[:, None, :]
            kind, slope = _activation(act)
            stages.append(
                _Stage(
                    c_in, c_out, taps, m_in, m_out, conv.native, fwd_gather, bwd_gather, fwd_pad, bwd_pad, kind, slope
                )
            )
            self.register_buffer(f"fwd_{i}", fwd_pos.flatten().to(device), persistent=False)
            self.register_buffer(f"bwd_{i}", bwd_pos.flatten().to(device), persistent=False)
        self.stages: tuple[_Stage, ...] = tuple(stages)

    @staticmethod
    def parameters_of(net: nn.Sequential) -> list[torch.Tensor | None]:
        """``[w_0, b_0, w_1, b_1, ...]`` of the ``PeriodicConv`` layers of ``net`` (``None``: no bias)."""
        params: list[torch.Tensor | None] = []
        for module in net:
            if isinstance(module, PeriodicConv):
                params += [module.conv.weight, module.conv.bias] if module.native else [module.weight, module.bias]
        return params

    def run(self, x: torch.Tensor, params) -> tuple[torch.Tensor, SiteConvState]:
        """The stack without autograd: ``x [C_0, M_in, B]`` to the output ``[C_last, M_out, B]`` and
        the state for ``run_backward``. The output is kept for the backward pass: do not modify it
        in place before that."""
        batch = x.shape[-1]
        state = SiteConvState([], [], [])
        buffers = cast(dict[str, torch.Tensor], self._buffers)  # the tables: tensors, never None
        h = x.reshape(x.shape[0], -1).contiguous()
        for i, stage in enumerate(self.stages):
            state.inputs.append(h)
            h, g, kept = _stage_forward(stage, buffers[f"fwd_{i}"], h, batch, params[2 * i], params[2 * i + 1])
            state.gathered.append(g)
            state.kept.append(kept)
        return h.view(h.shape[0], -1, batch), state

    def run_backward(
        self, state: SiteConvState, params, grad: torch.Tensor, need_x: bool, need_params
    ) -> tuple[torch.Tensor | None, list[torch.Tensor | None]]:
        """``(d/dx [C_0, M_in, B] or None, [d/dw_0, d/db_0, ...])`` from the gradient
        ``grad [C_last, M_out, B]`` of the output of ``run``; ``need_params[j]``: whether
        parameter ``j`` needs its gradient."""
        batch = grad.shape[-1]
        grads: list[torch.Tensor | None] = [None] * (2 * len(self.stages))
        buffers = cast(dict[str, torch.Tensor], self._buffers)  # the tables: tensors, never None
        g = grad.reshape(grad.shape[0], -1).contiguous()
        for i in reversed(range(len(self.stages))):
            bias = params[2 * i + 1]
            g, grads[2 * i], grads[2 * i + 1] = _stage_backward(
                self.stages[i],
                buffers[f"bwd_{i}"],
                g,
                batch,
                state.inputs[i],
                state.gathered[i],
                params[2 * i],
                state.kept[i],
                i > 0 or need_x,
                need_params[2 * i],
                bias is not None and need_params[2 * i + 1],
            )
        return (None if g is None else g.view(g.shape[0], -1, batch)), grads

    def forward(self, net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        return _SiteConvFunction.apply(self, x, *self.parameters_of(net))
