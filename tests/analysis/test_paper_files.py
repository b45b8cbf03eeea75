"""The paper files (``analysis/published/*.yaml``): each loads, says what its table compares,
and is refused in one line where a key, kind, source or value is wrong."""

from __future__ import annotations

import pytest

from lqcdml.analysis.estimates import PUBLISHED_CV
from lqcdml.analysis.paper_files import FOLDER, PaperFileError, load_paper, paper_names
from lqcdml.analysis.references import SLHMC_HMC_ROW, TUTORIAL_HMC

GOOD = """title: "A paper"
sources:
  p: "The paper, table 1"
rows:
  - {kind: measured, quantity: "x: plaquette", ensemble: x, observable: plaquette, published: [0.5, 0.01], source: p}
"""


def _load(tmp_path, text: str):
    (tmp_path / "paper_x.yaml").write_text(text)
    return load_paper("paper_x", tmp_path)


def test_every_paper_experiment_has_a_file_that_loads():
    conf = FOLDER.parents[3] / "conf" / "experiment"
    for name in paper_names():
        paper = load_paper(name)
        assert paper.title and paper.rows, name
        assert (conf / f"{name}.yaml").is_file(), name  # named after its experiment
    assert set(paper_names()) == {
        "paper_slhmc_hmc",
        "paper_slhmc",
        "paper_flow_phi4",
        "paper_flow_u1",
        "paper_cv_phi4",
        "paper_ama",
        "paper_flow_sun",
        "fthmc",
    }


def test_the_files_quote_the_numbers_the_summary_uses_as_references():
    """The HMC rows the summary's reference column uses (references.py) and the variance reductions of
    the estimate tables (estimates.py) are the numbers the paper tables show."""
    hmc_rows = 0
    for name in ("paper_slhmc_hmc", "paper_slhmc"):
        for row in load_paper(name).rows:
            if row["kind"] == "measured" and ", HMC row" in row["source"]:
                value, error = SLHMC_HMC_ROW[row["observable"]]
                factor = row.get("factor", 1.0)  # the paper's normalisation (tr P, not tr P / N)
                assert row["published"] == [factor * value, factor * error], row
                hmc_rows += 1
    assert hmc_rows == 12  # Nf = 2 and 4; HMC and no network
    tutorial = [r for r in load_paper("paper_flow_phi4").rows if r["kind"] == "measured"]
    assert len(tutorial) == 6 and all(r["published"] == list(TUTORIAL_HMC[r["observable"]]) for r in tutorial)
    cv = {
        (tuple(r["hidden"]), r["n_train"]): r["published"][0]
        for r in load_paper("paper_cv_phi4").rows
        if r["kind"] == "variance_reduction"
    }
    assert cv == PUBLISHED_CV


def test_a_good_file_is_read_with_its_source_text(tmp_path):
    (row,) = _load(tmp_path, GOOD).rows
    assert row["source"] == "The paper, table 1" and row["published"] == [0.5, 0.01]


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("observable: plaquette,", "observable: plaquette, colour: red,", "rows[0].colour: unknown key; allowed: kind"),
        ("title: ", "titel: ", "titel: unknown key; allowed: title, sources, rows"),
        ("kind: measured", "kind: guessed", "rows[0].kind = 'guessed'; allowed: measured, our_ensemble"),
        ("source: p}", "source: q}", "rows[0].source = 'q'; allowed: p"),
        ("published: [0.5, 0.01]", "published: [0.5]", "rows[0].published = [0.5]; allowed: [value, error or null]"),
        ("published: [0.5, 0.01]", "published: ['0.5', 0.01]", "allowed: [value, error or null]"),
        ("ensemble: x, ", "", "rows[0].ensemble: missing; required: kind, quantity, ensemble"),
        ('quantity: "x: plaquette"', "quantity: 3", "rows[0].quantity = 3; allowed: str"),
    ],
)
def test_a_wrong_file_is_refused_in_one_line_naming_the_key(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(PaperFileError) as err:
        _load(tmp_path, GOOD.replace(old, new))
    text = str(err.value)
    assert message in text and "\n" not in text and "paper_x.yaml" in text


def test_a_quantity_may_name_only_its_kinds_placeholders(tmp_path):
    text = GOOD.replace(
        '{kind: measured, quantity: "x: plaquette", ensemble: x, observable: plaquette, '
        "published: [0.5, 0.01], source: p}",
        '{kind: central_value_check, quantity: "x: {taget}", ensemble: x, targets: [tr1], source: p}',
    )
    with pytest.raises(PaperFileError, match=r"rows\[0\].quantity = 'x: \{taget\}'; allowed placeholders: \{target\}"):
        _load(tmp_path, text)
