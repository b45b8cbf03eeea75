"""The cost table, the same-theory comparison and the SLHMC acceptance scan of the summary."""

from lqcdml.analysis.experiment import EnsembleView, ExperimentView
from lqcdml.analysis.report_tables import acceptance_scan, consistency_lines, cost_lines, cost_observable
from lqcdml.analysis.summary import Row
from lqcdml.config import compose_experiment
from lqcdml.driver.analyze import experiment_view


def _rows():
    return [
        Row("flow_2d", "abs_magnetization", 0.0870, 0.0002, 1.5, 1000, 2),
        Row("hmc_2d", "abs_magnetization", 0.0866, 0.0001, 12.0, 2000, 2),
        Row("hmc_3d", "abs_magnetization", 0.2, 0.001, 3.0, 2000, 2),
    ]


def test_same_theory_ensembles_are_compared_in_units_of_the_combined_error():
    cfg = experiment_view(compose_experiment("paper_flow_phi4", []))
    lines = consistency_lines(cfg, _rows())
    text = "\n".join(lines)
    # (0.0870 - 0.0866) / sqrt(0.0002^2 + 0.0001^2) = +1.8
    assert "`flow_2d` vs `hmc_2d` (same theory), difference in sigma: abs_magnetization +1.8" in text
    assert "hmc_3d" not in text  # a different lattice is a different theory


def test_cost_table_counts_chain_configurations_and_two_tau_int():
    cfg = experiment_view(compose_experiment("paper_flow_phi4", []))
    manifests = [
        {
            "store": "a",
            "ensemble": "hmc_2d",
            "n_committed": 2000,
            "resumed_from": 0,
            "seconds": 160.0,
            "acceptance": 0.8,
            "counters_per_trajectory": {"cg_md": 100.0, "cg_metropolis": 12.0},
        },
        {
            "store": "b",
            "ensemble": "hmc_2d",
            "n_committed": 2000,
            "resumed_from": 1000,
            "seconds": 80.0,
            "acceptance": 0.9,
            "counters_per_trajectory": {"cg_md": 110.0, "cg_metropolis": 8.0},
        },
        {"checkpoint": "m.pt", "ensemble": "flow_2d", "seconds": 300.0, "fresh": {"ess": 0.3, "acceptance": 0.5}},
        {
            "store": "c",
            "ensemble": "flow_2d",
            "n_committed": 1000,
            "resumed_from": 0,
            "seconds": 32.0,
            "acceptance": 0.5,
        },
    ]
    lines = cost_lines(cfg, _rows(), manifests)
    row = next(line for line in lines if line.startswith("| hmc_2d |"))
    # 240 s for 3000 configurations x 8 chains = 0.01 s; x 2 tau_int (24) = 0.24 s
    assert "| hmc_2d | hmc | 0.850 | abs_magnetization | 12.00 | 0.01 | 0.24 |" in row
    # CG iterations: the replicas' mean per trajectory, x save_every x 2 tau_int per independent sample
    per_indep = 115 * cfg.ensembles["hmc_2d"].save_every * 24
    assert f"| 115 (105 + 10) | {per_indep:.3g} |" in row
    flow = next(line for line in lines if line.startswith("| flow_2d |"))
    # 32 s / (1000 x 16) = 0.002 s; 2 tau_int = 3: 0.006 s; training 300 s
    assert "| flow_2d | flow | 0.500 | abs_magnetization | 1.50 | 0.002 | 0.006 |  |  | 300 | 0.300 | 0.500 |" in flow


def test_the_cost_of_a_4d_gauge_ensemble_is_priced_by_its_charge_after_the_longest_flow():
    flowed = ["plaquette", "flow_charge[flow_time=0.5]", "flow_charge[flow_time=1]", "flow_energy[flow_time=1]"]
    assert cost_observable("su", flowed) == "flow_charge[flow_time=1]"
    assert cost_observable("su", ["plaquette", "wilson_loop[loop=1x1]"]) == "plaquette"
    assert cost_observable("u1", ["plaquette", "topological_charge"]) == "topological_charge"
    cfg = experiment_view(compose_experiment("fthmc_smoke", []))
    manifests = [
        {"store": "s", "ensemble": "hmc_su3", "n_committed": 8, "resumed_from": 0, "seconds": 4.0, "acceptance": 1}
    ]
    rows = [Row("hmc_su3", "plaquette", 0.45, 0.01, 1.0, 8, 2), Row("hmc_su3", flowed[2], 0.1, 0.1, 3.0, 8, 2)]
    line = next(line for line in cost_lines(cfg, rows, manifests) if line.startswith("| hmc_su3 |"))
    # 4 s / (8 x 2 chains) = 0.25 s per configuration; x 2 tau_int (6) = 1.5 s
    assert "| hmc_su3 | hmc | 1.000 | flow_charge[flow_time=1] | 3.00 | 0.25 | 1.5 |" in line


