"""The compiled CPU kernels equal the torch references (1e-13 in double precision).

The install builds the extension (``make``: ``python -m lqcdml.kernels.build``); a missing
build fails here rather than skipping: the kernels are part of the product.
"""

from __future__ import annotations

import pytest
import torch

from lqcdml import kernels
from lqcdml.lattice import SU, make_generators
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.staggered import StaggeredOperator
from lqcdml.theories.wilson_fermion import WilsonOperator

# lattices whose volume is not a multiple of the SIMD lane count (tails) and ones that are
SHAPES_4D = [(4, 3, 5, 2, 3), (4, 4, 4, 4, 2)]
# last extents that are multiples of 8: the force's row-by-row path (one and two blocks a row)
ROW_SHAPES = [(4, 2, 3, 2, 8), (4, 2, 2, 3, 16), (3, 4, 3, 8), (2, 3, 8)]
DOUBLE_TOL = 1e-13


def _links(n: int, shape, n_chains: int, dtype=torch.complex128, seed: int = 3) -> torch.Tensor:
    return SU(n).haar(make_generators(seed, n_chains), shape).to(dtype)


def _field(shape, dtype=torch.complex128, seed: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return torch.complex(torch.randn(shape, generator=gen, dtype=real), torch.randn(shape, generator=gen, dtype=real))


def _close(a: torch.Tensor, b: torch.Tensor, rel: float) -> None:
    scale = b.abs().amax().item()
    assert (a - b).abs().amax().item() <= rel * scale, (
        f"max diff {(a - b).abs().amax().item():.3e} at scale {scale:.3e}"
    )


def test_the_install_built_the_extension():
    assert kernels.mode() == "auto"
    assert kernels.extension() is not None, "compiled kernels missing: run `make .venv/.kernels`"
    links = _links(3, (4, 2, 2, 2, 2), 1)
    assert kernels.enabled(links, n=3)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("shape", SHAPES_4D + ROW_SHAPES + [(3, 4, 3, 5), (2, 6, 5)])
@pytest.mark.parametrize("n_chains", [1, 3])
def test_gauge_force_equals_reference(n, shape, n_chains):
    links = _links(n, shape, n_chains)
    action = WilsonGaugeAction(5.7, SU(n))
    _close(kernels.gauge_force(links, 5.7), action.force_torch(links), DOUBLE_TOL)
    _close(action.force(links), action.force_torch(links), DOUBLE_TOL)  # the dispatch takes it


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("shape", SHAPES_4D + [(3, 4, 3, 6), (2, 6, 4)])
@pytest.mark.parametrize("antiperiodic", [True, False])
def test_staggered_hop_equals_reference(n, shape, antiperiodic):
    links = _links(n, shape, 2)
    psi = _field((2, *shape[1:], n))
    op = StaggeredOperator(0.1, SU(n), antiperiodic)
    _close(kernels.staggered_hop(links, psi, antiperiodic), op.hop_torch(links, psi), DOUBLE_TOL)
    _close(op.hop(links, psi), op.hop_torch(links, psi), DOUBLE_TOL)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("shape", SHAPES_4D)
@pytest.mark.parametrize("antiperiodic", [True, False])
@pytest.mark.parametrize("n_chains", [1, 2])
def test_wilson_hop_equals_reference(n, shape, antiperiodic, n_chains):
    links = _links(n, shape, n_chains)
    psi = _field((n_chains, *shape[1:], 4, n))
    op = WilsonOperator(0.1, SU(n), antiperiodic)
    _close(kernels.wilson_hop(links, psi, antiperiodic), op.hop_torch(links, psi), DOUBLE_TOL)
    _close(op.hop(links, psi), op.hop_torch(links, psi), DOUBLE_TOL)


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.7, 3.0])
def test_su3_update_equals_reference(eps):
    group = SU(3)
    links = _links(3, (4, 3, 5, 2, 3), 2)
    p = group.random_momentum(make_generators(7, 2), (4, 3, 5, 2, 3))
    ref = torch.matmul(group.expi(eps * p), links)
    out = kernels.su3_exp_update(links, p, eps)
    _close(out, ref, DOUBLE_TOL if eps < 1 else 1e-12)  # |eps P| > 4: halving and squaring
    assert group.deviation(out).item() < 1e-13


