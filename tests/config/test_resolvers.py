"""Overrides and loaded files are data: OmegaConf resolvers (``${oc.env:...}``, ``${now:...}``,
``${oc.decode:...}``, ``${hydra:...}``) are refused in one line unless
``LQCDML_ALLOW_RESOLVERS=1``; references to other keys (``${a.b}``) stay allowed."""

import pytest
import yaml

from lqcdml.cli.main import main
from lqcdml.config import ConfigError, compose_experiment, dump, load
from lqcdml.config.compose import merge_overrides

SECRET = "paths.results=${oc.env:LQCDML_TEST_SECRET}"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.delenv("LQCDML_ALLOW_RESOLVERS", raising=False)
    monkeypatch.setenv("LQCDML_TEST_SECRET", "from-the-environment")


@pytest.fixture(scope="module")
def tiny():
    return compose_experiment("ci_tiny")


def _refused(exc: pytest.ExceptionInfo, *names: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and "LQCDML_ALLOW_RESOLVERS=1" in message, message
    assert "from-the-environment" not in message
    for name in names:
        assert name in message, (name, message)


@pytest.mark.parametrize(
    "override",
    [
        SECRET,
        "paths.results=${ oc.env : HOME }",
        "paths.results=r${now:%H}",
        "paths.results=${oc.decode:'1'}",
        "paths.results=${hydra:runtime.cwd}",
        "paths.results='${oc.create:{a: 1}}'",
        "paths.results=${${oc.env:X}}",
        "+experiment=${oc.env:HOME}",
    ],
)
def test_a_resolver_in_an_override_is_refused_in_one_line(secret, override):
    with pytest.raises(ConfigError) as exc:
        compose_experiment("ci_tiny", [override])
    _refused(exc, repr(override))


def test_a_resolver_in_a_merged_override_is_refused(secret, tiny):
    with pytest.raises(ConfigError) as exc:
        merge_overrides(tiny, [SECRET])
    _refused(exc, repr(SECRET))


def test_a_resolver_pieced_together_from_references_is_refused(secret):
    """'$' and '{oc.env:...}' joined by a reference make a resolver call only once composed."""
    with pytest.raises(ConfigError) as exc:
        compose_experiment(
            "ci_tiny", ["paths.results='$'", "ensembles.u1.measure.observables=['${paths.results}{oc.env:HOME}']"]
        )
    _refused(exc, "ensembles.u1.measure.observables[0]")


def test_cli_refuses_a_resolver_override_with_one_line(secret, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    assert main(["compose", "+experiment=ci_tiny", SECRET, "--out", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "LQCDML_ALLOW_RESOLVERS" in err and SECRET in err, err
    assert not cfg.exists()


def test_a_resolver_in_a_loaded_yaml_is_refused(secret, tiny, tmp_path):
    path = tmp_path / "config.yaml"
    dump(tiny, path)
    data = yaml.safe_load(path.read_text())
    data["paths"]["results"] = "${oc.env:LQCDML_TEST_SECRET}"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as exc:
        load(path)
    _refused(exc, repr(str(path)), "paths.results = '${oc.env:LQCDML_TEST_SECRET}'")


def test_the_switch_allows_resolvers(secret, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LQCDML_ALLOW_RESOLVERS", "1")
    assert compose_experiment("ci_tiny", [SECRET]).paths.results == "from-the-environment"
    assert merge_overrides(tiny, [SECRET]).paths.results == "from-the-environment"
    path = tmp_path / "config.yaml"
    dump(tiny, path)
    path.write_text(path.read_text().replace("results: results", "results: ${oc.env:LQCDML_TEST_SECRET}"))
    assert load(path).paths.results == "from-the-environment"


def test_references_to_other_keys_stay_allowed(secret):
    cfg = compose_experiment("ci_tiny", ["ensembles.u1.theory.beta=${ensembles.su2.theory.beta}"])
    assert cfg.ensembles["u1"].theory.beta == cfg.ensembles["su2"].theory.beta
