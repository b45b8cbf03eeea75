"""The estimate of an ensemble's ``estimator`` section: one function per estimator kind.

Each kind's function takes the ensemble's config section, the ``EstimatorSources`` it
reads and a ``Log`` for progress lines, and returns the JSON-ready result that ``lqcdml
estimate`` writes (every estimate beside the plain one, as ``value``/``error``/``tau_int``
from pyerrors' Gamma method). ``PIPELINES`` maps the kind names to them: the one place
that knows which kinds make an estimate.
"""

from __future__ import annotations

from collections.abc import Callable

from .pipeline_bias import run_bias_corrected
from .pipeline_cv import run_control_variate
from .pipeline_inputs import EnsembleConfig, EstimateInputError, EstimatorSources, Log

__all__ = ["Pipeline", "PIPELINES", "pipeline_for", "run_bias_corrected", "run_control_variate"]

#: (ensemble config, sources, log) -> the result
Pipeline = Callable[[EnsembleConfig, EstimatorSources, Log], dict]

#: estimator kind -> its estimate (the kinds not named here make none)
PIPELINES: dict[str, Pipeline] = {"bias_corrected": run_bias_corrected, "control_variate": run_control_variate}


def pipeline_for(kind: str, ensemble: str) -> Pipeline:
    """The estimate of ``estimator.kind = kind``; a one-line error for a kind that makes none."""
    if kind not in PIPELINES:
        raise EstimateInputError(
            f"ensembles.{ensemble}.estimator.kind = {kind!r}; allowed: {', '.join(PIPELINES)} (nothing to estimate)"
        )
    return PIPELINES[kind]