def test_single_precision_agrees_with_double():
    """complex64 inputs: the float kernels agree with the double reference to float accuracy."""
    for shape in ((4, 3, 5, 2, 3), (4, 2, 3, 2, 8)):
        links = _links(3, shape, 2)
        _close(
            kernels.gauge_force(links.to(torch.complex64), 6.0).to(torch.complex128),
            WilsonGaugeAction(6.0, SU(3)).force_torch(links),
            1e-5,
        )
    links = _links(3, (4, 3, 5, 2, 3), 2)
    psi, spinor = _field((2, 3, 5, 2, 3, 3)), _field((2, 3, 5, 2, 3, 4, 3))
    f32 = links.to(torch.complex64)
    action = WilsonGaugeAction(6.0, SU(3))
    _close(kernels.gauge_force(f32, 6.0).to(torch.complex128), action.force_torch(links), 1e-5)
    _close(
        kernels.staggered_hop(f32, psi.to(torch.complex64), True).to(torch.complex128),
        StaggeredOperator(0.1, SU(3)).hop_torch(links, psi),
        1e-5,
    )
    _close(
        kernels.wilson_hop(f32, spinor.to(torch.complex64), True).to(torch.complex128),
        WilsonOperator(0.1, SU(3)).hop_torch(links, spinor),
        1e-5,
    )


def test_results_do_not_depend_on_the_thread_count():
    links = _links(3, (4, 4, 4, 2, 8), 2)
    psi = _field((2, 4, 4, 2, 8, 4, 3))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = (kernels.gauge_force(links, 6.0), kernels.wilson_hop(links, psi, True))
        torch.set_num_threads(2)
        two = (kernels.gauge_force(links, 6.0), kernels.wilson_hop(links, psi, True))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


def test_non_contiguous_inputs():
    links = _links(3, (4, 4, 4, 2, 2), 2)
    flipped = links.transpose(2, 3)  # a view: another lattice, same physics
    op = StaggeredOperator(0.1, SU(3))
    psi = _field((2, 4, 4, 2, 2, 3)).transpose(1, 2)
    _close(op.hop(flipped, psi), op.hop_torch(flipped.contiguous(), psi.contiguous()), DOUBLE_TOL)


def test_autograd_takes_the_reference_path():
    """A graph to record (links that require grad) goes through torch, and differentiates."""
    links = _links(2, (4, 2, 2, 2, 2), 1).requires_grad_(True)
    psi = _field((1, 2, 2, 2, 2, 2))
    assert not kernels.enabled(links, psi, n=2)
    StaggeredOperator(0.1, SU(2)).hop(links, psi).abs().square().sum().backward()
    assert links.grad is not None and links.grad.abs().sum() > 0
    with torch.no_grad():
        assert kernels.enabled(links, psi, n=2)


def test_mode_setting(monkeypatch):
    links = _links(3, (4, 2, 2, 2, 2), 1)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    assert not kernels.enabled(links, n=3)
    monkeypatch.setenv("LQCDML_KERNELS", "fast")
    with pytest.raises(ValueError, match=r"LQCDML_KERNELS = 'fast'; allowed: auto, torch, extension"):
        kernels.enabled(links, n=3)
    monkeypatch.setenv("LQCDML_KERNEL_ARCH", "skylake")
    from lqcdml.kernels import build

    with pytest.raises(ValueError, match=r"LQCDML_KERNEL_ARCH = 'skylake'; allowed: portable, native"):
        build.tag()


def test_other_groups_and_devices_use_torch():
    links = _links(4, (4, 2, 2, 2, 2), 1)
    assert not kernels.enabled(links, n=4)
    assert not kernels.enabled(links.real, n=3)  # not complex
    action = WilsonGaugeAction(2.0, SU(4))
    assert torch.equal(action.force(links), action.force_torch(links))


