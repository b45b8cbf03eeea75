import json
from pathlib import Path

import pytest

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump

from .helpers import assert_same_chain, snapshot, store_digest


@pytest.fixture
def tiny_cfg(tmp_path):
    cfg = compose_experiment("ci_tiny", ["ensembles.u1.chain.n_configs=14"])
    path = tmp_path / "config.yaml"
    dump(cfg, path)
    return path


def _gen(cfg, store, *extra):
    return main(
        [
            "generate",
            "--config",
            str(cfg),
            "--ensemble",
            "u1",
            "--replica",
            "1",
            "--store",
            str(store),
            "--progress",
            "lines",
            *extra,
        ]
    )


def test_generate_resume_equals_uninterrupted_bit_for_bit(tiny_cfg, tmp_path, capsys):
    assert _gen(tiny_cfg, tmp_path / "full.zarr") == 0
    assert _gen(tiny_cfg, tmp_path / "part.zarr", "chain.n_configs=10") == 0
    assert _gen(tiny_cfg, tmp_path / "part.zarr", "--manifest", str(tmp_path / "m.json")) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["resumed_from"] == 10 and manifest["n_committed"] == 14
    assert manifest["seconds_total"] > manifest["seconds"] > 0  # wall time of both runs
    assert_same_chain(store_digest(tmp_path / "full.zarr"), store_digest(tmp_path / "part.zarr"))
    # a complete store is left as it is
    before = snapshot(tmp_path / "full.zarr")
    assert _gen(tiny_cfg, tmp_path / "full.zarr") == 0
    assert snapshot(tmp_path / "full.zarr") == before


def test_info_prints_committed_count_config_replica_versions(tiny_cfg, tmp_path, capsys):
    _gen(tiny_cfg, tmp_path / "s.zarr", "chain.n_configs=10")
    capsys.readouterr()
    assert main(["info", str(tmp_path / "s.zarr")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_committed"] == 10 and data["replica"] == 1
    assert data["config"]["theory"]["name"] == "u1"
    assert data["versions"]["lqcdml"] and data["versions"]["git_commit"]


def test_measure_and_analyze_produce_observables_tables_and_figures(tiny_cfg, tmp_path, capsys):
    for r in (1, 2):
        assert (
            main(
                [
                    "generate",
                    "--config",
                    str(tiny_cfg),
                    "--ensemble",
                    "u1",
                    "--replica",
                    str(r),
                    "--store",
                    str(tmp_path / f"r{r}.zarr"),
                    "--progress",
                    "lines",
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "measure",
                    "--config",
                    str(tiny_cfg),
                    "--ensemble",
                    "u1",
                    "--store",
                    str(tmp_path / f"r{r}.zarr"),
                    "--out",
                    str(tmp_path / f"o{r}.zarr"),
                ]
            )
            == 0
        )
    assert (
        main(
            [
                "analyze",
                "--config",
                str(tiny_cfg),
                "--obs",
                str(tmp_path / "o1.zarr"),
                str(tmp_path / "o2.zarr"),
                "--out",
                str(tmp_path / "an"),
            ]
        )
        == 0
    )
    summary = (tmp_path / "an" / "summary.md").read_text()
    assert "| u1 | plaquette |" in summary and "exact (Bessel functions)" in summary
    assert (tmp_path / "an" / "summary.csv").read_text().startswith("ensemble,observable,value")
    figures = {p.name for p in (tmp_path / "an" / "figures").iterdir()}
    assert {
        "u1__plaquette__history.png",
        "u1__plaquette__autocorrelation.png",
        "u1__plaquette__histogram.png",
    } <= figures


BAD_INPUTS = [
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "u1", "theory.beta=-2"],
        "ensembles.u1.theory.beta = -2.0; allowed: beta > 0",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "su2", "theory.n_colors=5"],
        "ensembles.su2.theory.n_colors = 5; allowed: 2 or 3",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "u1", "chain.n_configs=0"],
        "ensembles.u1.chain.n_configs = 0; allowed: n_configs >= 1",
    ),
    (["generate", "+experiment=ci_tiny", "--ensemble", "u1", "theory.bta=1"], "unknown key 'bta'"),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "u1", "sampler.n_steps=many"],
        "ensembles.u1.sampler.n_steps = 'many'; allowed: a value of type integer",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "nope"],
        "--ensemble = 'nope'; allowed: flow, stag, su2, u1, u1flow",
    ),
    (["generate", "+experiment=ci_tiny", "--ensemble", "u1", "--replica", "3"], "--replica = 3; allowed: 1..2"),
    (["generate", "+experiment=ci_tiny", "--ensemble", "u1", "device=cuda:x"], "device = 'cuda:x'"),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "stag", "theory.lattice=[2,3,2,4]"],
        "ensembles.stag.theory.lattice[1] = 3; allowed: even extents for staggered fermions",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "stag", "theory.n_flavours=-1"],
        "ensembles.stag.theory.n_flavours = -1; allowed: n_flavours >= 0 for staggered fermions (0: quenched",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "stag", "sampler.rational_tol=1e-20"],
        "ensembles.stag.sampler.rational_tol = 1e-20; allowed: 1e-14 <= rational_tol <= 1e-4",
    ),
    (
        ["generate", "+experiment=ci_tiny", "--ensemble", "u1", "theory.fermion=wilson"],
        "ensembles.u1.theory.fermion = 'wilson'; allowed: none for theory.name = 'u1'",
    ),
]


