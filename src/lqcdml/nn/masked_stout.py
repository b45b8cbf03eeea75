"""Masked stout layers: invertible gauge-covariant field transformations with exact Jacobians.

A layer ``(mu, parity)`` moves the links ``U_mu(x)`` whose site has ``sum_{nu != mu} x_nu % 2 ==
parity`` by one stout step towards their staples,

    ``U' = exp(-i rho TH(U S)) U``,   ``S = sum_{nu != mu} [S_up + S_down]``,

with ``S_up = U_nu(x + mu) U_mu(x + nu)^dag U_nu(x)^dag`` and ``S_down = U_nu(x + mu - nu)^dag
U_mu(x - nu)^dag U_nu(x - nu)`` (as ``theories.gauge.staple_sum``), ``TH(X) = (X - X^dag) / 2i``
minus its trace (``SU.traceless_hermitian``). For ``rho > 0`` it is a step of the Wilson flow
(it raises ``Re tr U S``). U(1), with angles: ``theta' = theta - rho Im(e^{i theta} c)``,
``c = sum e^{i s}`` over the staples' angles.

Why it is exact. The staples of an updated link contain no updated link (the ``mu``-links at
``x +- nu`` have the other parity; other directions are not moved): each updated link is a
function of itself and of fixed links only, so the Jacobian is block-diagonal, one block per
updated link (1 x 1 for U(1): ``1 - rho Re(e^{i theta} c)``; ``(N^2 - 1)^2`` for SU(N), in
left-invariant coordinates ``U -> exp(i w^a t^a) U``, which carry the Haar measure). With
``|rho| < rho_max = 1 / (2 (d - 1))`` (``|S| <= 2 (d - 1)``) the map of one link is a
contraction away from the identity, hence a bijection of the group: its inverse is the fixed
point of ``U = exp(+i rho TH(U S)) U'`` (SU(N)), or the root of a monotone circle map (U(1),
bracketed Newton). ``rho = rho_max tanh(a)`` with one trainable ``a`` per layer (0: the identity).

Gauge covariance: under ``U_mu(x) -> g(x) U_mu(x) g(x + mu)^dag``, ``U S -> g(x) U S g(x)^dag``,
so ``U' -> g(x) U' g(x + mu)^dag`` and the log-Jacobian is invariant. ``masked_stout_stack``
cycles over the ``2 d`` masks, so ``2 d`` layers move every link once. Links: U(1) angles ``[B,
d, L...]``, SU(N) ``[B, d, L..., N, N]``; every extent but ``L_mu`` even (all even for a stack).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn

from .. import kernels
from ..lattice import SU, U1, shift
from .flow import FlowModel
from .prior import HaarPrior, UniformAnglePrior
from .transform import InvertibleLayer

__all__ = [
    "MaskedLinkStep",
    "MaskedStout",
    "U1MaskedStoutFlow",
    "masked_cycle",
    "masked_prior",
    "masked_stout_flow",
    "masked_stout_mask",
    "masked_stout_stack",
]

_INVERSE_TOL = 1e-13
_INVERSE_MAX_ITER = 200


def masked_stout_mask(shape: tuple[int, ...], mu: int, parity: int) -> torch.Tensor:
    """Boolean ``[L...]``: the sites whose ``U_mu`` layer ``(mu, parity)`` moves. ``ValueError``
    unless ``0 <= mu < d``, ``parity`` is 0 or 1 and every extent but ``L_mu`` is even."""
    d = len(shape)
    if d < 2:
        raise ValueError(f"masked stout: lattice shape {tuple(shape)}; allowed: two or more extents")
    if not 0 <= mu < d:
        raise ValueError(f"masked stout: mu = {mu!r}; allowed: 0 .. {d - 1}")
    if parity not in (0, 1):
        raise ValueError(f"masked stout: parity = {parity!r}; allowed: 0 or 1")
    odd = [nu for nu in range(d) if nu != mu and shape[nu] % 2]
    if odd:
        raise ValueError(f"masked stout (mu = {mu}): L_{odd[0]} = {shape[odd[0]]}; allowed: even extents across mu")
    coords = torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij")
    return sum((coords[nu] for nu in range(d) if nu != mu), torch.zeros(shape, dtype=torch.long)) % 2 == parity


class MaskedLinkStep(InvertibleLayer, ABC):
    """A step ``(mu, parity)`` that moves the links of ``masked_stout_mask`` by ``U' = exp(-i rho
    TH(U C)) U`` (U(1): ``theta' = theta - Im(e^{i theta} c)``) with a coupling ``C`` built from fixed
    links only (``_su_coupling``, ``_u1_weights``): the Jacobian, its inverse and its determinant
    of the module docstring hold for any such ``C`` with ``|rho C| < 1``. ``MaskedStout``: ``C`` the
    staple sum; ``nn.masked_cask.MaskedCASK``: attention-weighted staples."""

    mask: torch.Tensor

    def __init__(self, shape: tuple[int, ...], group: U1 | SU, mu: int, parity: int) -> None:
        super().__init__()
        if not isinstance(group, (U1, SU)):
            raise TypeError(f"{type(self).__name__}: group {group!r}; allowed: U1() or SU(n)")
        self.shape, self.group, self.mu = tuple(int(n) for n in shape), group, mu
        self.register_buffer("mask", masked_stout_mask(self.shape, mu, parity))

    @property
    def n_staples(self) -> int:
        """The staples of a moved link: ``2 (d - 1)``."""
        return 2 * (len(self.shape) - 1)

    @abstractmethod
    def _u1_weights(self, s: torch.Tensor) -> torch.Tensor:
        """U(1): the staples' weights ``w_j`` given their angles ``s`` ``[2 (d - 1), B, L...]`` (fixed
        links): a number (0-d, one weight for all) or ``[2 (d - 1), B, L...]``; ``sum_j |w_j| < 1``."""

    @abstractmethod
    def _su_coupling(self, links: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(C, rho, c)``: the layer moves ``U_mu(x)`` to ``exp(-i rho TH(U C)) U`` with ``C`` of
        fixed links, ``[B, L..., N, N]``; ``c >= |rho| |C|`` (operator norm) at every link, ``c < 1``
        (the inverse's contraction and the series of ``_su_log_det``)."""

    def _replace(self, links: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        mask = self.mask.reshape(self.mask.shape + (1,) * (moved.ndim - 1 - self.mask.ndim))
        new = torch.where(mask, moved, links[:, self.mu])
        return torch.cat([links[:, : self.mu], new.unsqueeze(1), links[:, self.mu + 1 :]], dim=1)

    def _masked_sum(self, per_link: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, per_link, 0.0).flatten(1).sum(1)

    # --- U(1) ----------------------------------------------------------------------------------
    def _u1_staple_angles(self, theta: torch.Tensor) -> torch.Tensor:
        """The staples' angles ``s`` of ``theta_mu(x)`` (fixed links only), ``[2 (d - 1), B, L...]``:
        per ``nu != mu`` the staple above (``theta_nu(x+mu) - theta_mu(x+nu) - theta_nu(x)``), then
        the one below (``-theta_nu(x+mu-nu) - theta_mu(x-nu) + theta_nu(x-nu)``); the loops' angles
        are ``A = theta_mu(x) + s``."""
        mu, s = self.mu, []
        for nu in range(theta.shape[1]):
            if nu == mu:
                continue
            t_mu, t_nu = theta[:, mu], theta[:, nu]
            s.append(shift(t_nu, mu) - shift(t_mu, nu) - t_nu)
            below = shift(t_nu, nu, -1)
            s.append(-shift(below, mu) - shift(t_mu, nu, -1) + below)
        return torch.stack(s)

    def _u1_coupling(self, theta: torch.Tensor) -> torch.Tensor:
        """``c = sum_j w_j e^{i s_j}`` over the staples of ``theta_mu(x)``, ``[B, L...]``: the layer
        moves ``theta_mu(x)`` to ``theta - Im(e^{i theta} c)`` (fixed links only)."""
        s_all = self._u1_staple_angles(theta)
        return _weighted_sum(self._u1_weights(s_all), torch.complex(torch.cos(s_all), torch.sin(s_all)))

    def _u1_step(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """U(1) forward without the log-determinant: ``(F(theta), cos A, sin A, w)`` with the loops'
        angles ``A = theta_mu(x) + s`` ``[2 (d - 1), B, L...]`` and the staples' weights ``w``."""
        s_all = self._u1_staple_angles(theta)
        w = self._u1_weights(s_all)
        angles = theta[:, self.mu].unsqueeze(0) + s_all
        cos, sin = torch.cos(angles), torch.sin(angles)
        return self._replace(theta, theta[:, self.mu] - _weighted_sum(w, sin)), cos, sin, w

    def _u1_forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``_u1_step`` and ``log|det| = sum log(1 - sum_j w_j cos A_j)``: the arithmetic of the
        written-out force too, so that action and force agree to the last bit."""
        y, cos, _, w = self._u1_step(theta)
        return y, self._masked_sum(torch.log1p(-_weighted_sum(w, cos)))

    def _u1_reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root of ``theta - Im(e^{i theta} c) = theta'`` in ``[theta' - |c|, theta' + |c|]`` (``c``:
        ``_u1_coupling``): bisection to a narrow bracket, then Newton (monotone: ``1 - Re > 0``)."""
        target, c = y[:, self.mu], self._u1_coupling(y)  # the staples are fixed by the layer
        radius = c.abs() + 1e-12
        lo, hi = target - radius, target + radius

        def g(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = torch.polar(torch.ones_like(t), t) * c
            return t - z.imag - target, 1 - z.real

        with torch.no_grad():
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                up = g(mid)[0] > 0
                lo, hi = torch.where(up, lo, mid), torch.where(up, mid, hi)
        t = 0.5 * (lo + hi)
        for _ in range(3):  # Newton; the last steps carry the derivatives of the inverse
            value, slope = g(t)
            t = t - value / slope
        x = self._replace(y, t)
        _, log_det = self._u1_forward(x)
        return x, -log_det

    # --- SU(N) ---------------------------------------------------------------------------------
    def _su_staple_list(self, links: torch.Tensor) -> list[torch.Tensor]:
        """The ``2 (d - 1)`` staples of direction ``mu`` at every site, ``[B, L..., N, N]`` each: per
        ``nu != mu`` the one above, then the one below (the order of ``_u1_staple_angles``)."""
        mu, staples = self.mu, []
        u_mu = links[:, mu]
        for nu in range(links.shape[1]):
            if nu == mu:
                continue
            u_nu = links[:, nu]
            u_nu_xmu = shift(u_nu, mu)
            staples.append(u_nu_xmu @ (u_nu @ shift(u_mu, nu)).mH)  # U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag
            staples.append(shift(u_nu_xmu.mH @ u_mu.mH @ u_nu, nu, -1))  # the staple below, from x - nu
        return staples

    def _su_staples(self, links: torch.Tensor) -> torch.Tensor:
        """The staple sum ``S`` of direction ``mu`` at every site, ``[B, L..., N, N]``."""
        total = torch.zeros_like(links[:, self.mu])
        for staple in self._su_staple_list(links):
            total = total + staple
        return total

    def _su_step(self, u: torch.Tensor, staples: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """``exp(-i rho TH(U S)) U`` for links ``u`` and staple sums ``staples`` of one direction."""
        group = self.group
        assert isinstance(group, SU)
        return group.expi(-rho * group.traceless_hermitian(u @ staples)) @ u

    def _su_log_det(self, u: torch.Tensor, staples: torch.Tensor, rho: torch.Tensor, bound: float) -> torch.Tensor:
        """``log|det|`` of the per-link Jacobian in left-invariant coordinates, ``[B, L...]``.

        With ``M = U S``, ``H = TH(M)``, ``E = exp(-i rho H)``: along ``U -> exp(i eps X) U``,
        ``dU' U'^dag = i eps [Ad_E X - rho int_0^1 Ad_{E_s} TH(i X M) ds]``, ``E_s = exp(-i s rho H)``.
        ``Ad_E`` has determinant 1, so ``det J = det(1 - rho Phi K)`` on the algebra, with ``K_ba =
        2 Re tr(t^b t^a M)`` (the coefficients of ``TH(i t^a M)``) and ``Phi = int_0^1 exp(u A) du``,
        ``A_ba = 2 i rho tr(H [t^a, t^b])`` (``Y -> i rho [H, Y]``). ``Phi = sum_k A^k / (k + 1)!`` by
        Horner's rule, to the order ``K`` where the tail bound ``a^(K+1) / (K+2)!`` falls below the
        dtype's resolution: ``|A| <= 2 |rho H|`` and ``|H| <= 2 (1 - 1/N) |M|`` (the traceless part
        of a hermitian matrix), so ``a = 4 (1 - 1/N) c`` with ``c = bound >= |rho S|``
        (``_su_coupling``): at most 25 terms in float64 (``a < 8/3``). Evaluated on the moved links only (the
        others give 0)."""
        group = self.group
        assert isinstance(group, SU)
        products, commutators = _generator_products(group, u.dtype, u.device)
        m = (u @ staples)[:, self.mask]  # [B, moved links, N, N]
        k = 2 * torch.einsum("baij,...ji->...ba", products, m).real
        a = rho * (2j * torch.einsum("abij,...ji->...ba", commutators, group.traceless_hermitian(m))).real
        eye = torch.eye(group.algebra_dim, dtype=a.dtype, device=a.device)
        phi = eye
        for order in range(_phi_terms(4 * (1 - 1 / group.n) * bound, a.dtype), 0, -1):
            phi = eye + (a @ phi) / (order + 1)
        log_det = torch.zeros(u.shape[:-2], dtype=a.dtype, device=a.device)
        log_det[:, self.mask] = torch.linalg.slogdet(eye - rho * phi @ k)[1]
        return log_det

    def _su_forward(self, links: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(self.group, SU)
        u, (staples, rho, bound) = links[:, self.mu], self._su_coupling(links)
        moved = self._su_step(u, staples, rho)
        return self._replace(links, moved), self._masked_sum(self._su_log_det(u, staples, rho, bound))

    def _su_reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed point of ``U = exp(+i rho TH(U S)) U'`` (a contraction: ``|rho S| < 1``)."""
        group = self.group
        assert isinstance(group, SU)
        target, (staples, rho, bound) = y[:, self.mu], self._su_coupling(y)
        u = target
        with torch.no_grad():
            for _ in range(_INVERSE_MAX_ITER):
                nxt = group.expi(rho * group.traceless_hermitian(u @ staples)) @ target
                done = (nxt - u).abs().amax() < _INVERSE_TOL
                u = nxt
                if done:
                    break
        if torch.is_grad_enabled():  # one more step on the graph: exact first derivatives
            u = group.expi(rho * group.traceless_hermitian(u.detach() @ staples)) @ target
        x = self._replace(y, u)
        return x, -self._masked_sum(self._su_log_det(u, staples, rho, bound))

    # --- contract --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F(x), log|det dF/dx|)``: links of ``x``'s shape, ``[B]``."""
        return self._u1_forward(x) if isinstance(self.group, U1) else self._su_forward(x)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F^{-1}(y), log|det dF^{-1}/dy|)``."""
        return self._u1_reverse(y) if isinstance(self.group, U1) else self._su_reverse(y)


class MaskedStout(MaskedLinkStep):
    """One masked stout step ``(mu, parity)`` on U(1) or SU(N) links of lattice ``shape`` (the
    module docstring): ``C`` the staple sum, one trainable step size; starts as the identity."""

    def __init__(self, shape: tuple[int, ...], group: U1 | SU, mu: int, parity: int) -> None:
        super().__init__(shape, group, mu, parity)
        self.rho_max = 1.0 / self.n_staples
        self.a = nn.Parameter(torch.zeros((), dtype=torch.float64))

    @property
    def rho(self) -> torch.Tensor:
        """The step size ``rho_max tanh(a)``, ``|rho| < rho_max``."""
        return self.rho_max * torch.tanh(self.a)

    def _u1_weights(self, s: torch.Tensor) -> torch.Tensor:
        return self.rho.to(s.dtype)

    def _su_coupling(self, links: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(S, rho, |rho| 2 (d - 1))``: the staple sum (``|S| <= 2 (d - 1)``) and the step size."""
        rho = self.rho.to(links.real.dtype)
        return self._su_staples(links), rho, abs(float(rho.detach())) * self.n_staples

    def u1_step(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """U(1) forward without the log-determinant, for ``u1_vjp``: ``(F(theta), cos A, sin A)``
        with the loops' angles ``A = theta_mu(x) + s`` ``[2 (d - 1), B, L...]``."""
        return self._u1_step(theta)[:3]

    def u1_vjp(self, cos: torch.Tensor, sin: torch.Tensor, grad_y: torch.Tensor, grad_log_det: float) -> torch.Tensor:
        """U(1): the vector-Jacobian product of ``(F(theta), log|det|)`` with cotangents ``grad_y``
        (fields' shape) and ``grad_log_det`` (a number), given ``u1_step``'s ``cos A, sin A`` at
        ``theta``, written out: ``F`` moves ``theta' = theta - rho sum_j sin A_j``, ``log|det| = sum
        log D``, ``D = 1 - rho sum_j cos A_j``; with ``G_j = -rho cos A_j g + grad_log_det rho sin
        A_j / D`` on moved links the gradient is ``g``, plus ``sum_j G_j`` on the moved link and
        ``+-G_j`` moved back to the links of staple ``j``. No graph (frozen parameters)."""
        rho, mu = float(self.rho), self.mu
        denominator = 1 - rho * cos.sum(0)
        g = grad_y[:, mu]
        big_g = torch.where(self.mask, -rho * cos * g + (grad_log_det * rho) * sin / denominator, 0.0)
        grad = grad_y.clone()
        grad[:, mu] += big_g.sum(0)
        j = 0
        for nu in range(grad_y.shape[1]):
            if nu == mu:
                continue
            up, down = big_g[j], big_g[j + 1]
            down_nu = shift(down, nu, 1)  # G(x + nu): the staple below x + nu holds links at x
            grad[:, nu] += shift(up, mu, -1) - up - shift(down_nu, mu, -1) + down_nu
            grad[:, mu] -= shift(up, nu, -1) + down_nu
            j += 2
        return grad


def _weighted_sum(w: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
    """``sum_j w_j terms_j`` over the staples (axis 0): ``w`` a number (``w sum_j terms_j``) or per
    staple and link."""
    return w * terms.sum(0) if w.ndim == 0 else (w * terms).sum(0)


def _phi_terms(a: float, dtype: torch.dtype) -> int:
    """Terms of ``Phi = sum_k A^k / (k + 1)!`` for ``|A| <= a``: the first ``K`` with ``a^(K+1) /
    (K+2)!`` below the resolution of ``dtype`` (at least 1)."""
    eps = torch.finfo(dtype).eps / 4
    k, tail = 1, a * a / 6
    while tail > eps and k < 40:
        k += 1
        tail *= a / (k + 2)
    return k


def _generator_products(group: SU, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t^a t^b, t^a t^b - t^b t^a)``, ``[A, A, N, N]`` each, for the generators of ``group``."""
    t = group.generators(dtype, device)
    products = t[:, None] @ t[None, :]
    return products, products - products.transpose(0, 1)


class U1MaskedStoutFlow(FlowModel):
    """A flow of U(1) masked stout layers that also computes the pulled-back force itself
    (``nn.transform.PullbackForce``): the forward pass keeps each layer's loop angles' cosines and
    sines, the backward pass is the layers' written-out ``u1_vjp`` in reverse order (equal to
    autograd's to rounding, at a fraction of its cost). Where the compiled kernels take the call
    (``kernels.enabled_angles``: CPU, float32/float64, and no graph to record) both passes run as
    one kernel each (``kernels.u1_stout_forward``, ``u1_stout_vjp``: the same map, equal to the
    layers' arithmetic to rounding), and so does the forward map itself."""

    _mus: torch.Tensor
    _sites: torch.Tensor

    def __init__(self, prior: UniformAnglePrior, layers: Sequence[MaskedStout]) -> None:
        super().__init__(prior, layers)
        # the kernels' tables: each layer's direction and moved sites (flat, ascending); derived
        # from the masks, so not part of the state
        self.register_buffer("_mus", torch.tensor([layer.mu for layer in layers]), persistent=False)
        sites = [layer.mask.flatten().nonzero().squeeze(1) for layer in layers]
        self.register_buffer(
            "_sites", torch.stack(sites) if sites else torch.zeros(0, 0, dtype=torch.long), persistent=False
        )

    def _rho(self) -> torch.Tensor:
        """Every layer's step size at once, float64 ``[K]`` (one ``rho_max``: one ``d``)."""
        layers = [cast(MaskedStout, layer) for layer in self.layers]
        return layers[0].rho_max * torch.tanh(torch.stack([layer.a for layer in layers]).to(torch.float64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F(x), log|det dF/dx|)``; one kernel call where no graph is recorded (the Hamiltonian
        and the chain fields of field-transformed HMC), the layers otherwise (training)."""
        recording = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        if len(self.layers) and not recording and kernels.enabled_angles(x):
            y, _, _, log_det = kernels.u1_stout_forward(x, self._rho(), self._mus, self._sites, with_log_det=True)
            return y, log_det
        return super().forward(x)

    def pullback_force(
        self, fields: torch.Tensor, target_force: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``d/dV [S(F(V)) - log|det dF/dV|]`` given ``target_force(U) = dS/dU``; shape of ``fields``."""
        layers = [cast(MaskedStout, layer) for layer in self.layers]
        with torch.no_grad():
            if len(layers) and kernels.enabled_angles(fields):
                rho = self._rho()
                y, cos, sin, _ = kernels.u1_stout_forward(fields, rho, self._mus, self._sites)
                return kernels.u1_stout_vjp(cos, sin, target_force(y), -1.0, rho, self._mus, self._sites)
            kept = []
            x = fields.detach()
            for layer in layers:
                x, cos, sin = layer.u1_step(x)
                kept.append((cos, sin))
            grad = target_force(x)
            for layer, (cos, sin) in zip(reversed(layers), reversed(kept)):
                grad = layer.u1_vjp(cos, sin, grad, -1.0)
        return grad


def masked_stout_flow(shape: tuple[int, ...], group: U1 | SU, n_layers: int) -> FlowModel:
    """Haar prior (uniform angles for U(1)) and ``masked_stout_stack(shape, group, n_layers)``:
    the transform of field-transformed HMC (U(1): a ``U1MaskedStoutFlow``)."""
    stack = masked_stout_stack(shape, group, n_layers)
    prior = masked_prior(shape, group)
    return U1MaskedStoutFlow(prior, stack) if isinstance(prior, UniformAnglePrior) else FlowModel(prior, stack)


def masked_stout_stack(shape: tuple[int, ...], group: U1 | SU, n_layers: int) -> list[MaskedStout]:
    """``n_layers`` masked stout layers over ``masked_cycle``; all start as the identity."""
    return [MaskedStout(shape, group, mu, parity) for mu, parity in masked_cycle(shape, n_layers, "masked stout")]


def masked_cycle(shape: tuple[int, ...], n_layers: int, name: str) -> list[tuple[int, int]]:
    """``(mu, parity)`` of ``n_layers`` masked steps: ``mu = i % d``, ``parity = (i // d) % 2``, so
    ``2 d`` consecutive steps move every link once. ``ValueError`` (naming the stack ``name``)
    unless ``n_layers >= 1`` and every extent is even."""
    if n_layers < 1:
        raise ValueError(f"{name} stack: n_layers = {n_layers!r}; allowed: >= 1")
    d, odd = len(shape), [i for i, n in enumerate(shape) if n % 2]
    if odd:
        raise ValueError(f"{name} stack: L_{odd[0]} = {shape[odd[0]]}; allowed: even extents")
    return [(i % d, (i // d) % 2) for i in range(n_layers)]


def masked_prior(shape: tuple[int, ...], group: U1 | SU) -> UniformAnglePrior | HaarPrior:
    """The prior of a masked-step flow: uniform angles (U(1)) or the Haar measure (SU(N))."""
    d = len(shape)
    if isinstance(group, U1):
        return UniformAnglePrior((d, *shape))
    return HaarPrior((d, *shape, group.n, group.n))