@pytest.mark.parametrize("fermion", [None, "staggered", "wilson"])
def test_a_trajectory_follows_the_torch_path(fermion, monkeypatch):
    """One HMC trajectory (gauge, staggered or Wilson fermions) with the kernels and with the
    torch reference: the same end configuration to rounding and the same decision."""
    from lqcdml.assembly import build_sampler, initial_fields
    from lqcdml.config.schema import ChainConfig, EnsembleConfig, SamplerConfig
    from lqcdml.kinds.theories import SUTheory

    theory = {"n_colors": 3, "lattice": [4, 4, 2, 2], "beta": 5.6}
    if fermion:
        theory |= {"fermion": fermion, "fermion_mass": 0.5, "n_flavours": 4 if fermion == "staggered" else 2}
    ens = EnsembleConfig(
        theory=SUTheory(**theory),
        sampler=SamplerConfig(integrator="omelyan", n_steps=6, trajectory_length=0.5),
        chain=ChainConfig(n_chains=2, start="hot"),
    )
    ends = {}
    for mode in ("extension", "torch"):
        monkeypatch.setenv("LQCDML_KERNELS", mode)
        hmc = build_sampler(ens)
        state = hmc.init(initial_fields(ens, make_generators(0, 2), torch.complex128, "cpu"), 1)
        state, info = hmc.step(state)
        ends[mode] = (state.fields, info.accepted, info.delta_H)
    (a, acc_a, dh_a), (b, acc_b, dh_b) = ends["extension"], ends["torch"]
    assert torch.equal(acc_a, acc_b)
    assert (a - b).abs().amax().item() < 1e-11
    assert (dh_a - dh_b).abs().amax().item() < 1e-8


def _u1_stout_flow(shape, n_layers: int = 8, seed: int = 7):
    """A U(1) masked stout flow with random step sizes of both signs (up to 0.95 rho_max)."""
    from lqcdml.lattice import U1
    from lqcdml.nn.masked_stout import masked_stout_flow

    flow = masked_stout_flow(shape, U1(), n_layers)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in flow.layers:
            layer.a.copy_(torch.atanh(0.95 * (2 * torch.rand((), generator=gen, dtype=torch.float64) - 1)))
    return flow


def _angles(shape, n_chains: int, scale: float = 10.0, seed: int = 11) -> torch.Tensor:
    """Angles well outside [-pi, pi] (molecular dynamics does not wrap them)."""
    gen = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand((n_chains, len(shape), *shape), generator=gen, dtype=torch.float64) - 1)


@pytest.mark.parametrize("shape", [(4, 4), (6, 4), (16, 16), (4, 2, 6), (2, 4, 2, 2)])
@pytest.mark.parametrize("n_chains", [1, 3])
def test_u1_stout_stack_and_its_vjp_equal_the_layers(shape, n_chains, monkeypatch):
    """The masked stout kernels against the layers' torch arithmetic: the transformed angles, the
    log-determinant and the pulled-back force (1e-13 of their scale), in 2D, 3D and 4D."""
    flow = _u1_stout_flow(shape)
    theta = _angles(shape, n_chains)
    layers = list(flow.layers)
    rho = torch.stack([layer.rho for layer in layers]).detach()
    y, cos, sin, log_det = kernels.u1_stout_forward(theta, rho, flow._mus, flow._sites, with_log_det=True)
    ref_y, ref_log_det = flow(theta)  # a graph to record (the parameters): the layers' torch path
    assert ref_log_det.requires_grad
    _close(y, ref_y.detach(), DOUBLE_TOL)
    _close(log_det, ref_log_det.detach(), DOUBLE_TOL)
    with torch.no_grad():  # no graph: the flow's forward takes the kernel
        assert torch.equal(flow(theta)[0], y) and torch.equal(flow(theta)[1], log_det)
    assert cos.shape == sin.shape == (len(layers), n_chains, theta[0, 0].numel() // 2, 2 * (len(shape) - 1))
    assert kernels.u1_stout_forward(theta, rho, flow._mus, flow._sites)[3].numel() == 0

    from lqcdml.lattice import U1

    action = WilsonGaugeAction(3.0, U1())
    assert kernels.enabled_angles(theta)
    force = flow.pullback_force(theta, action.force)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    assert not kernels.enabled_angles(theta)
    _close(force, flow.pullback_force(theta, action.force), DOUBLE_TOL)


def test_u1_stout_kernels_in_single_precision_and_on_any_thread_count():
    from lqcdml.lattice import U1

    shape = (8, 8)
    flow = _u1_stout_flow(shape)
    theta = _angles(shape, 4, scale=3.0)
    action = WilsonGaugeAction(3.0, U1())
    double = flow.pullback_force(theta, action.force)
    import copy

    single = copy.deepcopy(flow).to(torch.float32).pullback_force(theta.to(torch.float32), action.force)
    _close(single.to(torch.float64), double, 1e-5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = flow.pullback_force(theta, action.force)
        torch.set_num_threads(2)
        two = flow.pullback_force(theta, action.force)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two) and torch.equal(one, double)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-13), (torch.complex64, 3e-6)])