@pytest.mark.parametrize("argv,message", BAD_INPUTS, ids=[a[-1] for a, _ in BAD_INPUTS])
def test_bad_input_stops_with_one_line_exit_2_and_writes_nothing(argv, message, tmp_path, capsys):
    before = snapshot(tmp_path)
    code = main([*argv, "--store", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and err.count("\n") == 0, err
    assert snapshot(tmp_path) == before


def test_missing_and_foreign_store_paths(tmp_path, capsys, tiny_cfg):
    assert main(["info", str(tmp_path / "none.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("precious")
    before = snapshot(tmp_path)
    assert _gen(tiny_cfg, tmp_path / "foreign") == 2
    assert "not a Zarr store" in capsys.readouterr().err
    assert (
        main(
            [
                "measure",
                "--config",
                str(tiny_cfg),
                "--ensemble",
                "u1",
                "--store",
                str(tmp_path / "none.zarr"),
                "--out",
                str(tmp_path / "o.zarr"),
            ]
        )
        == 2
    )
    assert snapshot(tmp_path) == before


def test_resuming_with_an_incompatible_config_is_refused_untouched(tiny_cfg, tmp_path, capsys):
    _gen(tiny_cfg, tmp_path / "s.zarr", "chain.n_configs=10")
    before = snapshot(tmp_path)
    for override, key in [
        ("theory.beta=3.5", "theory.beta = 3.5"),
        ("chain.seed=9", "chain.seed = 9"),
        ("dtype=float32", "precision = 'float32'"),
        ("chain.n_chains=1", "chain.n_chains = 1"),
    ]:
        assert _gen(tiny_cfg, tmp_path / "s.zarr", override) == 2
        err = capsys.readouterr().err
        assert "incompatible config" in err and key in err, err
    assert _gen(tiny_cfg, tmp_path / "s.zarr", "chain.n_configs=8", "chain.n_therm=1") == 2
    assert "allowed: >= 10" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--config",
                str(tiny_cfg),
                "--ensemble",
                "u1",
                "--replica",
                "2",
                "--store",
                str(tmp_path / "s.zarr"),
            ]
        )
        == 2
    )
    assert "holds replica 1, not 2" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_measure_refuses_a_store_of_another_config(tiny_cfg, tmp_path, capsys):
    _gen(tiny_cfg, tmp_path / "s.zarr", "chain.n_configs=10")
    assert (
        main(
            [
                "measure",
                "--config",
                str(tiny_cfg),
                "--ensemble",
                "u1",
                "theory.beta=1.5",
                "--store",
                str(tmp_path / "s.zarr"),
                "--out",
                str(tmp_path / "o.zarr"),
            ]
        )
        == 2
    )
    assert "config hash differs" in capsys.readouterr().err
    assert not Path(tmp_path / "o.zarr").exists()


def test_a_solver_that_does_not_converge_stops_the_job_and_keeps_commits(tmp_path, capsys):
    cfg = compose_experiment(
        "paper_slhmc_hmc",
        [
            "ensembles.nf4.theory.lattice=[2,2,2,2]",
            "ensembles.nf4.chain.n_chains=1",
            "ensembles.nf4.chain.n_configs=8",
            "ensembles.nf4.chain.n_therm=1",
            "ensembles.nf4.sampler.n_steps=2",
            "ensembles.nf4.chain.replicas=1",
        ],
    )
    path = tmp_path / "config.yaml"
    dump(cfg, path)
    base = ["generate", "--config", str(path), "--ensemble", "nf4", "--store", str(tmp_path / "s.zarr")]
    assert main([*base, "chain.n_configs=6"]) == 0
    before = store_digest(tmp_path / "s.zarr")
    # an impossible tolerance: the first solve of the next configuration fails
    assert main([*base, "sampler.solver_tol=1e-30"]) == 2  # refused: outside the allowed range
    import lqcdml.theories.staggered as stag

    original = stag.StaggeredOperator.solve_normal
    stag.StaggeredOperator.solve_normal = lambda self, links, b, tol=1e-12, maxiter=10_000: original(
        self, links, b, 1e-14, 2
    )
    try:
        assert main(base) == 3
    finally:
        stag.StaggeredOperator.solve_normal = original
    err = capsys.readouterr().err
    assert "configuration 6" in err and "relative residual" in err and "6 committed" in err
    assert_same_chain(before, store_digest(tmp_path / "s.zarr"))


def test_agreement_lines_count_values_within_three_sigma():
    from lqcdml.analysis.report_tables import agreement_lines
    from lqcdml.analysis.summary import Row

    rows = [
        Row("a", "plaquette", 0.70, 0.001, 1.0, 10, 2, 0.701, 0.0, "x"),  # -1 sigma
        Row("a", "condensate", 0.43, 0.001, 1.0, 10, 2, 0.42, 0.0, "x"),  # +10 sigma
        Row("a", "acceptance", 0.9, 0.01, 1.0, 10, 2),
        Row("b", "plaquette", 0.5, 0.1, 1.0, 10, 2),
    ]
    lines = agreement_lines(rows)
    assert "- `a`: 1 of 2 compared values within 3 sigma; off: condensate (+10.0 sigma)" in lines
    assert not any("`b`" in line for line in lines)


def test_analyze_of_another_experiments_stores_exits_2_with_one_line(tiny_cfg, tmp_path, capsys):
    assert _gen(tiny_cfg, tmp_path / "s.zarr", "chain.n_configs=8", "chain.n_therm=2") == 0
    assert (
        main(
            [
                "measure",
                "--config",
                str(tiny_cfg),
                "--ensemble",
                "u1",
                "--store",
                str(tmp_path / "s.zarr"),
                "chain.n_configs=8",
                "chain.n_therm=2",
                "--out",
                str(tmp_path / "o.zarr"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    other = tmp_path / "quickstart.yaml"
    dump(compose_experiment("quickstart"), other)
    code = main(["analyze", "--config", str(other), "--obs", str(tmp_path / "o.zarr"), "--out", str(tmp_path / "an")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "belongs to experiment 'ci_tiny'; allowed: observable stores of experiment 'quickstart'" in err
    assert (
        main(
            ["analyze", "--config", str(tiny_cfg), "--obs", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "an")]
        )
        == 2
    )
    assert "does not exist or is not Zarr" in capsys.readouterr().err


def test_compose_takes_an_ensemble_for_short_overrides(tmp_path, capsys):
    out = tmp_path / "c.yaml"
    assert main(["compose", "+experiment=ci_tiny", "--ensemble", "u1", "theory.beta=2.5", "--out", str(out)]) == 0
    from lqcdml.config import load

    assert load(out).ensembles["u1"].theory.beta == 2.5
    assert main(["compose", "+experiment=ci_tiny", "--ensemble", "nope", "--out", str(tmp_path / "d.yaml")]) == 2
    assert "--ensemble = 'nope'; allowed: flow, stag, su2, u1, u1flow" in capsys.readouterr().err


def test_the_old_gradient_flow_key_answers_with_the_new_name(tmp_path, capsys):
    out = str(tmp_path / "c.yaml")
    assert main(["compose", "+experiment=ci_tiny", "ensembles.su2.measure.flow.t_max=0.3", "--out", out]) == 2
    assert "'measure.flow' is renamed; allowed: 'measure.gradient_flow'" in capsys.readouterr().err
    assert main(["compose", "+experiment=ci_tiny", "ensembles.su2.measure.observables=[flow]", "--out", out]) == 2
    assert "renamed: 'gradient_flow'" in capsys.readouterr().err
    old = tmp_path / "old.yaml"  # a resolved config written before the rename
    assert main(["compose", "+experiment=ci_tiny", "--out", str(old)]) == 0
    old.write_text(old.read_text().replace("gradient_flow:", "flow:"))
    assert main(["compose", "--config", str(old), "--out", out]) == 2
    assert "measure.flow: the key 'measure.flow' is renamed" in capsys.readouterr().err


def test_replica_one_of_a_one_replica_run_continues_in_a_two_replica_run(tiny_cfg, tmp_path):
    one = ["chain.replicas=1", "chain.n_configs=10"]
    assert _gen(tiny_cfg, tmp_path / "r1.zarr", *one) == 0
    assert _gen(tiny_cfg, tmp_path / "r1.zarr", "chain.replicas=2", "chain.n_configs=12") == 0
    assert _gen(tiny_cfg, tmp_path / "full.zarr", "chain.replicas=2", "chain.n_configs=12") == 0
    assert_same_chain(store_digest(tmp_path / "full.zarr"), store_digest(tmp_path / "r1.zarr"))
