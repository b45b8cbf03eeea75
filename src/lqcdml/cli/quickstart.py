"""The quickstart ensembles: small HMC runs of each theory, checked against exact results.

2D U(1) (exact Bessel-function plaquette and topological susceptibility), 2D phi^4 at
the flow-tutorial point (Schwinger-Dyson identity, HMC reference of REFERENCE.md) and
4D SU(2) at strong coupling (strong-coupling expansion). Writes ``summary.md`` and
``summary.json`` to the output folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis import estimate
from ..analysis.exact import (
    strong_coupling_plaquette,
    u1_2d_plaquette,
    u1_2d_topological_susceptibility,
)
from ..lattice import SU, U1, make_generators, randn
from ..observables import (
    abs_magnetization,
    plaquette,
    polyakov_loop,
    topological_charge_u1_2d,
    two_point_susceptibility,
)
from ..samplers import HMC, Integrator, run_chain
from ..theories import Phi4Action, WilsonGaugeAction

__all__ = ["Row", "run_quickstart", "write_summary"]


@dataclass(frozen=True)
class Row:
    """One line of the summary: an estimate with its error, tau_int and reference."""

    ensemble: str
    observable: str
    value: float
    error: float
    tau_int: float
    exact: float | None = None
    reference: str = ""

    @property
    def pull(self) -> float | None:
        return None if self.exact is None else (self.value - self.exact) / self.error


def _rows(ensemble: str, records: dict, exact: dict[str, tuple[float | None, str]]) -> list[Row]:
    rows = []
    for name, samples in records.items():
        est = estimate(samples, name=ensemble)
        ref, source = exact.get(name, (None, ""))
        rows.append(Row(ensemble, name, est.value, est.error, est.tau_int, ref, source))
    return rows


def run_quickstart(n_traj: int = 400, seed: int = 1, n_chains: int = 8) -> tuple[list[Row], dict]:
    """Run the three ensembles; returns the summary rows and run metadata."""
    rows: list[Row] = []
    meta: dict = {"n_traj": n_traj, "seed": seed, "n_chains": n_chains, "seconds": {}}

    # 2D U(1), L = 8, beta = 2
    t0 = time.perf_counter()
    group, beta, length = U1(), 2.0, 8
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), 8), 1.0)
    state = hmc.init(group.haar(make_generators(seed, n_chains), (2, length, length)), seed)
    _, rec = run_chain(
        hmc,
        state,
        n_traj,
        lambda u: {"plaquette": plaquette(u, group), "Q^2/V": topological_charge_u1_2d(u) ** 2 / length**2},
        n_skip=50,
    )
    n_p = length * length
    rows += _rows(
        "u1_2d_L8_b2",
        {k: rec[k].numpy() for k in ("plaquette", "Q^2/V")} | {"acceptance": rec["accepted"].double().numpy()},
        {
            "plaquette": (u1_2d_plaquette(beta, n_p), "Bessel formula"),
            "Q^2/V": (u1_2d_topological_susceptibility(beta, n_p), "Bessel formula"),
        },
    )
    meta["seconds"]["u1_2d_L8_b2"] = time.perf_counter() - t0

    # 2D phi^4 at the flow-tutorial point, L = 8, m^2 = -4, lambda = 8
    t0 = time.perf_counter()
    action = Phi4Action(-4.0, 8.0)
    hmc = HMC(Integrator.single(action, 6), 0.5)
    state = hmc.init(0.5 * randn(make_generators(seed + 1, n_chains), (8, 8)), seed + 1)
    _, rec = run_chain(
        hmc,
        state,
        n_traj,
        lambda p: {
            "chi_2 = <M^2>/V": two_point_susceptibility(p),
            "<|M|>/V": abs_magnetization(p),
            "Schwinger-Dyson <phi dS/dphi>": (p * action.force(p)).reshape(p.shape[0], -1).mean(1),
        },
        n_skip=150,
    )
    rows += _rows(
        "phi4_2d_L8_tutorial",
        {k: v.numpy() for k, v in rec.items() if k != "delta_H" and k != "accepted"}
        | {"acceptance": rec["accepted"].double().numpy()},
        {
            "chi_2 = <M^2>/V": (0.7447, "HMC, REFERENCE.md (error 0.0005)"),
            "<|M|>/V": (0.08691, "HMC, REFERENCE.md (error 0.00009)"),
            "Schwinger-Dyson <phi dS/dphi>": (1.0, "exact identity"),
        },
    )
    meta["seconds"]["phi4_2d_L8_tutorial"] = time.perf_counter() - t0

    # 4D SU(2), 4^4, beta = 1 (strong coupling)
    t0 = time.perf_counter()
    group, beta = SU(2), 1.0
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), 4), 1.0)
    state = hmc.init(group.haar(make_generators(seed + 2, n_chains), (4, 4, 4, 4, 4)), seed + 2)
    _, rec = run_chain(
        hmc,
        state,
        max(n_traj // 4, 20),
        lambda u: {"plaquette": plaquette(u, group), "Re Polyakov loop": polyakov_loop(u, group).real},
        n_skip=20,
    )
    rows += _rows(
        "su2_4d_L4_b1",
        {k: rec[k].numpy() for k in ("plaquette", "Re Polyakov loop")}
        | {"acceptance": rec["accepted"].double().numpy()},
        {
            "plaquette": (strong_coupling_plaquette(beta, 2), "strong-coupling expansion"),
            "Re Polyakov loop": (0.0, "centre symmetry"),
        },
    )
    meta["seconds"]["su2_4d_L4_b1"] = time.perf_counter() - t0
    return rows, meta


def write_summary(rows: list[Row], meta: dict, out_dir: Path) -> None:
    """``summary.md`` (a Markdown table) and ``summary.json`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# lqcdml quickstart",
        "",
        f"HMC, {meta['n_chains']} chains per ensemble, {meta['n_traj']} trajectories "
        "(SU(2): a quarter), errors by the Gamma method (pyerrors), chains as replicas.",
        "",
        "| ensemble | observable | value | error | tau_int | exact / reference | pull | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        exact = "" if r.exact is None else f"{r.exact:.6g}"
        pull = "" if r.pull is None else f"{r.pull:+.2f}"
        lines.append(
            f"| {r.ensemble} | {r.observable} | {r.value:.6g} | {r.error:.2g} | {r.tau_int:.2f} "
            f"| {exact} | {pull} | {r.reference} |"
        )
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    payload = {"rows": [asdict(r) | {"pull": r.pull} for r in rows], "meta": meta}
    (out_dir / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")


def main(out: str, n_traj: int, seed: int, threads: int) -> None:
    torch.set_num_threads(threads)
    rows, meta = run_quickstart(n_traj=n_traj, seed=seed)
    write_summary(rows, meta, Path(out))
    print((Path(out) / "summary.md").read_text())
