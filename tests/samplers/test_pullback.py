"""Actions pulled back through a transform: ``S(F(V)) - log|det dF/dV|``, its force by one VJP
against autograd and finite differences, exact HMC on it (field-transformed HMC), and SLHMC's
effective action as the case without a Jacobian term."""

from __future__ import annotations

import math

import pytest
import torch

from lqcdml.lattice import SU, U1, Real, algebra_gradient, make_generators
from lqcdml.nn import (
    AffineCoupling,
    U1EquivariantCoupling,
    checkerboard_masks,
    conv_net,
    phi4_flow,
    stout_net,
    u1_flow,
    u1_plaquette_flow,
)
from lqcdml.samplers import HMC, Integrator, PulledBackAction, SmearedPseudofermion, WithoutJacobian
from lqcdml.samplers.pullback import force_cotangent
from lqcdml.theories import Phi4Action, WilsonGaugeAction
from lqcdml.theories.gauge import plaquette_field
from lqcdml.theories.staggered import StaggeredOperator, StaggeredPseudofermion

from ..helpers import random_links, randomize

DT = torch.float64
PHI4 = Phi4Action(m2=-1.0, lam=1.0)


def _frozen(module: torch.nn.Module, seed: int, std: float) -> torch.nn.Module:
    """Random frozen float64 weights."""
    return randomize(module, seed, std).to(DT).requires_grad_(False)


class StoutWithLogDet(torch.nn.Module):
    """Stout smearing with a stand-in log-determinant ``c sum_P Re tr U_P / N`` of the input
    (gauge invariant and differentiable; not the smearing's Jacobian): it exercises the
    log-det term of the pull-back on SU(N)."""

    def __init__(self, group: SU, c: float) -> None:
        super().__init__()
        self.group, self.c = group, c
        self.net = _frozen(stout_net(group, 4, 2, ("plaquette", "rectangle")), 3, 0.05)

    def forward(self, links):
        re_tr = self.group.re_trace(plaquette_field(links, self.group))
        return self.net(links), self.c * re_tr.reshape(links.shape[0], -1).sum(1)


def _phi4_fields(seed: int, shape=(4, 4), n=3) -> torch.Tensor:
    return 0.8 * torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed), dtype=DT)


def _angles(seed: int, n=3) -> torch.Tensor:
    return U1().haar(make_generators(seed, n), (2, 4, 4))


def _affine(fast: bool | None) -> AffineCoupling:
    even, _ = checkerboard_masks((4, 4))
    return _frozen(AffineCoupling(even, conv_net(2, 1, 2, [4], 3, "tanh", "tanh"), fast=fast), 1, 0.6)


def _cases():
    """(name, pulled-back action, fields)."""
    yield "phi4 affine layer (site lists)", PulledBackAction(PHI4, _affine(None)), _phi4_fields(1)
    yield "phi4 affine layer (masked)", PulledBackAction(PHI4, _affine(False)), _phi4_fields(1)
    flow = _frozen(phi4_flow((4, 4), 3, (4,), activation="tanh"), 2, 0.3)
    yield "phi4 flow", PulledBackAction(PHI4, flow), _phi4_fields(2)
    u1 = WilsonGaugeAction(1.5, U1())
    layer = U1EquivariantCoupling((4, 4), 0, 1, conv_net(2, 4, 6, [4], 3, "tanh", final=None), 2)
    yield "u1 equivariant layer", PulledBackAction(u1, _frozen(layer, 4, 0.3)), _angles(3)
    plaquette_flow = u1_plaquette_flow((4, 4), 2, (4,), n_mix=2, n_partners=2, partner_hidden=(4,))
    yield "u1 plaquette flow", PulledBackAction(u1, _frozen(plaquette_flow, 5, 0.3)), _angles(4)
    for n in (2, 3):
        group = SU(n)
        gauge = WilsonGaugeAction(2.0, group)
        links = random_links(group, (4, 2, 2, 2, 2), seed=n, n_chains=2)
        yield f"su{n} stout with a log-det", PulledBackAction(gauge, StoutWithLogDet(group, 0.7)), links
        net = _frozen(stout_net(group, 4, 1, ("plaquette", "polyakov")), 6, 0.05)
        yield f"su{n} stout without jacobian", PulledBackAction(gauge, WithoutJacobian(net)), links


