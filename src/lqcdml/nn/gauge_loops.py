"""Staples of closed Wilson loops on SU(N) links, for gauge-covariant layers.

A path is a sequence of steps ``(mu, +1)`` (along ``U_mu(y)``, then ``y += mu``) or
``(mu, -1)`` (``y -= mu``, then along ``U_mu(y)^dag``). ``path_product(links, path)``
is the ordered product of its links starting at every site ``x``: a field
``[B, L..., N, N]`` that transforms as ``Omega(x) P(x) Omega(x + end)^dag``.

The staple of a loop shape for the link ``U_mu(x)`` is the sum, over every loop of
that shape that contains the link, of the path that closes it: from ``x + mu`` back
to ``x``, so that ``sum_loops Re tr W = Re tr[U_mu(x) S_mu(x)] + (loops without the
link)``. ``S_mu(x)`` transforms as ``Omega(x + mu) S Omega(x)^dag``, so
``U_mu(x) S_mu(x)`` is covariant at ``x`` (this is the staple sum of the Wilson gauge
force, ``theories.gauge.staple_sum``, for plaquettes).

Loop shapes: ``plaquette`` (1 x 1), ``rectangle`` (1 x 2 and 2 x 1), and the straight
Polyakov line of direction ``mu`` (``L_mu`` links; its staple is the product of the
other ``L_mu - 1`` links of the line through ``x``).

``loop_staple`` evaluates every closing path of every direction at once: step ``k`` of all
paths is one gather from the links flattened to ``[B, d V, N, N]`` with a precomputed index
table (link direction and shifted site per path), and the product over steps is ``l - 1``
batched matrix products, so a staple costs a few dozen operations whatever the number of
paths (the forward pass and its autograd backward alike). ``loop_staple_by_paths`` is the
same sum path by path with ``path_product``: the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import cast

import torch

from .. import kernels
from ..kernels import matmul
from ..lattice import shift

__all__ = [
    "Path",
    "LOOP_SHAPES",
    "path_product",
    "closing_paths",
    "loop_staple",
    "loop_staple_by_paths",
    "polyakov_staple",
    "polyakov_staples",
    "polyakov_staples_by_gathers",
    "rectangle_staple",
]

Step = tuple[int, int]
Path = tuple[Step, ...]

#: loop shapes in a plane (a, b) as steps; ``a`` is the first direction of the loop
LOOP_SHAPES: dict[str, Path] = {
    "plaquette": ((0, 1), (1, 1), (0, -1), (1, -1)),
    "rectangle": ((0, 1), (0, 1), (1, 1), (0, -1), (0, -1), (1, -1)),
}


def _shifted(field: torch.Tensor, offset: Sequence[int]) -> torch.Tensor:
    """``field(x + offset)`` for a site field ``[B, L..., *internal]``."""
    out = field
    for mu, step in enumerate(offset):
        if step:
            out = shift(out, mu, step)
    return out


def path_product(links: torch.Tensor, path: Path, start: Sequence[int] | None = None) -> torch.Tensor:
    """Product of the links along ``path`` from ``x + start`` at every site ``x``.

    ``links``: ``[B, d, L..., N, N]``; returns ``[B, L..., N, N]``.
    """
    dim = links.shape[1]
    y = list(start) if start is not None else [0] * dim
    out = None
    for mu, sign in path:
        if sign < 0:
            y[mu] -= 1
        factor = _shifted(links[:, mu], y)
        if sign > 0:
            y[mu] += 1
        if out is None:
            out = factor if sign > 0 else factor.mH
        else:
            out = matmul(out, factor, False, sign < 0)
    return cast(torch.Tensor, out)  # a path has at least one link


def _inverse(path: Path) -> Path:
    return tuple((mu, -sign) for mu, sign in reversed(path))


@cache
def closing_paths(shape: str, mu: int, dim: int) -> tuple[Path, ...]:
    """Every path that closes a loop of ``shape`` through the link ``U_mu(x)``.

    Enumerates the loop in every plane ``(mu, nu)`` and ``(nu, mu)``, both orientations
    of each direction, every starting point and both senses; keeps each distinct loop
    that starts along ``+mu`` at ``x`` and returns the rest of it (from ``x + mu``).
    Plaquettes: 2 per ``nu``; rectangles: 6 per ``nu``.
    """
    template = LOOP_SHAPES[shape]
    found: set[Path] = set()
    for nu in range(dim):
        if nu == mu:
            continue
        for a, b in ((mu, nu), (nu, mu)):
            for sa in (1, -1):
                for sb in (1, -1):
                    loop = tuple(((a, sa * s) if d == 0 else (b, sb * s)) for d, s in template)
                    for candidate in (loop, _inverse(loop)):
                        for k in range(len(candidate)):
                            rotated = candidate[k:] + candidate[:k]
                            if rotated[0] == (mu, 1):
                                found.add(rotated[1:])
    return tuple(sorted(found))


def loop_staple_by_paths(links: torch.Tensor, shape: str) -> torch.Tensor:
    """``loop_staple`` path by path with ``path_product`` (the reference)."""
    dim = links.shape[1]
    out: list[torch.Tensor] = []
    for mu in range(dim):
        start = [0] * dim
        start[mu] = 1
        total = None
        for path in closing_paths(shape, mu, dim):
            p = path_product(links, path, start)
            total = p if total is None else total + p
        out.append(cast(torch.Tensor, total))  # links [B, d >= 2, ...]: loops through every link
    return torch.stack(out, dim=1)


@cache
def _gather_plan(
    shape: str, lattice: tuple[int, ...], device: torch.device
) -> tuple[tuple[tuple[bool, ...], tuple[torch.Tensor, ...]], ...]:
    """The closing paths of ``shape`` (all directions) in groups of one pattern of daggers:
    per group the pattern and, per step, the index of each path's factor in the links
    flattened to ``[d V]`` (``[P V]`` on ``device``; ``mu`` major, the same number of paths per
    ``mu``). Cached per lattice and device, so a call moves no index table."""
    dim, volume = len(lattice), math.prod(lattice)
    sites = torch.arange(volume).reshape(1, *lattice)
    groups: dict[tuple[bool, ...], list[list[torch.Tensor]]] = {}
    for mu in range(dim):
        for path in closing_paths(shape, mu, dim):
            y = [1 if nu == mu else 0 for nu in range(dim)]  # every path starts at x + mu
            index = []
            for nu, sign in path:
                if sign < 0:
                    y[nu] -= 1
                index.append(nu * volume + _shifted(sites, y).reshape(-1))
                if sign > 0:
                    y[nu] += 1
            groups.setdefault(tuple(sign < 0 for _, sign in path), []).append(index)
    plan = []
    for pattern, paths in groups.items():
        if len(paths) % dim:
            raise AssertionError(f"gauge loops: {shape} paths of pattern {pattern} not balanced over directions")
        plan.append((pattern, tuple(torch.cat([p[k] for p in paths]).to(device) for k in range(len(pattern)))))
    return tuple(plan)


def loop_staple(links: torch.Tensor, shape: str) -> torch.Tensor:
    """Staples ``S_mu(x)`` of every loop of ``shape`` (a key of ``LOOP_SHAPES``).

    ``[B, d, L..., N, N]``: direction ``mu`` on axis 1; ``sum Re tr`` of the loops through
    ``U_mu(x)`` is ``Re tr[U_mu(x) S_mu(x)]``. All paths at once by gathers (module docstring),
    daggers passed to the products (``kernels.matmul``), never materialised. Plaquettes on CPU
    go through the compiled staple kernel and its vector-Jacobian product
    (``kernels.plaquette_staple``) where ``kernels.enabled_differentiable`` admits them.
    """
    if shape == "plaquette" and kernels.enabled_differentiable(links, n=links.shape[-1]):
        return kernels.plaquette_staple(links)
    batch, dim = links.shape[0], links.shape[1]
    lattice = tuple(int(n) for n in links.shape[2 : 2 + dim])
    volume, n = math.prod(lattice), links.shape[-1]
    flat = links.reshape(batch, dim * volume, n, n)
    total = None
    for pattern, indices in _gather_plan(shape, lattice, links.device):
        count = indices[0].numel() // volume
        factors = [flat.index_select(1, i).reshape(batch, count, volume, n, n) for i in indices]
        out = factors[0].mH if pattern[0] else factors[0]
        for factor, dagger in zip(factors[1:], pattern[1:]):
            out = matmul(out, factor, False, dagger)
        part = out.reshape(batch, dim, count // dim, volume, n, n).sum(2)
        total = part if total is None else total + part
    return cast(torch.Tensor, total).reshape(links.shape)


def _line_staple(u: torch.Tensor, mu: int) -> torch.Tensor:
    """``u(x + mu) u(x + 2 mu) ... u(x + (L_mu - 1) mu)`` of one direction's links ``u``
    (``[B, L..., N, N]``)."""
    extent = u.shape[1 + mu]
    if extent == 1:
        return torch.eye(u.shape[-1], dtype=u.dtype, device=u.device).expand_as(u).clone()
    out = shift(u, mu, 1)
    for step in range(2, extent):
        out = matmul(out, shift(u, mu, step))
    return out


def polyakov_staple(links: torch.Tensor, mu: int) -> torch.Tensor:
    """``U_mu(x + mu) U_mu(x + 2 mu) ... U_mu(x + (L_mu - 1) mu)``: ``[B, L..., N, N]``.

    ``Re tr[U_mu(x) S]`` is the Polyakov line of direction ``mu`` through ``x``.
    """
    return _line_staple(links[:, mu], mu)


@cache
def _line_plan(lattice: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per step ``s = 1 .. max L - 1`` of the Polyakov staples, the index of each link's factor
    ``U_mu(x + s mu)`` in the links flattened to ``[d V]`` with one identity appended at ``d V``,
    which stands in for the steps ``s >= L_mu`` of a shorter direction: ``[d V]`` each."""
    dim, volume = len(lattice), math.prod(lattice)
    sites = torch.arange(volume).reshape(1, *lattice)
    steps = []
    for s in range(1, max(lattice)):
        index = []
        for mu in range(dim):
            if s < lattice[mu]:
                index.append(mu * volume + shift(sites, mu, s).reshape(-1))
            else:
                index.append(torch.full((volume,), dim * volume))
        steps.append(torch.cat(index).to(device))
    return tuple(steps)