def test_small_matmul_and_its_backward_equal_torch(n, dtype, tol):
    """``kernels.matmul(a, b, adj_a, adj_b)`` and its gradients against torch's ``op(a) @ op(b)``,
    every combination of adjoints, on a batch that is not a multiple of the grain."""
    a, b, g = (_field((3, 7, 11, n, n), dtype, seed=s) for s in (1, 2, 3))
    for adj_a in (False, True):
        for adj_b in (False, True):
            a1, b1 = a.clone().requires_grad_(), b.clone().requires_grad_()
            out = kernels.matmul(a1, b1, adj_a, adj_b)
            ga, gb = torch.autograd.grad(out, (a1, b1), g)
            a2, b2 = a.clone().requires_grad_(), b.clone().requires_grad_()
            ref = (a2.mH if adj_a else a2) @ (b2.mH if adj_b else b2)
            ha, hb = torch.autograd.grad(ref, (a2, b2), g)
            assert out.grad_fn is not None and "SmallMatmul" in type(out.grad_fn).__name__
            _close(out.detach(), ref.detach(), tol)
            _close(ga, ha, tol)
            _close(gb, hb, tol)


def test_matmul_falls_back_to_torch_where_the_kernel_does_not_apply(monkeypatch):
    a, b = _field((5, 2, 2)), _field((1, 2, 2))  # broadcasting
    assert torch.equal(kernels.matmul(a, b), a @ b)
    c, d = _field((5, 4, 4)), _field((5, 4, 4), seed=6)  # N = 4
    assert torch.equal(kernels.matmul(c, d, True, False), c.mH @ d)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    e = _field((5, 3, 3), seed=7)
    out = kernels.matmul(e.requires_grad_(), e.detach())
    assert out.grad_fn is not None and "SmallMatmul" not in type(out.grad_fn).__name__


@pytest.mark.parametrize(
    "n,shape,n_chains",
    [(2, (4, 4, 4, 2, 2), 3), (3, (4, 2, 3, 4, 5), 2), (2, (2, 5, 3), 2), (3, (3, 2, 2, 3), 1)],
)
def test_plaquette_staple_and_its_vjp_equal_the_torch_staple(n, shape, n_chains, monkeypatch):
    """``kernels.plaquette_staple`` and its vector-Jacobian product against the torch gathers of
    ``nn.gauge_loops`` (``LQCDML_KERNELS=torch``), d = 2, 3, 4, odd extents and extent 2 included."""
    from lqcdml.nn.gauge_loops import loop_staple

    links = _links(n, shape, n_chains)
    g = _field(links.shape, seed=8)
    a = links.clone().requires_grad_()
    out = loop_staple(a, "plaquette")
    assert type(out.grad_fn).__name__ == "_StaplesBackward"
    (grad,) = torch.autograd.grad(out, a, g)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    b = links.clone().requires_grad_()
    ref = loop_staple(b, "plaquette")
    (ref_grad,) = torch.autograd.grad(ref, b, g)
    _close(out.detach(), ref.detach(), 1e-13)
    _close(grad, ref_grad, 1e-13)


