"""What the summary reads of an experiment's config, as plain data.

The caller (``driver.analyze``) makes an ``ExperimentView`` from the resolved config, so the
analysis does not depend on the config's types. What the summary asks of a sampler is what its
kind declares (``kinds.SamplerKind``: ``reference``, ``label``), copied into the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EnsembleView", "ExperimentView"]


@dataclass(frozen=True)
class EnsembleView:
    """One ensemble: its resolved ``theory`` section, sampler name and options, model kind,
    chains per job and Markov steps per stored configuration; ``needs_model``: its chain needs
    a trained model; ``chain_hash`` (of the chain definition, without a model) and ``seeds``:
    its provenance record's. ``reference``: its sampler is an exact baseline that every other
    sampler of the same theory is compared with (HMC); ``label``: the name of its effective
    action in tables and figures (empty: the model's kind)."""

    theory: dict[str, Any]
    sampler: str
    sampler_options: dict[str, Any] = field(default_factory=dict)
    model_kind: str = ""
    needs_model: bool = False
    n_chains: int = 1
    save_every: int = 1
    chain_hash: str = ""
    seeds: dict[str, int] = field(default_factory=dict)
    reference: bool = False
    label: str = ""

    @property
    def action_label(self) -> str:
        """The name of its effective action in tables and figures."""
        return self.label or self.model_kind


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