def test_same_theory_comparison_leaves_out_sampler_diagnostics_and_widens_disagreeing_replicas():
    cfg = experiment_view(compose_experiment("paper_flow_phi4", []))
    rows = [
        Row("flow_2d", "acceptance", 0.5, 0.01, 0.5, 1000, 2),
        Row("hmc_2d", "acceptance", 0.9, 0.01, 0.5, 2000, 2),
        Row("flow_2d", "abs_magnetization", 0.0870, 0.0001, 1.5, 1000, 32),
        # the HMC replicas scatter by chi2/dof 7 about the Gamma error: their spread implies 3e-4
        Row(
            "hmc_2d",
            "abs_magnetization",
            0.0866,
            0.0001,
            12.0,
            2000,
            32,
            replica_chi2=31 * 7.0,
            replica_dof=31,
            replica_error=0.0003,
        ),
        # zero to rounding in both (an imaginary part that vanishes exactly): nothing to compare
        Row("flow_2d", "polyakov_loop_im", -1.8e-17, 6e-18, 1.0, 1000, 2),
        Row("hmc_2d", "polyakov_loop_im", 3.1e-17, 1.2e-17, 1.0, 2000, 2),
    ]
    text = "\n".join(consistency_lines(cfg, rows))
    assert "acceptance" not in text  # samplers differ in acceptance by design
    assert "polyakov_loop_im" not in text
    # (0.0870 - 0.0866) / sqrt(0.0001^2 + 0.0003^2) = +1.3, not the +2.8 of the Gamma errors
    assert "abs_magnetization +1.3 (error from the replica spread)" in text


def test_acceptance_scan_groups_slhmc_ensembles_by_effective_action_at_two_or_more_m_eff():
    theory = {"name": "su", "lattice": [4, 4, 4, 4]}
    view = ExperimentView(
        "x",
        {
            "thin_a": EnsembleView(theory, "slhmc_thin", {"m_eff": 0.3}, label="no network"),
            "thin_b": EnsembleView(theory, "slhmc_thin", {"m_eff": 0.5}, label="no network"),
            "net_a": EnsembleView(theory, "slhmc", {"m_eff": 0.3}, model_kind="stout"),
            "hmc": EnsembleView(theory, "hmc", reference=True),
        },
    )
    rows = [Row(e, "acceptance", 0.5 + i / 10, 0.01, 0.5, 100, 2) for i, e in enumerate(view.ensembles)]
    scan = acceptance_scan(view, rows)
    assert scan == {"no network": [(0.3, 0.5, 0.01), (0.5, 0.6, 0.01)]}  # one m_eff of the stout net: no curve


def test_cost_table_gives_a_2d_flows_kl_per_plaquette_from_its_final_loss_and_the_exact_ln_z():
    from lqcdml.analysis.references import flow_log_z

    cfg = experiment_view(compose_experiment("paper_flow_u1_smoke", []))
    manifests = [
        {"checkpoint": "m.pt", "ensemble": "flow", "seconds": 5.0, "final_loss": -300.0, "fresh": {"ess": 0.2}},
        {"store": "s", "ensemble": "flow", "n_committed": 40, "resumed_from": 0, "seconds": 4.0, "acceptance": 0.3},
        {"store": "h", "ensemble": "hmc", "n_committed": 40, "resumed_from": 0, "seconds": 4.0, "acceptance": 0.9},
    ]
    rows = [
        Row("flow", "topological_charge", 0.0, 0.1, 1.0, 40, 1),
        Row("hmc", "topological_charge", 0.0, 0.1, 5.0, 40, 1),
    ]
    lines = cost_lines(cfg, rows, manifests)
    theory = cfg.ensembles["flow"].theory
    kl = (-300.0 + flow_log_z(theory)) / 64  # 8 x 8 plaquettes
    assert next(line for line in lines if line.startswith("| flow |")).endswith(f"| {kl:.4f} |")
    assert next(line for line in lines if line.startswith("| hmc |")).endswith("|  |")


def test_plaquette_susceptibility_row_is_v_times_the_variance_of_the_plaquette_with_its_exact_value():
    """The derived row ``V (<p^2> - <p>^2)``: equal to that function of the pooled means to rounding,
    its error from pyerrors' propagation (for independent draws the delta method's
    ``V sqrt(var(p^2 - 2 <p> p) / N)``), the exact 2D SU(N) value beside it; no row without a
    gauge theory's plaquette series."""
    import numpy as np
    import xarray as xr

    from lqcdml.analysis.exact_sun_2d import su_n_2d_plaquette_susceptibility
    from lqcdml.analysis.summary import plaquette_susceptibility_row

    rng = np.random.default_rng(3)
    p = 0.6 + 0.05 * rng.standard_normal((4000, 4))
    ds = xr.Dataset(
        {"plaquette": (("config", "replica"), p)}, coords={"config": np.arange(1, 4001), "replica": np.arange(1, 5)}
    )
    theory = {"name": "su", "n_colors": 3, "lattice": [8, 8], "beta": 6.0, "fermion": "none"}
    row = plaquette_susceptibility_row("e", ds, theory)
    flat = p.ravel()
    assert abs(row.value - 64 * (np.mean(flat**2) - np.mean(flat) ** 2)) < 1e-12
    delta = 64 * np.std(flat**2 - 2 * flat.mean() * flat) / np.sqrt(flat.size)
    assert abs(row.error / delta - 1) < 0.15, (row.error, delta)
    assert row.reference == su_n_2d_plaquette_susceptibility(6.0, 3, 64) and row.source.startswith("exact")
    assert plaquette_susceptibility_row("e", ds, {**theory, "lattice": [4, 4, 4, 4], "beta": 1.0}).reference is None
    assert plaquette_susceptibility_row("e", ds, {"name": "phi4", "lattice": [8, 8]}) is None
    assert plaquette_susceptibility_row("e", ds.rename({"plaquette": "other"}), theory) is None
