"""The compiled kernels on lqcdml's tensors: shapes in, shapes out.

Links ``[B, d, L..., N, N]``, staggered fermions ``[B, L..., N]``, Wilson fermions
``[B, L..., 4, N]``, all complex; U(1) angles ``[B, d, L...]``, real. Callers check
``dispatch.enabled`` (``enabled_angles`` for angles) first.
"""

from __future__ import annotations

import functools

import torch

from .dispatch import boundary_signs, compiled, enabled_differentiable, geometry


def _lattice(links: torch.Tensor) -> tuple[int, ...]:
    return tuple(links.shape[2 : 2 + links.shape[1]])


def _flat_angles(theta: torch.Tensor) -> torch.Tensor:
    """U(1) angles ``[B, d, L...]`` as ``[B, d, V]``."""
    return theta.contiguous().reshape(theta.shape[0], theta.shape[1], -1)


def _flat_links(links: torch.Tensor) -> torch.Tensor:
    b, d, n = links.shape[0], links.shape[1], links.shape[-1]
    return links.contiguous().reshape(b, d, -1, n, n)


def gauge_force(links: torch.Tensor, beta: float) -> torch.Tensor:
    """``beta / (2N) TA(U_mu(x) A_mu(x))`` (``WilsonGaugeAction.force``), shape of ``links``.

    Lattices whose last extent is a multiple of 8 go row by row (vector loads of
    neighbours); others through neighbour tables (gathers).
    """
    shape = _lattice(links)
    n = links.shape[-1]
    coef = beta / (2.0 * n)
    if len(shape) >= 2 and shape[-1] % 8 == 0:
        row_fwd, row_bwd = geometry(shape[:-1])
        rows = links.contiguous().reshape(links.shape[0], links.shape[1], -1, shape[-1], n, n)
        return compiled().gauge_force_rows(rows, row_fwd, row_bwd, coef).reshape(links.shape)
    fwd, bwd = geometry(shape)
    return compiled().gauge_force(_flat_links(links), fwd, bwd, coef).reshape(links.shape)


@functools.cache
def _staggered_coefficients(shape: tuple[int, ...], antiperiodic: bool, dtype: torch.dtype):
    """``eta_mu(x) s_fwd / 2`` and ``-eta_mu(x) s_bwd / 2``, ``[d, V]`` of the real dtype.

    ``eta_mu(x) = (-1)^(x_0 + ... + x_{mu-1})`` (``theories.staggered``; written here again
    because this package sits below ``lattice`` and imports torch only).
    """
    grids = torch.meshgrid(*[torch.arange(extent) for extent in shape], indexing="ij")
    partial = torch.cumsum(torch.stack([torch.zeros(shape, dtype=torch.long), *grids[:-1]]), dim=0)
    eta = (1 - 2 * (partial % 2)).to(torch.float64).reshape(len(shape), -1)
    sf, sb = boundary_signs(shape, antiperiodic)
    return (0.5 * eta * sf).to(dtype).contiguous(), (-0.5 * eta * sb).to(dtype).contiguous()


def staggered_hop(links: torch.Tensor, psi: torch.Tensor, antiperiodic: bool) -> torch.Tensor:
    """``H psi`` of ``StaggeredOperator.hop``, shape of ``psi``."""
    shape = _lattice(links)
    fwd, bwd = geometry(shape)
    cf, cb = _staggered_coefficients(shape, antiperiodic, links.real.dtype)
    flat = psi.contiguous().reshape(psi.shape[0], -1, psi.shape[-1])
    return compiled().staggered_hop(_flat_links(links), flat, fwd, bwd, cf, cb).reshape(psi.shape)


@functools.cache
def _wilson_signs(shape: tuple[int, ...], antiperiodic: bool, dtype: torch.dtype):
    sf, sb = boundary_signs(shape, antiperiodic)
    return sf.to(dtype).contiguous(), sb.to(dtype).contiguous()


def wilson_hop(links: torch.Tensor, psi: torch.Tensor, antiperiodic: bool) -> torch.Tensor:
    """``sum_mu [(1 - g_mu) U psi(x+mu) + (1 + g_mu) U^dag psi(x-mu)]`` (``WilsonOperator.hop``)."""
    shape = _lattice(links)
    if len(shape) != 4:
        raise ValueError(f"wilson_hop: d = {len(shape)}; allowed: 4")
    fwd, bwd = geometry(shape)
    pf, pb = _wilson_signs(shape, antiperiodic, links.real.dtype)
    flat = psi.contiguous().reshape(psi.shape[0], -1, 4, psi.shape[-1])
    return compiled().wilson_hop(_flat_links(links), flat, fwd, bwd, pf, pb).reshape(psi.shape)


def su3_exp_update(links: torch.Tensor, momenta: torch.Tensor, eps: float) -> torch.Tensor:
    """``exp(i eps P) U`` (``SU.update``): SU(3) links, traceless hermitian P, ``[..., 3, 3]``."""
    return compiled().su3_exp_update(links.contiguous(), momenta.contiguous(), float(eps))


