"""Integrator schemes as coefficient tables: bit-for-bit equality with the former branches,
reversibility, declared force-evaluation counts and the refusal of malformed tables."""

import pytest
import torch

from lqcdml.samplers import HMC, Integrator, Level, integrators, run_chain
from lqcdml.samplers.integrators import SCHEMES, Scheme

from . import _reference_integrators as ref
from .test_integrators import _half, _momenta, _theory

# ---------------------------------------------------------------- bit for bit


def _split(action):
    """The action as two halves (a gauge coupling halved; phi^4 kept whole on both levels)."""
    return type(action)(**{**action.__dict__, **_half(action)})


def _pair(action, schemes, n_steps):
    """(table-driven, frozen reference) integrators with one level per scheme."""
    terms = (action,) if len(schemes) == 1 else (_split(action),)
    new = Integrator(action.group, [Level(terms, n, s) for s, n in zip(schemes, n_steps)])
    old = ref.Integrator(action.group, [ref.Level(terms, n, s) for s, n in zip(schemes, n_steps)])
    return new, old


BIT_CASES = [
    (name, schemes, n_steps)
    for name in ("phi4", "u1", "su2")
    for schemes, n_steps in (
        (("leapfrog",), (5,)),
        (("omelyan",), (4,)),
        (("leapfrog", "omelyan"), (3, 2)),
        (("omelyan", "leapfrog"), (2, 3)),
        (("omelyan", "omelyan"), (3, 2)),
    )
]


@pytest.mark.parametrize("name,schemes,n_steps", BIT_CASES)
def test_leapfrog_and_omelyan_are_bit_for_bit_the_former_branches(name, schemes, n_steps):
    """Several trajectories in a row (fresh momenta each): ``(q, p)`` and counts identical."""
    action, q = _theory(name)
    new, old = _pair(action, schemes, n_steps)
    q_new = q_old = q
    for traj in range(3):
        p = _momenta(action.group, q_new, seed=100 + traj)
        a = new.integrate(q_new, p, 0.7)
        b = old.integrate(q_old, p, 0.7)
        assert torch.equal(a.q, b.q) and torch.equal(a.p, b.p), (name, schemes, traj)
        assert a.force_evaluations == b.force_evaluations
        q_new, q_old = a.q, b.q
    assert (q_new - q).abs().max() > 1e-3  # it moved


def test_hmc_chain_is_bit_for_bit_the_former_branches():
    action, q0 = _theory("u1")
    new, old = _pair(action, ("omelyan", "leapfrog"), (3, 2))
    records = []
    for integ in (new, old):
        hmc = HMC(integ, 1.0)
        state, rec = run_chain(hmc, hmc.init(q0, seed=5), 6)
        records.append((state.fields, rec["delta_H"], rec["accepted"]))
    for x, y in zip(*records):
        assert torch.equal(x, y)


# ---------------------------------------------------------------- every scheme of the table


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("name", ["phi4", "u1", "su2"])
def test_every_scheme_is_reversible(name, scheme):
    """Forward, flip the momenta, forward again: back at the start to 1e-12 (single level;
    and two nested levels for the gauge theories, whose split halves the coupling)."""
    action, q0 = _theory(name)
    p0 = _momenta(action.group, q0)
    integs = [Integrator.single(action, 7, scheme)]
    if name != "phi4":
        half = _split(action)
        integs.append(Integrator(action.group, [Level((half,), 4, scheme), Level((half,), 1, scheme)]))
    for integ in integs:
        q1, p1 = integ(q0, p0, 0.9)
        assert (q1 - q0).abs().max() > 1e-3
        q2, p2 = integ(q1, -p1, 0.9)
        assert (q2 - q0).abs().max() < 1e-12
        assert (p2 + p0).abs().max() < 1e-12


class _Counting:
    """An action that counts its force evaluations."""

    def __init__(self, action):
        self.inner, self.group, self.calls = action, action.group, 0

    def action(self, q):
        return self.inner.action(q)

    def force(self, q):
        self.calls += 1
        return self.inner.force(q)


