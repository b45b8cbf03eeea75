"""Field manifolds: the real line (scalar fields), compact U(1) and SU(N).

Each manifold gives a field its group operations and what molecular dynamics needs:
momenta in the Lie algebra, the kinetic term and the exponential-map update.

Conventions (pinned by tests):

- ``Real``: fields are real numbers; momenta ``p ~ N(0, 1)``, ``K = sum p^2 / 2``,
  update ``q -> q + eps p``.
- ``U1``: a link is stored as its angle ``theta`` (element ``exp(i theta)``); momenta
  ``p ~ N(0, 1)``, ``K = sum p^2 / 2``, update ``theta -> theta + eps p``.
- ``SU(N)``: a link is an ``N x N`` complex matrix (trailing two axes). Generators are
  hermitian with ``tr(t^a t^b) = delta^{ab} / 2``. Momenta are hermitian traceless
  matrices ``P = p^a t^a`` with ``p^a ~ N(0, 1)``, so ``K = sum_a (p^a)^2 / 2 = tr P^2``;
  update ``U -> exp(i eps P) U``. Algebra-valued quantities (momenta, forces) are
  kept as hermitian traceless matrices; ``coefficients`` gives their ``p^a``.

The Lie-algebra derivative of a function ``f`` of the links is
``d/dw^a f(exp(i w^b t^b) U) |_{w=0}``; for U(1) and the real line it is ``df/dq``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property

import torch

from .. import kernels
from .random import Generators, rand, randn

__all__ = ["Real", "U1", "SU", "Manifold", "GaugeGroup", "group_from_name"]


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex128: torch.float64, torch.complex64: torch.float32}.get(dtype, dtype)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.float64: torch.complex128, torch.float32: torch.complex64}.get(dtype, dtype)


class Manifold(ABC):
    """Interface shared by ``Real``, ``U1`` and ``SU``."""

    name: str = "manifold"
    #: number of internal trailing axes of one element (0 for scalars, 2 for matrices)
    internal_ndim: int = 0
    #: dimension of the Lie algebra (generators)
    algebra_dim: int = 1
    #: default dtype of a field
    default_dtype: torch.dtype = torch.float64

    @abstractmethod
    def random_momentum(self, gens: Generators, shape: Sequence[int], dtype=None) -> torch.Tensor:
        """Gaussian algebra momenta, ``[B, *shape, *internal]``, chain ``b`` from ``gens[b]``."""

    def kinetic(self, p: torch.Tensor) -> torch.Tensor:
        """Kinetic energy ``sum_a (p^a)^2 / 2`` per chain, shape ``[B]``."""
        return 0.5 * p.reshape(p.shape[0], -1).square().sum(dim=1)

    def update(self, q: torch.Tensor, p: torch.Tensor, eps: float) -> torch.Tensor:
        """Move ``q`` by ``eps`` along ``p``: ``exp(i eps P) U`` (additive for abelian)."""
        return q + eps * p

    def project(self, q: torch.Tensor) -> torch.Tensor:
        """Nearest element of the manifold (canonical representative)."""
        return q

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Algebra coefficients ``x^a`` of an algebra element; trailing axis ``a``."""
        return x.unsqueeze(-1)

    def from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        """Algebra element from its coefficients (inverse of ``coefficients``)."""
        return c.squeeze(-1)

    def perturb(self, q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``exp(i w^a t^a) q`` to first order in ``w`` (exact derivative at ``w = 0``)."""
        return q + w.squeeze(-1)

    def from_ambient_gradient(self, q: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The derivatives ``dS/dw^a`` along ``perturb``'s directions at ``w = 0``, as an algebra
        element (``from_coefficients``), from the gradient ``grad`` of a real ``S`` with respect to
        ``q`` itself (torch's convention: ``dS = Re sum conj(grad) dq``); shape of ``q``. Real
        fields and angles: the gradient itself."""
        return grad

    def deviation(self, q: torch.Tensor) -> torch.Tensor:
        """Largest distance of any element from the manifold (0 for abelian fields)."""
        return torch.zeros((), dtype=_real_dtype(q.dtype), device=q.device)


class Real(Manifold):
    """The additive group of real numbers: real scalar fields."""

    name = "real"

    def random_momentum(self, gens, shape, dtype=None):
        return randn(gens, shape, dtype or self.default_dtype)

    def __repr__(self) -> str:
        return "Real()"


class GaugeGroup(Manifold):
    """A compact group of link fields, ``U1`` or ``SU``: elements, products, adjoints, traces."""

    #: N of U(1) (1) and SU(N)
    n: int

    @abstractmethod
    def identity(self, shape: Sequence[int], dtype: torch.dtype = ..., device=None) -> torch.Tensor:
        """Identity elements of shape ``shape`` (and the internal axes)."""

    @abstractmethod
    def haar(self, gens: Generators, shape: Sequence[int], dtype: torch.dtype = ...) -> torch.Tensor:
        """Haar-random elements, ``[B, *shape, *internal]``, chain ``b`` from ``gens[b]``."""

    @abstractmethod
    def near_identity(
        self, gens: Generators, shape: Sequence[int], eps: float, dtype: torch.dtype = ...
    ) -> torch.Tensor:
        """Random elements ``eps`` away from the identity."""

    @abstractmethod
    def mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The group product ``a b``."""

    @abstractmethod
    def adj(self, a: torch.Tensor) -> torch.Tensor:
        """The inverse ``a^dag``."""

    @abstractmethod
    def trace(self, a: torch.Tensor) -> torch.Tensor:
        """Normalised trace ``tr U / N`` (complex)."""

    @abstractmethod
    def re_trace(self, a: torch.Tensor) -> torch.Tensor:
        """``Re tr U / N``."""

    @abstractmethod
    def to_matrix(self, a: torch.Tensor) -> torch.Tensor:
        """Elements as ``N x N`` complex matrices, ``[..., N, N]``."""


class U1(GaugeGroup):
    """Compact U(1), elements stored as angles ``theta``: ``U = exp(i theta)``."""

    name = "u1"
    n = 1

    def random_momentum(self, gens, shape, dtype=None):
        return randn(gens, shape, dtype or self.default_dtype)

    # group operations on angles
    def identity(self, shape: Sequence[int], dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.zeros(tuple(shape), dtype=dtype, device=device)

    def haar(self, gens: Generators, shape: Sequence[int], dtype=torch.float64) -> torch.Tensor:
        """Uniform angles in ``[-pi, pi)``: the Haar measure of U(1)."""
        return (2 * rand(gens, shape, dtype) - 1) * math.pi

    def near_identity(self, gens: Generators, shape: Sequence[int], eps: float, dtype=torch.float64):
        """Angles ``eps * N(0, 1)``."""
        return eps * randn(gens, shape, dtype)

    def mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def adj(self, a: torch.Tensor) -> torch.Tensor:
        return -a

    def trace(self, a: torch.Tensor) -> torch.Tensor:
        """Normalised trace ``tr U / N``: ``exp(i theta)`` (complex)."""
        return torch.polar(torch.ones_like(a), a)

    def re_trace(self, a: torch.Tensor) -> torch.Tensor:
        """``Re tr U / N = cos theta``."""
        return torch.cos(a)

    def to_matrix(self, a: torch.Tensor) -> torch.Tensor:
        """``exp(i theta)`` as ``1 x 1`` complex matrices, shape ``[..., 1, 1]``."""
        return self.trace(a)[..., None, None]

    def project(self, q):
        """Angles wrapped into ``(-pi, pi]``."""
        return torch.remainder(q + math.pi, 2 * math.pi) - math.pi

    def __repr__(self) -> str:
        return "U1()"


class SU(GaugeGroup):
    """SU(N) in the fundamental representation; elements ``[..., N, N]`` complex."""

    internal_ndim = 2
    default_dtype = torch.complex128

    def __init__(self, n: int):
        if int(n) != n or n < 2:
            raise ValueError(f"SU(N): N = {n!r}; allowed: an integer >= 2")
        self.n = int(n)
        self.algebra_dim = self.n * self.n - 1
        self.name = f"su{self.n}"

    def __repr__(self) -> str:
        return f"SU({self.n})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SU) and other.n == self.n

    def __hash__(self) -> int:
        return hash(("SU", self.n))

    @cached_property
    def _generators(self) -> torch.Tensor:
        """Generalised Gell-Mann matrices / 2, ``[N^2 - 1, N, N]`` complex128."""
        n = self.n
        gens = []
        for j in range(n):
            for k in range(j + 1, n):
                s = torch.zeros(n, n, dtype=torch.complex128)
                s[j, k] = s[k, j] = 0.5
                a = torch.zeros(n, n, dtype=torch.complex128)
                a[j, k], a[k, j] = -0.5j, 0.5j  # type: ignore[assignment]  # torch stub: no complex
                gens += [s, a]
        for m in range(1, n):
            d = torch.zeros(n, n, dtype=torch.complex128)
            norm = 1.0 / math.sqrt(2.0 * m * (m + 1))
            for j in range(m):
                d[j, j] = norm
            d[m, m] = -m * norm
            gens.append(d)
        return torch.stack(gens)

    def generators(self, dtype=torch.complex128, device=None) -> torch.Tensor:
        """Hermitian generators ``t^a``, ``tr(t^a t^b) = delta^{ab} / 2``; ``[N^2-1, N, N]``.

        Cached per dtype and device: forces and momenta ask for them at every step, and a
        fresh host-to-device copy each time would synchronise a CUDA stream.
        """
        key = (dtype, torch.device("cpu") if device is None else torch.device(device))
        cache = self.__dict__.setdefault("_generator_cache", {})
        if key not in cache:
            cache[key] = self._generators.to(dtype=dtype, device=key[1])
        return cache[key]

    # --- group elements ---------------------------------------------------------
    def identity(self, shape: Sequence[int], dtype=torch.complex128, device=None) -> torch.Tensor:
        eye = torch.eye(self.n, dtype=dtype, device=device)
        return eye.expand(*shape, self.n, self.n).clone()

    def haar(self, gens: Generators, shape: Sequence[int], dtype=torch.complex128) -> torch.Tensor:
        """Haar-random SU(N) matrices, ``[B, *shape, N, N]``.

        QR of a complex Gaussian matrix with the phases of ``diag R`` moved into ``Q``
        is Haar on U(N); dividing by an N-th root of the determinant maps it to SU(N)
        and keeps the measure invariant.
        """
        rdt = _real_dtype(dtype)
        z = torch.complex(randn(gens, (*shape, self.n, self.n), rdt), randn(gens, (*shape, self.n, self.n), rdt))
        q, r = torch.linalg.qr(z)
        d = torch.diagonal(r, dim1=-2, dim2=-1)
        q = q * (d / d.abs()).unsqueeze(-2)
        return self._remove_det_phase(q)

    def near_identity(self, gens: Generators, shape: Sequence[int], eps: float, dtype=torch.complex128):
        """``exp(i eps X)`` with ``X = x^a t^a``, ``x^a ~ N(0, 1)``."""
        return self.expi(eps * self.random_momentum(gens, shape, dtype))

    def mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)

    def adj(self, a: torch.Tensor) -> torch.Tensor:
        return a.mH

    def trace(self, a: torch.Tensor) -> torch.Tensor:
        """Normalised trace ``tr U / N`` (complex)."""
        return torch.diagonal(a, dim1=-2, dim2=-1).sum(-1) / self.n

    def re_trace(self, a: torch.Tensor) -> torch.Tensor:
        return self.trace(a).real

    def to_matrix(self, a: torch.Tensor) -> torch.Tensor:
        return a

    def _remove_det_phase(self, u: torch.Tensor) -> torch.Tensor:
        det = torch.linalg.det(u)
        return u * torch.polar(torch.ones_like(det.real), -torch.angle(det) / self.n)[..., None, None]

    def project(self, q: torch.Tensor) -> torch.Tensor:
        """Nearest SU(N) matrix: unitary polar factor, then the determinant phase removed."""
        w, _, vh = torch.linalg.svd(q)
        return self._remove_det_phase(w @ vh)

    def reunitarize(self, q: torch.Tensor) -> torch.Tensor:
        """An SU(2) or SU(3) matrix next to ``q`` (one a rounding error off the group), smooth and
        cheap, for keeping a long product of group operations on the group: SU(2) the normalised
        quaternion part ``a = (q_00 + q_11^*)/2``, ``b = (q_01 - q_10^*)/2``; SU(3) Gram-Schmidt of
        the first two rows and the third their conjugate cross product (``det = 1``). Returns a group
        element unchanged to rounding. (``project`` is the nearest element, by an SVD whose
        gradient is undefined at the group's degenerate singular values.)"""
        if self.n == 2:
            a = 0.5 * (q[..., 0, 0] + q[..., 1, 1].conj())
            b = 0.5 * (q[..., 0, 1] - q[..., 1, 0].conj())
            norm = torch.sqrt(a.real.square() + a.imag.square() + b.real.square() + b.imag.square())
            a, b = a / norm, b / norm
            return torch.stack([torch.stack([a, b], -1), torch.stack([-b.conj(), a.conj()], -1)], -2)
        if self.n == 3:
            r1 = q[..., 0, :]
            r1 = r1 / torch.linalg.vector_norm(r1, dim=-1, keepdim=True)
            r2 = q[..., 1, :]
            r2 = r2 - (r1.conj() * r2).sum(-1, keepdim=True) * r1
            r2 = r2 / torch.linalg.vector_norm(r2, dim=-1, keepdim=True)
            r3 = torch.linalg.cross(r1, r2).conj()
            return torch.stack([r1, r2, r3], -2)
        raise ValueError(f"reunitarize: SU({self.n}); allowed: SU(2), SU(3)")

    def deviation(self, q: torch.Tensor) -> torch.Tensor:
        """``max(|U^dag U - 1|, |det U - 1|)`` over all elements."""
        eye = torch.eye(self.n, dtype=q.dtype, device=q.device)
        unitarity = (q.mH @ q - eye).abs().amax()
        det = (torch.linalg.det(q) - 1).abs().amax()
        return torch.maximum(unitarity, det)

    # --- algebra -----------------------------------------------------------------
    def random_momentum(self, gens, shape, dtype=None):
        dtype = dtype or self.default_dtype
        c = randn(gens, (*shape, self.algebra_dim), _real_dtype(dtype))
        return self.from_coefficients(c)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """``x^a = 2 Re tr(t^a X)``, trailing axis of length ``N^2 - 1``."""
        t = self.generators(x.dtype, x.device)
        return 2 * torch.einsum("aij,...ji->...a", t, x).real

    def from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        t = self.generators(_complex_dtype(c.dtype), c.device)
        return torch.einsum("...a,aij->...ij", c.to(t.dtype), t)

    def kinetic(self, p: torch.Tensor) -> torch.Tensor:
        """``sum tr P^2 = sum_a (p^a)^2 / 2`` per chain (P hermitian: ``|P|_F^2``)."""
        return torch.view_as_real(p).reshape(p.shape[0], -1).square().sum(dim=1)

    def traceless_hermitian(self, x: torch.Tensor) -> torch.Tensor:
        """``(X - X^dag) / 2i`` minus its trace part: the algebra projection ``TA``.

        For any matrix ``X``: ``sum_a t^a Im tr(t^a X) = TA(X) / 2``.
        """
        y = (x - x.mH) * (-0.5j)
        tr = torch.diagonal(y, dim1=-2, dim2=-1).sum(-1) / self.n
        return y - tr[..., None, None] * torch.eye(self.n, dtype=x.dtype, device=x.device)

    def expi(self, p: torch.Tensor) -> torch.Tensor:
        """``exp(i P)`` for hermitian traceless ``P``: closed form for N = 2, Cayley-Hamilton
        series for N = 3, ``matrix_exp`` otherwise."""
        if self.n == 2:
            a = p[..., 0, 0].real
            b = p[..., 0, 1]
            r2 = a * a + b.real * b.real + b.imag * b.imag
            small = r2 <= 1e-16  # the series there; no sqrt at 0, so gradients stay finite
            r = torch.sqrt(torch.where(small, 1.0, r2))
            cos = torch.where(small, 1 - r2 / 2, torch.cos(r))
            sinc = torch.where(small, 1 - r2 / 6, torch.sin(r) / r)
            eye = torch.eye(2, dtype=p.dtype, device=p.device)
            return cos[..., None, None] * eye + (1j * sinc)[..., None, None] * p
        if self.n == 3:
            return _expi_su3(p)
        return torch.linalg.matrix_exp(1j * p)

    def update(self, q, p, eps):
        """``exp(i eps P) U``; SU(3) on the CPU by the compiled kernel (the same series)."""
        if self.n == 3 and kernels.enabled(q, p, n=3):
            return kernels.su3_exp_update(q, p, eps)
        return torch.matmul(self.expi(eps * p), q)

    def perturb(self, q, w):
        """``(1 + i w^a t^a) U``: first order of ``exp(i w^a t^a) U`` (same derivative at 0)."""
        return q + 1j * torch.matmul(self.from_coefficients(w), q)

    def from_ambient_gradient(self, q, grad):
        """``-TA(U G^dag) / 2``: along ``dU = i t^a U dw^a``, ``dS/dw^a = Re tr(G^dag i t^a U) = -Im
        tr(t^a U G^dag)``, and ``sum_a t^a Im tr(t^a X) = TA(X) / 2`` (``traceless_hermitian``)."""
        return -0.5 * self.traceless_hermitian(kernels.matmul(q, grad, False, True))


def _expi_su3(q: torch.Tensor) -> torch.Tensor:
    """``exp(i Q)`` for hermitian traceless 3 x 3 ``Q`` by the Cayley-Hamilton theorem.

    ``Q^3 = c1 Q + c0`` with ``c1 = tr Q^2 / 2`` and ``c0 = det Q = tr Q^3 / 3`` (both
    real), so every power of ``Q`` is ``a + b Q + c Q^2`` with real scalars obeying
    ``(a, b, c) -> (c c0, a + c c1, b)``. Summing the exponential series in these
    scalars gives ``exp(iQ) = f0 + f1 Q + f2 Q^2``; the series is cut where the next
    term is below ``1e-17`` of the largest norm in the batch. Large arguments
    (``|Q|_F > 4``), where the alternating series loses digits, use ``matrix_exp``.
    """
    q2 = q @ q
    c1 = 0.5 * torch.diagonal(q2, dim1=-2, dim2=-1).sum(-1).real
    r = float(torch.sqrt(2 * c1.detach().max())) if c1.numel() else 0.0
    if r > 4.0:
        return torch.linalg.matrix_exp(1j * q)
    c0 = (q * q2.mT).sum(dim=(-2, -1)).real / 3
    a, b, c = torch.ones_like(c1), torch.zeros_like(c1), torch.zeros_like(c1)
    re = [torch.zeros_like(c1) for _ in range(3)]
    im = [torch.zeros_like(c1) for _ in range(3)]
    coeff, k = 1.0, 0
    while True:
        target = (re, im)[k % 2]
        sign = 1.0 if k % 4 in (0, 1) else -1.0  # i^k = sign * (1 or i)
        for acc, x in zip(target, (a, b, c)):
            acc.add_(x, alpha=sign * coeff)
        k += 1
        coeff /= k
        if coeff * max(r, 1e-300) ** k < 1e-17 and k > 2:
            break
        a, b, c = c * c0, a + c * c1, b
    f = [torch.complex(x, y) for x, y in zip(re, im)]
    eye = torch.eye(3, dtype=q.dtype, device=q.device)
    return f[0][..., None, None] * eye + f[1][..., None, None] * q + f[2][..., None, None] * q2


def group_from_name(name: str) -> Manifold:
    """``"real"``, ``"u1"``, ``"su2"``, ``"su3"`` (any ``suN`` with N >= 2)."""
    key = str(name).lower()
    if key == "real":
        return Real()
    if key == "u1":
        return U1()
    if key.startswith("su") and key[2:].isdigit():
        return SU(int(key[2:]))
    raise ValueError(f"group = {name!r}; allowed: 'real', 'u1', 'su2', 'su3'")