def test_plaquette_staple_is_covariant_and_refuses_second_derivatives():
    """``S_mu(x) -> Omega(x + mu) S_mu(x) Omega(x)^dag`` to 1e-13, complex64 to float accuracy;
    ``create_graph=True`` through the kernel raises instead of dropping the kernel's part of a
    second derivative."""
    from lqcdml.lattice import gauge_transform, shift

    group, shape = SU(3), (4, 4, 2, 2, 2)
    links = _links(3, shape, 2)
    omega = group.haar(make_generators(4, 2), shape[1:])
    s = kernels.plaquette_staple(links)
    rotated = kernels.plaquette_staple(gauge_transform(links, omega, group))
    expected = torch.stack([shift(omega, mu, 1) @ s[:, mu] @ omega.mH for mu in range(shape[0])], dim=1)
    _close(rotated, expected, 1e-13)
    _close(kernels.plaquette_staple(links.to(torch.complex64)).to(torch.complex128), s, 1e-5)  # float kernels
    a = links.clone().requires_grad_()
    (grad,) = torch.autograd.grad(kernels.plaquette_staple(a).real.sum(), a, create_graph=False)
    assert grad.shape == links.shape
    with pytest.raises(RuntimeError, match=r"plaquette_staple: the kernel's backward gives first derivatives only"):
        torch.autograd.grad(kernels.plaquette_staple(a).real.sum(), a, create_graph=True)
    with pytest.raises(RuntimeError, match=r"matmul: the kernel's backward gives first derivatives only"):
        torch.autograd.grad(kernels.matmul(a, a).real.sum(), a, create_graph=True)


@pytest.mark.parametrize(
    "n,shape,n_chains",
    [(2, (4, 4, 4, 2, 2), 3), (3, (4, 2, 3, 4, 5), 2), (2, (3, 6, 1, 2), 2), (3, (2, 7, 3), 1), (2, (1, 5), 2)],
)
def test_polyakov_staples_and_their_vjp_equal_the_torch_lines(n, shape, n_chains, monkeypatch):
    """``kernels.polyakov_staples`` and its vector-Jacobian product against the torch gathers of
    ``nn.gauge_loops`` (``LQCDML_KERNELS=torch``): d = 1 .. 4, unequal extents, extents 1 (the
    identity, no gradient), 2 (one factor) and 3 .. 7."""
    from lqcdml.nn.gauge_loops import polyakov_staples

    links = _links(n, shape, n_chains)
    g = _field(links.shape, seed=11)
    a = links.clone().requires_grad_()
    out = polyakov_staples(a)
    assert type(out.grad_fn).__name__ == "_StaplesBackward"
    (grad,) = torch.autograd.grad(out, a, g)
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    b = links.clone().requires_grad_()
    ref = polyakov_staples(b)
    assert type(ref.grad_fn).__name__ != "_StaplesBackward"
    (ref_grad,) = torch.autograd.grad(ref, b, g)
    _close(out.detach(), ref.detach(), 1e-13)
    _close(grad, ref_grad, 1e-13)


def test_polyakov_staples_are_covariant_and_close_the_lines():
    """``S_mu(x) -> Omega(x + mu) S_mu(x) Omega(x)^dag`` to 1e-13; ``tr U_mu(x) S_mu(x)`` is the same
    Polyakov line at every ``x`` of a line (the trace is cyclic); complex64 to float accuracy;
    ``create_graph=True`` through the kernel raises."""
    from lqcdml.lattice import gauge_transform, shift

    group, shape = SU(3), (4, 3, 4, 2, 5)
    links = _links(3, shape, 2)
    omega = group.haar(make_generators(5, 2), shape[1:])
    s = kernels.polyakov_staples(links)
    rotated = kernels.polyakov_staples(gauge_transform(links, omega, group))
    expected = torch.stack([shift(omega, mu, 1) @ s[:, mu] @ omega.mH for mu in range(shape[0])], dim=1)
    _close(rotated, expected, 1e-13)
    lines = (links @ s).diagonal(dim1=-2, dim2=-1).sum(-1)  # [B, d, L...]
    for mu in range(shape[0]):
        _close(lines[:, mu], shift(lines[:, mu], mu, 1), 1e-13)
    _close(kernels.polyakov_staples(links.to(torch.complex64)).to(torch.complex128), s, 1e-5)
    a = links.clone().requires_grad_()
    with pytest.raises(RuntimeError, match=r"polyakov_staples: the kernel's backward gives first derivatives only"):
        torch.autograd.grad(kernels.polyakov_staples(a).real.sum(), a, create_graph=True)


