"""Monotone rational-quadratic splines of [0, 1] (``nn.rq_spline``): end points fixed, the
identity at zero parameters, monotone, the inverse, and the log-derivative against differences."""

from __future__ import annotations

import torch

from lqcdml.nn.rq_spline import n_spline_params, rq_spline, rq_spline_inverse

BINS = 8


def _params(seed: int, scale: float = 2.0, batch: tuple[int, ...] = ()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn((*batch, n_spline_params(BINS)), generator=g, dtype=torch.float64)


def test_ends_identity_and_monotone():
    params = _params(0)
    ends, _ = rq_spline(torch.tensor([0.0, 1.0], dtype=torch.float64), params, BINS)
    assert ends[0] == 0 and abs(ends[1] - 1) < 1e-15
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)
    assert torch.all(torch.diff(rq_spline(x, params, BINS)[0]) > 0)
    y, log_d = rq_spline(x, torch.zeros(n_spline_params(BINS), dtype=torch.float64), BINS)
    assert (y - x).abs().max() < 1e-15 and log_d.abs().max() < 1e-15


def test_inverse_and_log_derivative():
    params = _params(1, batch=(5000,))  # one spline per point
    x = torch.rand(5000, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.98 + 0.01
    y, log_d = rq_spline(x, params, BINS)
    back, log_back = rq_spline_inverse(y, params, BINS)
    # exact in y; in x up to the conditioning 1 / (dy/dx) of the steepest-flattest bins
    assert (rq_spline(back, params, BINS)[0] - y).abs().max() < 1e-14
    assert (back - x).abs().max() < 1e-10 and (log_d + log_back).abs().max() < 1e-8
    h = 1e-7
    numeric = torch.log((rq_spline(x + h, params, BINS)[0] - rq_spline(x - h, params, BINS)[0]) / (2 * h))
    # central differences are O(h) wrong where they straddle a knot (the second derivative jumps)
    error = (numeric - log_d).abs()
    assert error.median() < 1e-8 and error.max() < 1e-3
