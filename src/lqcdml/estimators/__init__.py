"""Cheaper measurements without bias: bias-corrected ML estimators and neural control variates.

Results are ``pyerrors.Obs``; ``EnsembleIndex`` places every measurement in Monte Carlo time.
"""

from .bias_corrected import (
    CrossFit,
    PowerTuned,
    central_value_check,
    cross_fit,
    full_estimate,
    labelled_estimate,
    p1,
    p2,
    power_tuned,
    train_on_split,
)
from .control_variates import (
    ControlVariateEstimate,
    ControlVariateTraining,
    control_variate_estimate,
    control_variate_terms,
    exact_divergence,
    hutchinson_divergence,
    schwinger_dyson_term,
    train_control_variate,
)
from .ensemble import EnsembleIndex
from .regressors import REGRESSORS, Regressor, TorchMLPRegressor, make_regressor
from .splits import LabelSplit, cross_fit_folds, strided_split, strided_subset

__all__ = [
    "ControlVariateEstimate",
    "ControlVariateTraining",
    "control_variate_estimate",
    "control_variate_terms",
    "exact_divergence",
    "hutchinson_divergence",
    "schwinger_dyson_term",
    "train_control_variate",
    "CrossFit",
    "EnsembleIndex",
    "LabelSplit",
    "PowerTuned",
    "REGRESSORS",
    "Regressor",
    "TorchMLPRegressor",
    "central_value_check",
    "cross_fit",
    "cross_fit_folds",
    "full_estimate",
    "labelled_estimate",
    "make_regressor",
    "p1",
    "p2",
    "power_tuned",
    "strided_split",
    "strided_subset",
    "train_on_split",
]
