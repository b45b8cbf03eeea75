"""The summary's last section: what reproduces its numbers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..provenance import git_commit, package_versions
from .experiment import ExperimentView

__all__ = ["provenance_lines"]


def provenance_lines(
    experiment: ExperimentView, manifests: list[dict], estimates: list[dict], config_path: Path | None = None
) -> list[str]:
    """Markdown: what reproduces these numbers. The resolved config (path and SHA-256), each
    ensemble's chain hash and seeds, device and dtype, and the git commits and package versions
    of the jobs that made the inputs (from their manifests) and of this analysis."""
    lines = ["## Provenance", ""]
    if config_path is not None:
        digest = hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
        lines.append(
            f"- resolved config: `{config_path}` (SHA-256 {digest[:16]}); device {experiment.device}, "
            f"dtype {experiment.dtype}"
        )
    for name in sorted(experiment.ensembles):
        ens = experiment.ensembles[name]
        seeds = ", ".join(f"{k} {v}" for k, v in ens.seeds.items())
        # a model sampler's chain hash includes the trained model: the generate jobs record it
        sampled = sorted(
            {
                (m["config_hash"], m["model_digest"])
                for m in manifests
                if m.get("ensemble") == name and "config_hash" in m and "model_digest" in m
            }
        )
        if sampled:
            chain = "; ".join(f"chain hash {h} (model {d})" for h, d in sampled)
        elif ens.needs_model:
            chain = f"chain definition hash {ens.chain_hash} (the chain hash adds the trained model's digest)"
        else:
            chain = f"chain hash {ens.chain_hash}"
        lines.append(f"- `{name}`: {chain}; seeds: {seeds}")
    jobs = [*manifests, *estimates]
    commits = sorted({j["provenance"]["git_commit"] for j in jobs if "provenance" in j})
    versions = [j["provenance"]["versions"] for j in jobs if "provenance" in j]
    here = package_versions()
    if commits:
        lines.append(f"- the jobs' git commits: {', '.join(commits)}")
    other = sorted({f"{k} {v}" for vs in versions for k, v in vs.items() if here.get(k) != v})
    if other:
        lines.append(f"- jobs ran with other package versions than this analysis: {', '.join(other)}")
    lines.append(f"- this analysis: git commit {git_commit()}; " + ", ".join(f"{k} {v}" for k, v in here.items()))
    return lines
