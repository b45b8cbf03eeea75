"""Monotone rational-quadratic splines of ``[0, 1]`` onto itself (end points fixed).

``K`` bins with widths and heights from softmax (each at least ``min_bin``) and positive
knot derivatives from softplus (the two end knots' too: the map fixes 0 and 1 whatever they
are). In bin ``k`` with left knot ``(x_k, y_k)``, width ``w``, height ``h``, slope ``s = h / w``,
knot derivatives ``d_k``, ``d_{k+1}`` and ``xi = (x - x_k) / w`` (Gregory and Delbourgo's
rational quadratic, as used by neural spline flows, arXiv:1906.04032):

``y = y_k + h [s xi^2 + d_k xi (1 - xi)] / [s + (d_k + d_{k+1} - 2 s) xi (1 - xi)]``

``dy/dx = s^2 [d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2] / [s + (d_k + d_{k+1} - 2 s) xi (1 - xi)]^2``.

The inverse solves the quadratic in ``xi`` in the cancellation-free form. Parameters
``[..., 3K + 1]``: ``K`` width logits, ``K`` height logits, ``K + 1`` derivative pre-activations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["rq_spline", "rq_spline_inverse", "n_spline_params"]

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3


def n_spline_params(bins: int) -> int:
    """Parameters of one spline of ``bins`` bins."""
    return 3 * bins + 1


def _knots(params: torch.Tensor, bins: int) -> tuple[torch.Tensor, ...]:
    """Knot positions ``xs``, ``ys`` ``[..., K + 1]`` and derivatives ``d`` ``[..., K + 1]``."""
    w_logits, h_logits, d_pre = params[..., :bins], params[..., bins : 2 * bins], params[..., 2 * bins :]
    widths = MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(w_logits, -1)
    heights = MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(h_logits, -1)
    zero = torch.zeros_like(widths[..., :1])
    xs = torch.cat([zero, torch.cumsum(widths, -1)], -1)
    ys = torch.cat([zero, torch.cumsum(heights, -1)], -1)
    xs, ys = xs / xs[..., -1:], ys / ys[..., -1:]  # exactly 1 at the right end
    # softplus(0) + MIN_DERIVATIVE = ln 2 + ...: shift so that zero parameters give slope 1
    d = MIN_DERIVATIVE + F.softplus(d_pre + math.log(math.expm1(1 - MIN_DERIVATIVE)))
    return xs, ys, d


def _bin(knots: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Index ``k`` of the bin ``[knots_k, knots_{k+1})`` holding ``value`` (the last one holds 1)."""
    inner = knots[..., 1:-1].contiguous()
    return torch.searchsorted(inner, value.unsqueeze(-1).contiguous(), right=True).squeeze(-1)


def _take(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.gather(t, -1, k.unsqueeze(-1)).squeeze(-1)


def _bin_of(
    value: torch.Tensor, params: torch.Tensor, bins: int, by_y: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_k, y_k, w, h, s, d_k, d_{k+1})`` of the bin holding ``value`` (an ``x``, or a ``y``
    with ``by_y``)."""
    xs, ys, d = _knots(params.expand(*value.shape, params.shape[-1]), bins)
    k = _bin(ys if by_y else xs, value)
    x0, y0 = _take(xs, k), _take(ys, k)
    w, h = _take(xs, k + 1) - x0, _take(ys, k + 1) - y0
    return x0, y0, w, h, h / w, _take(d, k), _take(d, k + 1)


def rq_spline(x: torch.Tensor, params: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, log dy/dx)`` of ``x`` in ``[0, 1]`` (``params [..., 3K + 1]`` broadcast against ``x``)."""
    x0, y0, w, h, s, d0, d1 = _bin_of(x, params, bins, by_y=False)
    xi = ((x - x0) / w).clamp(0, 1)
    mix = xi * (1 - xi)
    denom = s + (d0 + d1 - 2 * s) * mix
    y = y0 + h * (s * xi * xi + d0 * mix) / denom
    dy = s * s * (d1 * xi * xi + 2 * s * mix + d0 * (1 - xi) ** 2) / (denom * denom)
    return y, torch.log(dy)


def rq_spline_inverse(y: torch.Tensor, params: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, log dx/dy)``: the inverse of ``rq_spline`` at ``y`` in ``[0, 1]``."""
    x0, y0, w, h, s, d0, d1 = _bin_of(y, params, bins, by_y=True)
    dy = y - y0
    curve = d0 + d1 - 2 * s
    a = h * (s - d0) + dy * curve
    b = h * d0 - dy * curve
    c = -s * dy
    xi = (2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))).clamp(0, 1)
    x = x0 + xi * w
    _, log_dy = rq_spline(x, params, bins)
    return x, -log_dy
