"""The molecular-dynamics residual of the pseudofermion forces (``force_tol``): the force alone
solves to it, the heat bath and the action keep ``tol``, and the Hasenbusch split hands it on."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.theories import (
    StaggeredOperator,
    StaggeredPseudofermion,
    StaggeredRatio,
    WilsonOperator,
    WilsonPseudofermion,
    WilsonRatio,
    hasenbusch_split,
)

GROUP = SU(2)
SHAPE = (4, 4, 2, 2, 2)
LOOSE = 1e-4

TERMS = {
    "staggered4": StaggeredPseudofermion(StaggeredOperator(0.1, GROUP), 4, tol=1e-12),
    "staggered2": StaggeredPseudofermion(StaggeredOperator(0.1, GROUP), 2, tol=1e-12),
    "staggered_ratio4": StaggeredRatio(StaggeredOperator(0.1, GROUP), 0.4, 4, tol=1e-12),
    "staggered_ratio2": StaggeredRatio(StaggeredOperator(0.1, GROUP), 0.4, 2, tol=1e-12),
    "wilson": WilsonPseudofermion(WilsonOperator(0.2, GROUP), tol=1e-12),
    "wilson_ratio": WilsonRatio(WilsonOperator(0.2, GROUP), 0.6, tol=1e-12),
}


@pytest.mark.parametrize("name", list(TERMS))
def test_the_force_alone_solves_to_the_force_tolerance(name):
    term = TERMS[name]
    loose = replace(term, force_tol=LOOSE)
    links = GROUP.near_identity(make_generators(1, 2), SHAPE, 0.5)
    phi = term.heat_bath(links, make_generators(2, 2))
    assert torch.equal(loose.heat_bath(links, make_generators(2, 2)), phi)
    assert torch.equal(loose.action(links, phi), term.action(links, phi))
    # the same solves as a term whose every solve stops at LOOSE: bit for bit
    assert torch.equal(loose.force(links, phi), replace(term, tol=LOOSE).force(links, phi))
    # and not those of the tight term: the residual took effect
    assert not torch.equal(loose.force(links, phi), term.force(links, phi))


@pytest.mark.parametrize("name", ["staggered2", "wilson"])
def test_the_hasenbusch_split_hands_the_force_tolerance_to_every_factor(name):
    terms = hasenbusch_split(replace(TERMS[name], force_tol=LOOSE), [0.3, 0.6])
    assert len(terms) == 3 and all(t.force_tol == LOOSE and t.tol == 1e-12 for t in terms)