CASES = list(_cases())
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, pulled, fields", CASES, ids=IDS)
def test_the_action_is_the_target_at_the_transformed_fields_minus_the_log_det(name, pulled, fields):
    y, log_det = pulled.transform(fields)
    expected = pulled.target.action(y) if log_det is None else pulled.target.action(y) - log_det
    assert torch.equal(pulled.action(fields), expected)
    assert pulled.group is pulled.target.group
    if log_det is not None:
        assert float(log_det.abs().min()) > 1e-3  # the Jacobian term is really there


@pytest.mark.parametrize("name, pulled, fields", CASES, ids=IDS)
def test_the_force_is_the_algebra_gradient_of_the_action(name, pulled, fields):
    force = pulled.force(fields)
    reference = algebra_gradient(pulled.action, fields, pulled.group)
    assert force.shape == fields.shape and force.dtype == fields.dtype
    scale = float(reference.abs().max())
    assert scale > 0.1
    assert float((force - reference).abs().max()) < 1e-12 * scale


def _move(group, fields: torch.Tensor, direction: torch.Tensor, t: float) -> torch.Tensor:
    """``exp(i t X) V`` (``V + t X`` on the real line and for angles)."""
    if isinstance(group, SU):
        return group.expi(t * direction) @ fields
    return fields + t * direction


@pytest.mark.parametrize("name, pulled, fields", CASES, ids=IDS)
def test_the_force_matches_finite_differences_along_random_algebra_directions(name, pulled, fields):
    """Per configuration ``dS/dt`` along ``exp(i t X) V`` equals ``sum_a f^a x^a`` (fourth-order
    central differences, ``h = 1e-4``: truncation ~1e-11, rounding ~1e-10) to 1e-8 relative."""
    group = pulled.group
    site_shape = fields.shape[1 : fields.ndim - group.internal_ndim]
    direction = group.random_momentum(make_generators(77, fields.shape[0]), site_shape, dtype=fields.dtype)
    force = pulled.force(fields)
    exact = (group.coefficients(force) * group.coefficients(direction)).flatten(1).sum(1)
    h = 1e-4
    with torch.no_grad():
        s = {k: pulled.action(_move(group, fields, direction, k * h)) for k in (-2, -1, 1, 2)}
    numeric = (8 * (s[1] - s[-1]) - (s[2] - s[-2])) / (12 * h)
    assert float(exact.abs().min()) > 0.1
    assert float(((numeric - exact) / exact).abs().max()) < 1e-8, (numeric, exact)


def test_the_cotangent_of_an_su_n_force_gives_its_directional_derivative():
    """``Re sum conj(2i f U) (i X U) = sum_a f^a x^a``; on the real line and for angles ``G = f``."""
    group = SU(3)
    gens = make_generators(5, 2)
    links = group.haar(gens, (3,))
    f, x = group.random_momentum(gens, (3,)), group.random_momentum(gens, (3,))
    lhs = (force_cotangent(group, links, f).conj() * (1j * x @ links)).real.sum()
    assert abs(float(lhs) - float((group.coefficients(f) * group.coefficients(x)).sum())) < 1e-12
    real = torch.randn(2, 3, dtype=DT)
    assert force_cotangent(Real(), torch.zeros(2, 3, dtype=DT), real) is real


def _pf(group, mass, tol=1e-13):
    return StaggeredPseudofermion(StaggeredOperator(mass, group), 4, tol=tol)


def test_slhmcs_effective_action_is_the_pull_back_without_a_jacobian_term():
    """The same operations: equal bit for bit; thin links: the base action's force to rounding."""
    group = SU(2)
    links = random_links(group, (4, 4, 2, 2, 2), seed=2, n_chains=1)
    net = _frozen(stout_net(group, 4, 2, ("plaquette", "rectangle", "polyakov")), 2, 0.04)
    base = _pf(group, 0.45)
    phi = _pf(group, 0.3).heat_bath(links, make_generators(11, 1))
    effective = SmearedPseudofermion(base, net)
    general = PulledBackAction(base.bind(phi), WithoutJacobian(net))
    assert isinstance(effective.pulled_back(phi), PulledBackAction)
    assert isinstance(effective.pulled_back(phi).transform, WithoutJacobian)
    assert torch.equal(effective.force(links, phi), general.force(links))
    assert torch.equal(effective.action(links, phi), general.action(links))
    thin = SmearedPseudofermion(base, None)
    force = thin.force(links, phi)
    assert torch.equal(force, base.force(links, phi))
    assert float((thin.pulled_back(phi).force(links) - force).abs().max()) < 1e-12 * float(force.abs().max())


# --- field-transformed HMC: HMC on the pulled-back action is exact ------------------------------