def polyakov_staples(links: torch.Tensor) -> torch.Tensor:
    """``polyakov_staple`` of every direction, ``[B, d, L..., N, N]``: step ``s`` of every line is
    one gather from the flattened links (``_line_plan``), the product over steps ``max L - 2``
    batched matrix products for all directions at once. On CPU the compiled kernel and its
    vector-Jacobian product (``kernels.polyakov_staples``) where ``kernels.enabled_differentiable``
    admits the links."""
    if kernels.enabled_differentiable(links, n=links.shape[-1]):
        return kernels.polyakov_staples(links)
    return polyakov_staples_by_gathers(links)


def polyakov_staples_by_gathers(links: torch.Tensor) -> torch.Tensor:
    """``polyakov_staples`` in torch (the reference of the kernel, and its path off the CPU)."""
    batch, dim = links.shape[0], links.shape[1]
    lattice = tuple(int(n) for n in links.shape[2 : 2 + dim])
    volume, n = math.prod(lattice), links.shape[-1]
    eye = torch.eye(n, dtype=links.dtype, device=links.device)
    steps = _line_plan(lattice, links.device)
    if not steps:  # every extent 1: each line is its own link
        return eye.expand_as(links).clone()
    flat = links.reshape(batch, dim * volume, n, n)
    if min(lattice) < max(lattice):
        flat = torch.cat([flat, eye.expand(batch, 1, n, n)], dim=1)
    out = flat.index_select(1, steps[0])
    for index in steps[1:]:
        out = matmul(out, flat.index_select(1, index))
    return out.reshape(links.shape)


def rectangle_staple(links: torch.Tensor, mu: int, nu: int, extent: int) -> torch.Tensor:
    """Staple of the ``1 x extent`` rectangle on the ``+nu`` side of ``U_mu(x)``:
    ``U_nu(x+mu) ... U_nu(x+mu+(s-1)nu) U_mu(x+s nu)^dag U_nu(x+(s-1)nu)^dag ... U_nu(x)^dag``.

    ``[B, L..., N, N]``; ``Re tr[U_mu(x) W]`` is the rectangle's Wilson loop.
    """
    dim = links.shape[1]
    path = ((nu, 1),) * extent + ((mu, -1),) + ((nu, -1),) * extent
    start = [0] * dim
    start[mu] = 1
    return path_product(links, path, start)