def test_declared_force_evaluations_per_step():
    assert {name: s.force_evaluations_per_step for name, s in SCHEMES.items()} == {
        "leapfrog": 1,
        "omelyan": 2,
        "omelyan4": 5,  # the "5F" of 4MN5FV
    }


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_force_evaluations_counted_match_the_table(scheme):
    """Single level: ``n F + 1`` per trajectory; nested: each outer position update runs the
    inner level once (``n_i F_i + 1`` evaluations)."""
    action, q0 = _theory("u1")
    p0 = _momenta(action.group, q0)
    per_step = SCHEMES[scheme].force_evaluations_per_step
    for n in (1, 3, 4):
        counting = _Counting(action)
        result = Integrator(action.group, [Level((counting,), n, scheme)]).integrate(q0, p0, 0.5)
        assert counting.calls == result.force_evaluations[0] == n * per_step + 1
    for inner in SCHEMES.values():
        outer_c, inner_c = _Counting(action), _Counting(action)
        levels = [Level((outer_c,), 3, scheme), Level((inner_c,), 2, inner.name)]
        result = Integrator(action.group, levels).integrate(q0, p0, 0.5)
        n_inner_runs = 3 * len(SCHEMES[scheme].position)
        assert outer_c.calls == result.force_evaluations[0] == 3 * per_step + 1
        per_inner_run = 2 * inner.force_evaluations_per_step + 1
        assert inner_c.calls == result.force_evaluations[1] == n_inner_runs * per_inner_run


# ---------------------------------------------------------------- the table itself


def test_table_is_consistent_and_usable_as_a_name_list():
    assert "omelyan" in SCHEMES and "verlet" not in SCHEMES
    assert ", ".join(SCHEMES).startswith("leapfrog, omelyan")  # the config's "allowed:" list
    for name, scheme in SCHEMES.items():
        assert isinstance(scheme, Scheme) and scheme.name == name
        assert f"``{name}`` (order {scheme.order}" in integrators.__doc__
    assert SCHEMES["omelyan"].momentum[0] == integrators.OMELYAN_LAMBDA
    assert Level((_theory("phi4")[0],), 2, "omelyan4").scheme == "omelyan4"


BAD_TABLES = [
    ({"momentum": (0.3, 0.7), "position": (1.0,)}, r"momentum = \(0.3, 0.7\); allowed: a symmetric"),
    ({"momentum": (0.5, 0.5), "position": (0.3, 0.7)}, "2 momentum and 2 position coefficients"),
    ({"momentum": (0.25, 0.25, 0.25), "position": (0.5, 0.5)}, "sums to 0.75; allowed: sum 1"),
    ({"momentum": (0.5, 0.5), "position": (1.1,)}, r"position = \(1.1,\) sums to 1.1; allowed: sum 1"),
    ({"momentum": (0.0, 1.0, 0.0), "position": (0.5, 0.5)}, r"momentum\[0\] = 0.0; allowed: a finite"),
    ({"momentum": (0.5, 0.5), "position": (float("nan"),)}, r"position\[0\] = nan; allowed: a finite"),
    ({"momentum": (1.0,), "position": ()}, "1 momentum and 0 position coefficients"),
    ({"order": 3, "momentum": (0.5, 0.5), "position": (1.0,)}, "order = 3; allowed: an even integer"),
    ({"name": "", "momentum": (0.5, 0.5), "position": (1.0,)}, "scheme name = ''; allowed: a non-empty"),
]


@pytest.mark.parametrize("fields,message", BAD_TABLES, ids=[m for _, m in BAD_TABLES])
def test_malformed_tables_are_refused_in_one_line(fields, message):
    with pytest.raises(ValueError, match=message) as info:
        Scheme(**{"name": "bad", "order": 2, **fields})
    assert "\n" not in str(info.value)


def test_a_table_refuses_duplicate_names():
    leap = SCHEMES["leapfrog"]
    with pytest.raises(ValueError, match="scheme name = 'leapfrog'; allowed: a name not already"):
        integrators._table(leap, leap)
