"""Neural control variates from Schwinger-Dyson identities (docs/reference.md#neural-control-variates).

For a smooth vector field ``g`` on the configuration space and ``dS`` the gradient of the
action (``action.force``: ``dS/dphi_x`` for scalars, the Lie derivative ``dS/dtheta_l`` for
U(1) links),

    f = sum_i [ dg_i/dx_i - g_i dS/dx_i ]

has ``<f> = 0`` exactly (integration by parts; no boundary term on R^V with a confining
action, none on the compact group). ``O - f`` estimates ``<O>`` without bias, with a variance
that a trained ``g`` makes small. Training minimises ``mean (O - f - mu)^2`` over ``g``'s
weights and a trainable ``mu`` on configurations disjoint from those of the estimate.

Divergences: ``exact`` asks the field (``VectorField.forward_and_divergence``); ``exact_divergence``
is the autograd reference for any field (one backward pass per component, tiny lattices);
``hutchinson_divergence`` is the unbiased estimate ``E_v[v^T (dg/dx) v]``, Rademacher ``v``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..nn.control_variates import TrainableVectorField, VectorField
from .ensemble import EnsembleIndex, pe

__all__ = [
    "exact_divergence",
    "hutchinson_divergence",
    "schwinger_dyson_term",
    "control_variate_terms",
    "ControlVariateTraining",
    "train_control_variate",
    "ControlVariateEstimate",
    "control_variate_estimate",
]

Force = Callable[[torch.Tensor], torch.Tensor]


def _per_config(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def exact_divergence(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``sum_i dg_i/dx_i`` by autograd, one backward pass per component: ``[B]``."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        out = g(xr).reshape(x.shape[0], -1)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(out.shape[1]):
            (grad,) = torch.autograd.grad(out[:, i].sum(), xr, retain_graph=True)
            div = div + grad.reshape(x.shape[0], -1)[:, i]
    return div


def hutchinson_divergence(
    g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, generator: torch.Generator, n_probe: int = 1
) -> torch.Tensor:
    """Unbiased ``mean_v v^T (dg/dx) v`` over ``n_probe`` Rademacher vectors per configuration, ``[B]``.

    Differentiable in ``g``'s weights (for training on large lattices).
    """
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        out = g(xr)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_probe):
            v = (2.0 * (torch.rand(x.shape, generator=generator, dtype=x.dtype) < 0.5) - 1.0).to(x.device)
            (jv,) = torch.autograd.grad(out, xr, grad_outputs=v, create_graph=True, retain_graph=True)
            total = total + _per_config(jv * v)
    return total / n_probe


def schwinger_dyson_term(
    g: VectorField,
    force: Force,
    x: torch.Tensor,
    divergence: str = "exact",
    generator: torch.Generator | None = None,
    n_probe: int = 1,
) -> torch.Tensor:
    """``f = div g - sum g dS`` per configuration ``[B]``; ``divergence`` is ``exact`` or ``hutchinson``."""
    if divergence == "exact":
        gx, div = g.forward_and_divergence(x)
    elif divergence == "hutchinson":
        if generator is None:
            raise ValueError("schwinger_dyson_term: divergence = 'hutchinson' needs a torch.Generator")
        gx, div = g(x), hutchinson_divergence(g, x, generator, n_probe)
    else:
        raise ValueError(f"estimator.divergence = {divergence!r}; allowed: exact, hutchinson")
    return div - _per_config(gx * force(x))


def control_variate_terms(
    g: VectorField,
    force: Force,
    x: torch.Tensor,
    batch: int = 256,
    divergence: str = "exact",
    seed: int = 0,
    n_probe: int = 1,
) -> np.ndarray:
    """``f`` on every configuration of ``x`` ``[n, ...]``, in batches; a numpy array ``[n]``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, x.shape[0], batch):
        f = schwinger_dyson_term(g, force, x[i : i + batch], divergence, gen, n_probe)
        out.append(f.detach().cpu().numpy())
    return np.concatenate(out)


@dataclass
class ControlVariateTraining:
    """Loss per step, the trained ``mu`` and the training-set variance of ``O`` (for scale)."""

    loss: list[float] = field(default_factory=list)
    mu: float = 0.0
    var_o: float = 0.0


def train_control_variate(
    g: TrainableVectorField,
    force: Force,
    x: torch.Tensor,
    o: torch.Tensor,
    steps: int,
    lr: float = 1e-3,
    batch: int = 256,
    seed: int = 0,
    divergence: str = "exact",
    n_probe: int = 1,
    schedule: str = "constant",
) -> ControlVariateTraining:
    """Adam on ``mean (o - f - mu)^2`` over minibatches of the training set ``(x, o)``.

    ``x`` ``[n, ...]`` configurations, ``o`` ``[n]`` the observable on them; ``mu`` starts at
    ``mean(o)``. Minibatches are drawn by a generator seeded with ``seed``. ``schedule``:
    ``constant`` (the published set-up) or ``cosine`` (``lr`` decays to zero over ``steps``).
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"estimator.schedule = {schedule!r}; allowed: constant, cosine")
    gen = torch.Generator().manual_seed(seed)
    o = o.to(x.dtype)
    mu = torch.nn.Parameter(o.mean().detach().clone())
    opt = torch.optim.Adam([*g.parameters(), mu], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None
    hist = ControlVariateTraining(var_o=float(o.var()))
    for _ in range(steps):
        idx = torch.randperm(x.shape[0], generator=gen)[:batch]
        f = schwinger_dyson_term(g, force, x[idx], divergence, gen, n_probe)
        loss = (o[idx] - f - mu).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        hist.loss.append(float(loss.detach()))
    hist.mu = float(mu.detach())
    return hist


@dataclass(frozen=True)
class ControlVariateEstimate:
    """Plain ``<O>``, improved ``<O - f>``, the zero-mean ``<f>`` (a check) and the gains.

    ``variance_reduction = Var(O) / Var(O - f)`` per configuration; ``error_reduction`` the
    ratio of squared Gamma-method errors (includes the change of autocorrelation).
    """

    plain: pe.Obs
    improved: pe.Obs
    zero_mean: pe.Obs
    variance_reduction: float
    error_reduction: float


def control_variate_estimate(ens: EnsembleIndex, o: np.ndarray, f: np.ndarray) -> ControlVariateEstimate:
    """Estimates on an evaluation set disjoint from the training set (the caller's split)."""
    o, f = np.asarray(o, dtype=float), np.asarray(f, dtype=float)
    plain, improved, zero = ens.mean(o), ens.mean(o - f), ens.mean(f)
    for obs in (plain, improved, zero):
        obs.gamma_method()
    var_ratio = float(np.var(o, ddof=1) / np.var(o - f, ddof=1))
    err_ratio = float(plain.dvalue) ** 2 / float(improved.dvalue) ** 2
    return ControlVariateEstimate(plain, improved, zero, var_ratio, err_ratio)
