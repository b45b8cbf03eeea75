"""Regressors from cheap features to an expensive observable: ridge, gradient-boosted trees, MLP.

All follow scikit-learn's protocol (``fit(X, y) -> self``, ``predict(X) -> [n]``) with
``X`` of shape ``[n, n_features]``; features are standardised inside each model, so the
caller passes raw observables. ``make_regressor(name, seed)`` builds a fresh, unfitted one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

__all__ = ["Regressor", "TorchMLPRegressor", "make_regressor", "REGRESSORS"]


class Regressor(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> Regressor: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class TorchMLPRegressor:
    """A small fully connected network (tanh), full-batch Adam on the mean squared error.

    Inputs and target are standardised on the training data; ``weight_decay`` is an L2
    penalty. Deterministic for a given ``seed`` (CPU).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (16, 16),
        steps: int = 2000,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ):
        self.hidden, self.steps, self.lr, self.weight_decay, self.seed = tuple(hidden), steps, lr, weight_decay, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchMLPRegressor:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self._xm, self._xs = x.mean(axis=0), x.std(axis=0) + 1e-300
        self._ym, self._ys = float(y.mean()), float(y.std()) + 1e-300
        gen = torch.Generator().manual_seed(self.seed)
        widths = (x.shape[1], *self.hidden, 1)
        layers: list[torch.nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            lin = torch.nn.Linear(a, b, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64) / np.sqrt(a))
                lin.bias.zero_()
            layers += [lin, torch.nn.Tanh()]
        self._net = torch.nn.Sequential(*layers[:-1])
        xt = torch.from_numpy((x - self._xm) / self._xs)
        yt = torch.from_numpy((y - self._ym) / self._ys)
        opt = torch.optim.Adam(self._net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.steps):
            opt.zero_grad()
            loss = (self._net(xt)[:, 0] - yt).square().mean()
            loss.backward()
            opt.step()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy((np.asarray(x, dtype=np.float64) - self._xm) / self._xs)
        with torch.no_grad():
            return self._net(xt)[:, 0].numpy() * self._ys + self._ym


REGRESSORS = ("linear", "ridge", "gbt", "mlp")


def make_regressor(name: str, seed: int = 0, alpha: float = 1.0) -> Regressor:
    """A fresh regressor: ``linear`` (least squares), ``ridge`` (L2 ``alpha``), ``gbt``, ``mlp``."""
    # scikit-learn is imported here, not with the package: configs validate without it
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "linear":
        return make_pipeline(StandardScaler(), LinearRegression())
    if name == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=alpha))
    if name == "gbt":
        return GradientBoostingRegressor(
            n_estimators=100, max_depth=2, learning_rate=0.1, subsample=0.8, random_state=seed
        )
    if name == "mlp":
        return TorchMLPRegressor(seed=seed)
    raise ValueError(f"estimator.regressor = {name!r}; allowed: {', '.join(REGRESSORS)}")