def _free_field(action: Phi4Action, shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """Exact draws from ``exp(-S)`` of a free field (``lam = 0``, ``S = x M x / 2``):
    ``x = L^{-T} xi`` with ``M = L L^T``, so that ``cov x = M^{-1}``."""
    dim = math.prod(shape)
    hessian = torch.autograd.functional.hessian(
        lambda v: action.action(v.reshape(1, *shape)).sum(), torch.zeros(dim, dtype=DT)
    )
    chol = torch.linalg.cholesky(hessian)
    xi = torch.randn((dim, n), generator=torch.Generator().manual_seed(seed), dtype=DT)
    return torch.linalg.solve_triangular(chol.mT, xi, upper=True).T.reshape(n, *shape)


def _phi4_hmc() -> tuple[HMC, torch.Tensor, int]:
    """Free field pulled back through a random affine flow; the start ``V = F^{-1}(x)`` with
    exact draws ``x``: in equilibrium from the first trajectory."""
    target = Phi4Action(m2=1.0, lam=0.0)
    flow = _frozen(phi4_flow((4, 4), 2, (4,), activation="tanh"), 7, 0.2)
    with torch.no_grad():
        start = flow.reverse(_free_field(target, (4, 4), 64, 3))[0]
    return HMC(Integrator.single(PulledBackAction(target, flow), 3, "omelyan"), 1.0), start, 0


def _u1_hmc() -> tuple[HMC, torch.Tensor, int]:
    """2D U(1) pulled back through a random gauge-equivariant flow; Haar start, 3 trajectories
    to equilibrate."""
    flow = _frozen(u1_flow((4, 4), 2, (4,), n_mix=2), 9, 0.2)
    pulled = PulledBackAction(WilsonGaugeAction(1.0, U1()), flow)
    return HMC(Integrator.single(pulled, 5, "omelyan"), 1.0), _angles(10, n=48), 3


@pytest.mark.parametrize("build", [_phi4_hmc, _u1_hmc], ids=["phi4 affine flow", "u1 equivariant flow"])
def test_molecular_dynamics_on_a_pulled_back_action_is_reversible(build):
    sampler, fields, _ = build()
    gens = make_generators(3, fields.shape[0])
    p0 = sampler.group.random_momentum(gens, fields.shape[1:], dtype=DT)
    q1, p1 = sampler.integrator(fields, p0, 1.0)
    q2, p2 = sampler.integrator(q1, -p1, 1.0)
    assert float((q1 - fields).abs().max()) > 1e-2
    assert float((q2 - fields).abs().max()) < 1e-10
    assert float((p2 + p0).abs().max()) < 1e-10


@pytest.mark.parametrize("build", [_phi4_hmc, _u1_hmc], ids=["phi4 affine flow", "u1 equivariant flow"])
def test_hmc_on_a_pulled_back_action_has_mean_exp_minus_delta_h_one(build):
    sampler, fields, n_therm = build()
    state = sampler.init(fields, seed=5)
    values = []
    for k in range(n_therm + 8):
        state, info = sampler.step(state)
        if k >= n_therm:
            values.append(torch.exp(-info.delta_H))
    x = torch.stack(values)  # [trajectories, chains]
    per_chain = x.mean(0)
    mean, err = float(per_chain.mean()), float(per_chain.std() / math.sqrt(per_chain.numel()))
    assert float(x.std()) > 0.05  # a real energy violation: the test is not trivially 1
    assert abs(mean - 1) < 4 * err, (mean, err)


@pytest.mark.slow
def test_field_transformed_hmc_samples_the_target_through_the_transform():
    """2D U(1), 4 x 4, beta = 1: HMC on ``V`` with the pulled-back action; the plaquette of
    ``F(V)`` agrees with the exact Bessel-function value."""
    from lqcdml.analysis import estimate
    from lqcdml.analysis.exact import u1_2d_plaquette
    from lqcdml.observables import plaquette

    sampler, fields, n_therm = _u1_hmc()
    flow = sampler.integrator.terms[0].transform
    state = sampler.init(fields, seed=6)
    rows = []
    for k in range(n_therm + 40):
        state, _ = sampler.step(state)
        if k >= n_therm:
            with torch.no_grad():
                rows.append(plaquette(flow(state.fields)[0], U1()))
    est = estimate(torch.stack(rows).numpy())
    assert abs(est.pull(u1_2d_plaquette(1.0, 16))) < 3.5, est
    assert est.error < 0.01