@pytest.mark.parametrize(
    ("n", "scale"), [(2, 1.0), (2, 0.05), (2, 1e-4), (2, 0.0), (3, 6.0), (3, 1.0), (3, 0.05), (3, 1e-4), (3, 0.0)]
)
def test_stout_update_and_its_vjp_equal_the_torch_update(n, scale, monkeypatch):
    """``nn.stout.stout_update`` on SU(2) and SU(3) through the kernel against the torch reference
    (``LQCDML_KERNELS=torch``), forward and both gradients. SU(2): rotation angles of order one
    down to the series regimes of ``sin r / r`` and ``(cos r - sin r / r) / r^2`` and exactly 0.
    SU(3): from ``|TH(U S)|_F`` ~ 25 (the argument halved and the exponential squared back,
    through which the VJP runs) down to the leading terms of the series and exactly 0."""
    from lqcdml.nn.stout import stout_update

    group = SU(n)
    links = _links(n, (4, 3, 2, 5), 2)
    staple = scale * _field(links.shape, seed=9)
    g = _field(links.shape, seed=10)

    def run():
        u, s = links.clone().requires_grad_(), staple.clone().requires_grad_()
        out = stout_update(group, u, s)
        return (out.detach(), *torch.autograd.grad(out, (u, s), g)), out.grad_fn

    (out, gu, gs), fn = run()
    assert "StoutUpdate" in type(fn).__name__
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    (ref, hu, hs), fn = run()
    assert "StoutUpdate" not in type(fn).__name__
    _close(out, ref, 1e-13)
    _close(gu, hu, 1e-13 if n == 2 else 1e-12)
    _close(gs, hs, 1e-12 if scale else 1e-13)
    if scale == 1.0:  # the update stays in SU(N); complex64 agrees to float accuracy
        assert group.deviation(out).item() < 1e-13
        monkeypatch.setenv("LQCDML_KERNELS", "auto")
        update = kernels.su2_stout_update if n == 2 else kernels.su3_stout_update
        f32 = update(links.to(torch.complex64), staple.to(torch.complex64))
        _close(f32.to(torch.complex128), ref, 1e-5)


@pytest.mark.parametrize(("n", "scale"), [(2, 1.0), (2, 0.0), (3, 6.0), (3, 1.0), (3, 0.0)])
def test_the_rotation_of_another_link_and_its_vjp_equal_the_torch_path(n, scale, monkeypatch):
    """``exp(-i TH(U S)) W`` (CASK's attention update, ``stout_update`` with a target) through
    the kernel against the torch reference: forward and the gradients of ``U``, ``S`` and ``W``."""
    from lqcdml.nn.stout import stout_update

    group = SU(n)
    links, target = _links(n, (4, 3, 2, 5), 2), _links(n, (4, 3, 2, 5), 2, seed=4)
    staple = scale * _field(links.shape, seed=9)
    g = _field(links.shape, seed=10)

    def run():
        u, s, w = (t.clone().requires_grad_() for t in (links, staple, target))
        out = stout_update(group, u, s, w)
        return (out.detach(), *torch.autograd.grad(out, (u, s, w), g)), out.grad_fn

    (out, *grads), fn = run()
    assert "StoutRotation" in type(fn).__name__
    monkeypatch.setenv("LQCDML_KERNELS", "torch")
    (ref, *refs), _ = run()
    _close(out, ref, 1e-13)
    for a, b in zip(grads, refs):
        _close(a, b, 1e-12)


def test_a_nan_or_infinite_argument_gives_nan_not_an_endless_series():
    """The SU(3) series stop on a term bound: a NaN or infinite momentum or staple (a diverged
    trajectory) must come back as NaN for the Metropolis test to reject, not hang the chain."""
    eye = torch.eye(3, dtype=torch.complex128).expand(2, 3, 3).contiguous()
    bad = torch.zeros(2, 3, 3, dtype=torch.complex128)
    for value in (float("nan"), float("inf")):
        bad[0, 0, 1] = value
        for out in (kernels.su3_exp_update(eye, bad, 0.1), kernels.su3_stout_update(eye, bad)):
            assert torch.isnan(out[0]).any() and torch.equal(out[1], eye[1])
