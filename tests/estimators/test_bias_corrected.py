"""Bias-corrected ML estimators on synthetic autocorrelated chains with known means."""

from __future__ import annotations

import numpy as np
import pytest

from lqcdml.estimators import (
    EnsembleIndex,
    central_value_check,
    cross_fit,
    cross_fit_folds,
    full_estimate,
    make_regressor,
    p1,
    p2,
    power_tuned,
    strided_split,
    train_on_split,
)

RHO = 7.0 / 9.0  # AR(1) with tau_int = (1 + rho) / (2 (1 - rho)) = 4
TRUE_MEAN = 1.5


def ar1(rng: np.random.Generator, n: int, rho: float = RHO) -> np.ndarray:
    """Stationary AR(1) chain of unit variance."""
    x = np.empty(n)
    x[0] = rng.normal()
    noise = rng.normal(size=n) * np.sqrt(1 - rho * rho)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + noise[t]
    return x


def synthetic(rng: np.random.Generator, n_config: int, n_replica: int):
    """Feature x (cheap, noisy), target y = TRUE_MEAN + x_true + 0.3 x_true^2 - 0.3 + noise (mean TRUE_MEAN)."""
    x_true = np.concatenate([ar1(rng, n_config) for _ in range(n_replica)])
    y = (
        TRUE_MEAN
        + x_true
        + 0.3 * (x_true**2 - 1.0)
        + 0.2 * np.concatenate([ar1(rng, n_config) for _ in range(n_replica)])
    )
    x = x_true + 0.1 * rng.normal(size=len(x_true))
    return x, y


def biased(x: np.ndarray) -> np.ndarray:
    """A deliberately biased regressor: wrong slope and offset, no curvature."""
    return 0.7 * x + 0.9


def test_split_sizes_stride_and_seed():
    split = strided_split(1000, 0.1, 0.5, seed=3)
    assert split.sizes == {"N": 1000, "N_LB": 100, "N_TR": 50, "N_BC": 50, "N_UL": 900}
    assert np.all(np.diff(split.labelled) == 10)
    assert set(split.train) | set(split.bias_correction) == set(split.labelled)
    assert not set(split.train) & set(split.bias_correction)
    assert not set(split.labelled) & set(split.unlabelled)
    again = strided_split(1000, 0.1, 0.5, seed=3)
    assert np.array_equal(split.train, again.train)
    other = strided_split(1000, 0.1, 0.5, seed=4)
    assert not np.array_equal(split.labelled, other.labelled)


@pytest.mark.parametrize("key,r_lb,r_tr", [("r_lb", 0.0, 0.5), ("r_lb", 1.5, 0.5), ("r_tr", 0.5, 1.0)])
def test_split_rejects_bad_fractions(key, r_lb, r_tr):
    with pytest.raises(ValueError, match=key):
        strided_split(100, r_lb, r_tr, seed=0)


def test_subset_mean_is_the_plain_mean_over_replicas():
    rng = np.random.default_rng(0)
    ens = EnsembleIndex.grid("syn", 40, 3)
    v = rng.normal(size=len(ens))
    pos = np.arange(0, len(ens), 3)
    obs = ens.mean(v, pos)
    assert float(obs.value) == pytest.approx(v[pos].mean(), abs=1e-14)


def test_p1_with_an_exact_regressor_is_the_plain_mean_of_bias_correction_plus_unlabelled():
    rng = np.random.default_rng(1)
    x, y = synthetic(rng, 500, 2)
    ens = EnsembleIndex.grid("syn", 500, 2)
    split = strided_split(len(ens), 0.2, 0.5, seed=1)
    # f = y everywhere: p1 is the mean of y over UL, the correction vanishes
    est = p1(ens, y, y, split)
    assert float(est.value) == pytest.approx(y[split.unlabelled].mean(), abs=1e-13)
    # power-tuned lam -> 1 / (1 + N_BC/N_UL) for f = y (measured on the training set)
    pt = power_tuned(ens, y, y, split)
    assert pt.lam == pytest.approx(1.0 / (1.0 + len(split.bias_correction) / len(split.unlabelled)), rel=1e-12)
    assert float(pt.estimate.value) == pytest.approx(
        (1 - pt.lam) * y[split.bias_correction].mean() + pt.lam * y[split.unlabelled].mean(), abs=1e-13
    )


