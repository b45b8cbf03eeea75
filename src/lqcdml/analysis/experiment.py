"""What the summary reads of an experiment's config, as plain data.

The caller (``driver.analyze``) makes an ``ExperimentView`` from the resolved config, so the
analysis does not depend on the config's types. The questions the summary asks of a sampler
are each one small function below, to become declared attributes of the sampler kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EnsembleView", "ExperimentView", "is_hmc", "is_network_free_slhmc"]


@dataclass(frozen=True)
class EnsembleView:
    """One ensemble: its resolved ``theory`` section, sampler name and options, model kind,
    chains per job and Markov steps per stored configuration; ``needs_model``: its chain needs
    a trained model; ``chain_hash`` (of the chain definition, without a model) and ``seeds``:
    its provenance record's."""

    theory: dict[str, Any]
    sampler: str
    sampler_options: dict[str, Any] = field(default_factory=dict)
    model_kind: str = ""
    needs_model: bool = False
    n_chains: int = 1
    save_every: int = 1
    chain_hash: str = ""
    seeds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentView:
    """An experiment: its name, device, dtype and ensembles by name."""

    name: str
    ensembles: dict[str, EnsembleView]
    device: str = "cpu"
    dtype: str = "float64"

    def theories(self) -> dict[str, dict[str, Any]]:
        """Each ensemble's resolved theory (exact values and references depend on it)."""
        return {name: e.theory for name, e in self.ensembles.items()}


def is_hmc(ens: EnsembleView) -> bool:
    """Plain HMC: the sampler other samplers of the same theory are compared with."""
    # kind question: becomes a declared attribute of the sampler kind
    return ens.sampler == "hmc"


def is_network_free_slhmc(ens: EnsembleView) -> bool:
    """Self-learning HMC without a network (its effective action is the thin-link one)."""
    # kind question: becomes a declared attribute of the sampler kind
    return ens.sampler == "slhmc_thin"