def u1_stout_forward(
    theta: torch.Tensor, rho: torch.Tensor, mus: torch.Tensor, sites: torch.Tensor, with_log_det: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A stack of U(1) masked stout layers (``nn.masked_stout``): layer ``k`` moves the angles of
    direction ``mus[k]`` at the flat sites ``sites[k]`` by ``-rho[k] sum_j sin A_j``. Returns ``(y,
    cos A, sin A, log|det|)``: ``y`` of ``theta``'s shape, the loops' cosines and sines ``[K, B, M,
    2 (d - 1)]`` for ``u1_stout_vjp``, ``log|det| [B]`` (empty unless ``with_log_det``: the force
    needs none). ``rho`` float64 ``[K]``, ``mus`` and ``sites`` int64 ``[K]`` and ``[K, M]``. It runs
    on the phases ``e^{i theta}``: a loop's ``e^{i A_j}`` is a product of its links' phases, a moved
    link's shift ``delta`` enters as ``e^{-i delta}`` (``|delta| < 1``, a polynomial): no
    trigonometric function per link and layer, the result equal to the angles' arithmetic to
    rounding."""
    fwd, bwd = geometry(_lattice(theta))
    y, cos, sin, log_det = compiled().u1_stout_forward(_flat_angles(theta), rho, mus, sites, fwd, bwd, with_log_det)
    return y.reshape(theta.shape), cos, sin, log_det


def u1_stout_vjp(
    cos: torch.Tensor,
    sin: torch.Tensor,
    grad_y: torch.Tensor,
    grad_log_det: float,
    rho: torch.Tensor,
    mus: torch.Tensor,
    sites: torch.Tensor,
) -> torch.Tensor:
    """The vector-Jacobian product of ``u1_stout_forward``'s ``(y, log|det|)`` with cotangents
    ``grad_y`` (angles' shape) and ``grad_log_det`` (a number), from its ``cos A, sin A``."""
    fwd, bwd = geometry(_lattice(grad_y))
    grad = compiled().u1_stout_vjp(cos, sin, _flat_angles(grad_y), float(grad_log_det), rho, mus, sites, fwd, bwd)
    return grad.reshape(grad_y.shape)


def _refuse_second_derivatives(name: str) -> None:
    """A kernel's backward is not itself differentiable: refuse ``create_graph=True`` rather
    than return a second derivative that silently misses the kernel's part."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"{name}: the kernel's backward gives first derivatives only (create_graph=True); "
            "run with LQCDML_KERNELS=torch for higher derivatives"
        )


class _Staples(torch.autograd.Function):
    """A staple kernel (``plaquette_staple``, ``polyakov_staples``: links in, staples of their
    shape out) and its vector-Jacobian product (``<name>_vjp``), both by the kernel."""

    @staticmethod
    def forward(ctx, links: torch.Tensor, name: str) -> torch.Tensor:
        flat = _flat_links(links)
        ctx.save_for_backward(flat)
        ctx.shape, ctx.name = links.shape, name
        fwd, bwd = geometry(_lattice(links))
        return getattr(compiled(), name)(flat, fwd, bwd).reshape(links.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _refuse_second_derivatives(ctx.name)
        (flat,) = ctx.saved_tensors
        fwd, bwd = geometry(tuple(ctx.shape[2 : 2 + ctx.shape[1]]))
        g = grad.contiguous().reshape(flat.shape)
        return getattr(compiled(), f"{ctx.name}_vjp")(flat, g, fwd, bwd).reshape(ctx.shape), None


def plaquette_staple(links: torch.Tensor) -> torch.Tensor:
    """The plaquette staple sum ``S_mu(x)`` of ``nn.gauge_loops.loop_staple(links, "plaquette")``
    (``U_mu(x) S_mu(x)`` is the sum of the plaquettes through the link), links ``[B, d, L...,
    N, N]``, with its vector-Jacobian product by the kernel (first derivatives). Callers check
    ``enabled_differentiable`` first."""
    return _Staples.apply(links, "plaquette_staple")


def polyakov_staples(links: torch.Tensor) -> torch.Tensor:
    """The Polyakov-line staples ``S_mu(x) = U_mu(x + mu) ... U_mu(x + (L_mu - 1) mu)`` of every
    direction (``nn.gauge_loops.polyakov_staples``; ``U_mu(x) S_mu(x)`` is the line through
    ``x``), links ``[B, d, L..., N, N]``, with their vector-Jacobian product by the kernel (first
    derivatives). Callers check ``enabled_differentiable`` first."""
    return _Staples.apply(links, "polyakov_staples")


class _StoutUpdate(torch.autograd.Function):
    """The SU(2) / SU(3) stout update by the kernel, its vector-Jacobian product by the kernel."""

    @staticmethod
    def forward(ctx, links: torch.Tensor, staple: torch.Tensor) -> torch.Tensor:
        links, staple = links.contiguous(), staple.contiguous()
        ctx.save_for_backward(links, staple)
        ctx.name = f"su{links.shape[-1]}_stout_update"
        return getattr(compiled(), ctx.name)(links, staple)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _refuse_second_derivatives(ctx.name)
        links, staple = ctx.saved_tensors
        grad_links, grad_staple = getattr(compiled(), f"{ctx.name}_vjp")(links, staple, grad.contiguous())
        return grad_links, grad_staple


def su2_stout_update(links: torch.Tensor, staple: torch.Tensor) -> torch.Tensor:
    """``exp(-i TH(U S)) U`` for SU(2) links and staples of one shape ``[..., 2, 2]``
    (``nn.stout.stout_update``): ``exp(-i P) = cos r - i (sin r / r) P``, ``r = |p|`` for ``P =
    p_k sigma_k``, per link in closed form, with the vector-Jacobian product in closed form
    (first derivatives). Callers check ``enabled_differentiable`` first."""
    return _StoutUpdate.apply(links, staple)


def su3_stout_update(links: torch.Tensor, staple: torch.Tensor) -> torch.Tensor:
    """``exp(-i TH(U S)) U`` for SU(3) links and staples of one shape ``[..., 3, 3]``
    (``nn.stout.stout_update``): the exponential by the Cayley-Hamilton series of
    ``SU(3).expi`` (halved and squared back where ``|TH(U S)|_F > 4``), with the
    vector-Jacobian product through the differentiated series (first derivatives). Callers
    check ``enabled_differentiable`` first."""
    return _StoutUpdate.apply(links, staple)


class _StoutRotation(torch.autograd.Function):
    """``exp(-i TH(U S)) W`` by the kernel, its vector-Jacobian product by the kernel."""

    @staticmethod
    def forward(ctx, links: torch.Tensor, staple: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        links, staple, target = links.contiguous(), staple.contiguous(), target.contiguous()
        ctx.save_for_backward(links, staple, target)
        return compiled().stout_rotate(links, staple, target)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _refuse_second_derivatives("stout_rotation")
        links, staple, target = ctx.saved_tensors
        grad_links, grad_staple, grad_target = compiled().stout_rotate_vjp(links, staple, target, grad.contiguous())
        return grad_links, grad_staple, grad_target


def stout_rotation(links: torch.Tensor, staple: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``exp(-i TH(U S)) W`` for SU(2) or SU(3) links ``U``, staples ``S`` and rotated links ``W``
    of one shape ``[..., N, N]`` (CASK's attention, ``nn.stout.stout_update`` with a target): the
    exponential and the vector-Jacobian product of ``su2_stout_update`` / ``su3_stout_update``
    (first derivatives). Callers check ``enabled_differentiable`` first."""
    return _StoutRotation.apply(links, staple, target)


class _SmallMatmul(torch.autograd.Function):
    """``op_a(a) @ op_b(b)`` of same-shape ``[..., N, N]`` complex tensors by the kernel, forward
    and backward (``op``: identity or conjugate transpose). For ``C = X Y`` torch's convention
    for complex gradients is ``grad_X = g Y^H``, ``grad_Y = X^H g``; with ``X = A^H`` the
    gradient of ``A`` is ``(grad_X)^H``, likewise for ``B``: every case is one kernel call."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, adj_a: bool, adj_b: bool) -> torch.Tensor:
        a, b = a.contiguous(), b.contiguous()
        ctx.save_for_backward(a, b)
        ctx.adj = (adj_a, adj_b)
        return compiled().small_matmul(a, b, adj_a, adj_b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _refuse_second_derivatives("matmul")
        a, b = ctx.saved_tensors
        adj_a, adj_b = ctx.adj
        g = grad.contiguous()
        k = compiled().small_matmul
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            # X = op_a(A), Y = op_b(B): grad_X = g Y^H; A's gradient is grad_X, or its adjoint
            if not adj_a:
                grad_a = k(g, b, False, not adj_b)  # g op_b(B)^H
            else:
                grad_a = k(b, g, adj_b, True)  # (g Y^H)^H = Y g^H
        if ctx.needs_input_grad[1]:
            # grad_Y = X^H g; B's gradient is grad_Y, or its adjoint g^H X
            if not adj_b:
                grad_b = k(a, g, not adj_a, False)  # op_a(A)^H g
            else:
                grad_b = k(g, a, True, adj_a)  # g^H X
        return grad_a, grad_b, None, None


def matmul(a: torch.Tensor, b: torch.Tensor, adjoint_a: bool = False, adjoint_b: bool = False) -> torch.Tensor:
    """``op(a) @ op(b)`` (``op``: the conjugate transpose where ``adjoint_*``) for batches of
    2 x 2 / 3 x 3 complex matrices: the kernel (with its backward) where ``enabled_differentiable``
    admits the call and shapes and dtypes agree, else torch (broadcasting, other N, CUDA). The
    products of the gauge-covariant networks go through it; no adjoint is materialised."""
    n = a.shape[-1]
    if (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.ndim >= 3
        and a.shape[-2] == n
        and enabled_differentiable(a, b, n=n)
    ):
        return _SmallMatmul.apply(a, b, adjoint_a, adjoint_b)
    return (a.mH if adjoint_a else a) @ (b.mH if adjoint_b else b)