@pytest.mark.parametrize("n_config, n_replica, r_lb", [(1000, 2, 0.2), (120, 32, 0.02)])
def test_estimators_unbiased_and_errors_match_the_spread_over_independent_chains(n_config, n_replica, r_lb):
    """500 independent ensembles (2 chains x 1000 with 20 % labelled, or 32 chains x 120 as in
    paper_ama with 2 %: about one bias-correction value per chain, the sparse subsets pooled;
    tau_int = 4) with a deliberately biased regressor: each estimator's mean over ensembles
    equals the true mean (z < 4), and its average pyerrors error equals the spread of the
    estimates within 10 %."""
    n_rep = 500
    rng = np.random.default_rng(2026)
    ens = EnsembleIndex.grid("syn", n_config, n_replica)
    split = strided_split(len(ens), r_lb, 0.5, seed=7)
    values = {"p1": [], "p2": [], "power": [], "cross_fit": [], "full": []}
    errors = {k: [] for k in values}
    for _ in range(n_rep):
        x, y = synthetic(rng, n_config, n_replica)
        f = biased(x)  # a fixed, wrong regressor; the power-tuned weight is measured on the training set
        # cross-fitting trains its own (misspecified: linear in a quadratic target) regressors
        cf = cross_fit(ens, x[:, None], y, split, lambda k: make_regressor("linear"), folds=4).estimate
        for name, obs in (
            ("p1", p1(ens, y, f, split)),
            ("p2", p2(ens, y, f, split)),
            ("power", power_tuned(ens, y, f, split).estimate),
            ("cross_fit", cf),
            ("full", full_estimate(ens, y)),
        ):
            obs.gamma_method()
            values[name].append(float(obs.value))
            errors[name].append(float(obs.dvalue))
    for name in values:
        v = np.asarray(values[name])
        spread = v.std(ddof=1)
        z = (v.mean() - TRUE_MEAN) / (spread / np.sqrt(n_rep))
        assert abs(z) < 4.0, (name, v.mean(), z)
        ratio = np.mean(errors[name]) / spread
        # the plain mean over 32 short chains is pyerrors' per-replica Gamma method, which drops
        # each chain's offset from the global mean: 18 % low at 120 configurations and tau_int 4
        tolerance = 0.20 if (name == "full" and n_config < 500) else 0.10
        assert abs(ratio - 1.0) < tolerance, (name, ratio)
    # the biased regressor without correction would be far off: mean of f over UL
    assert abs(np.mean(biased(x)) - TRUE_MEAN) > 0.5


def test_cross_fit_folds_never_correct_with_their_own_training_data():
    labelled = np.arange(3, 300, 7)
    folds = cross_fit_folds(labelled, 5)
    corrected = np.concatenate([c for _, c in folds])
    assert np.array_equal(np.sort(corrected), labelled)  # every labelled entry corrects exactly once
    for train, correct in folds:
        assert not set(train) & set(correct)
        assert set(train) | set(correct) == set(labelled)


class Memorizer:
    """A regressor that returns y exactly on configurations it was fit on (and records them)."""

    seen: list[set[float]] = []

    def fit(self, x, y):
        self.table = dict(zip(np.asarray(x)[:, 0].tolist(), np.asarray(y).tolist()))
        Memorizer.seen.append(set(self.table))
        return self

    def predict(self, x):
        return np.array([self.table.get(v, 0.0) for v in np.asarray(x)[:, 0].tolist()])


def test_cross_fit_residuals_come_from_regressors_that_did_not_see_the_configuration():
    rng = np.random.default_rng(5)
    x, y = synthetic(rng, 400, 1)
    ens = EnsembleIndex.grid("syn", 400, 1)
    split = strided_split(len(ens), 0.25, 0.5, seed=2)
    Memorizer.seen = []
    cf = cross_fit(ens, x[:, None], y, split, lambda k: Memorizer(), folds=4)
    for k, corr in enumerate(cf.fold_correct):
        # a memorizer that had seen these would predict y exactly; it predicts 0 instead
        assert np.all(cf.predictions[k, corr] == 0.0)
        assert not Memorizer.seen[k] & set(x[corr].tolist())
        assert np.allclose(cf.predictions[k, cf.fold_train[k]], y[cf.fold_train[k]])


@pytest.mark.parametrize("name", ["linear", "ridge", "gbt", "mlp"])
def test_trained_regressors_reduce_the_error_and_stay_consistent(name):
    rng = np.random.default_rng(11)
    x, y = synthetic(rng, 2000, 2)
    ens = EnsembleIndex.grid("syn", 2000, 2)
    split = strided_split(len(ens), 0.02, 0.5, seed=3)  # 80 labelled, 40 train the regressor
    features = np.stack([x, x * x], axis=1)
    f = train_on_split(features, y, split, make_regressor(name, seed=0))
    est, full = p1(ens, y, f, split), full_estimate(ens, y)
    plain = ens.mean(y, split.labelled)
    for o in (est, full, plain):
        o.gamma_method()
    assert float(est.dvalue) < 0.7 * float(plain.dvalue)  # the unlabelled data helps
    assert abs(float(est.value) - float(full.value)) < 4 * float(est.dvalue)
    assert central_value_check(full, full) == 2


def test_the_config_knows_every_regressor():
    from lqcdml.estimators import REGRESSORS
    from lqcdml.kinds.estimators import REGRESSOR_NAMES

    assert REGRESSOR_NAMES == REGRESSORS
