"""Shared pieces of the gauge-file formats: site order, row reconstruction, checks.

File order (NERSC and ILDG): ``[t, z, y, x, mu, N, N]`` with ``x`` fastest and the
directions ``mu = x, y, z, t``. Our order: ``[mu, t, x, y, z, N, N]`` with ``mu = t, x, y, z``
(direction 0 is time, docs/architecture.md#tensor-layouts).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..errors import LqcdmlError

__all__ = [
    "GaugeFileError",
    "checked_links",
    "decode_links",
    "encode_links",
    "file_order_to_links",
    "links_to_file_order",
    "link_trace",
    "mean_plaquette",
    "memory_allowed",
    "check_memory",
    "check_sites",
    "reconstruct_last_row",
    "within",
]

#: most sites a gauge file may hold (the site count is checked with Python integers)
MAX_SITES = 1 << 28
#: peak memory of reading a file beyond its data bytes, in complex128 link arrays: the
#: decoded numbers, the reordered links and the plaquette and group checks' products
#: (measured on a 16^4 SU(3) lattice: 4 (ILDG) to 7.5 (NERSC) arrays, data included)
LINK_COPIES = 8


class GaugeFileError(LqcdmlError, ValueError):
    """A gauge file that cannot be read or fails a check; the message names the file."""


def within(value: float, tol: float) -> bool:
    """``value <= tol``, False for NaN (every tolerance check is written this way)."""
    return bool(value <= tol)


def check_sites(extents: dict[str, int], path) -> int:
    """The site count of ``extents`` (key -> extent, as the file names them), computed with
    Python integers before any NumPy; refused in one line naming ``path``, the key and the
    value unless every extent and their product lie in 1 .. 2^28."""
    for key, extent in extents.items():
        if not 1 <= extent <= MAX_SITES:
            raise GaugeFileError(f"{path}: {key} = {extent}; allowed: 1 <= {key} <= 2^28 = {MAX_SITES}")
    sites = math.prod(extents.values())
    if sites > MAX_SITES:
        raise GaugeFileError(
            f"{path}: {', '.join(extents)} = {'x'.join(map(str, extents.values()))} is {sites} "
            f"sites; allowed: at most 2^28 = {MAX_SITES}"
        )
    return sites


def memory_allowed() -> int:
    """Bytes a gauge file's reading may use: half of this machine's physical memory
    (``os.sysconf``), or 8 GiB where the system does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = -1
    return total // 2 if total > 0 else 1 << 33


def check_memory(path, data_bytes: int, n_sites: int, n: int) -> None:
    """Refuse, before reading, a file whose ``data_bytes`` and ``n_sites`` SU(``n``) links
    need more than ``memory_allowed()``: ``data_bytes + LINK_COPIES x 4 n_sites n^2 x 16``."""
    needed = data_bytes + LINK_COPIES * 4 * n_sites * n * n * 16
    allowed = memory_allowed()
    if needed > allowed:
        raise GaugeFileError(
            f"{path}: reading its {n_sites} sites of SU({n}) links needs about "
            f"{needed / 2**30:.3g} GiB of memory; allowed: {allowed / 2**30:.3g} GiB "
            "(half of this machine's physical memory)"
        )


def file_order_to_links(matrices: np.ndarray) -> np.ndarray:
    """``[t, z, y, x, mu(x,y,z,t), N, N]`` to ``[mu(t,x,y,z), t, x, y, z, N, N]``."""
    ours = np.transpose(matrices, (4, 0, 3, 2, 1, 5, 6))  # [mu_file, t, x, y, z, N, N]
    return np.ascontiguousarray(ours[[3, 0, 1, 2]])


def links_to_file_order(links: np.ndarray) -> np.ndarray:
    """Inverse of ``file_order_to_links``."""
    file_mu = np.asarray(links)[[1, 2, 3, 0]]  # x, y, z, t
    return np.ascontiguousarray(np.transpose(file_mu, (1, 4, 3, 2, 0, 5, 6)))


@np.errstate(all="ignore")
def decode_links(values: np.ndarray, sites_tzyx: tuple[int, ...], rows: int, n: int) -> np.ndarray:
    """File numbers (real, imag pairs of ``rows`` rows per link, file order) to our links.

    The pairs are reinterpreted as complex numbers (no arithmetic: bit exact, and an
    infinite number stays itself); floating-point warnings are silenced, a caller checks
    the links for NaN and infinities."""
    pairs = np.ascontiguousarray(values, dtype=np.float64)
    matrices = pairs.view(np.complex128).reshape(*sites_tzyx, 4, rows, n)
    if rows < n:
        matrices = reconstruct_last_row(matrices)
    return file_order_to_links(matrices)


def encode_links(links: np.ndarray, rows: int, dtype) -> np.ndarray:
    """Our links to the flat file numbers of their first ``rows`` rows, in ``dtype``."""
    matrices = links_to_file_order(links)[..., :rows, :]
    return np.ascontiguousarray(np.stack([matrices.real, matrices.imag], axis=-1), dtype=dtype).reshape(-1)


def reconstruct_last_row(matrices: np.ndarray) -> np.ndarray:
    """Append the last row of SU(2) or SU(3) matrices stored without it.

    SU(3): ``row_3 = conj(row_1 x row_2)``; SU(2): ``row_2 = (-conj(b), conj(a))``.
    """
    rows, n = matrices.shape[-2], matrices.shape[-1]
    if n == 3 and rows == 2:
        r1, r2 = matrices[..., 0, :], matrices[..., 1, :]
        r3 = np.conj(np.cross(r1, r2))
        return np.concatenate([matrices, r3[..., None, :]], axis=-2)
    if n == 2 and rows == 1:
        a, b = matrices[..., 0, 0], matrices[..., 0, 1]
        r2 = np.stack([-np.conj(b), np.conj(a)], axis=-1)
        return np.concatenate([matrices, r2[..., None, :]], axis=-2)
    raise ValueError(f"reconstruct_last_row: {rows} rows of {n} x {n}; allowed: 2 of SU(3), 1 of SU(2)")


@np.errstate(all="ignore")
def group_deviation(links: np.ndarray) -> float:
    """``max(|U^dag U - 1|, |det U - 1|)`` over all links; NaN (never a small number) where
    the products overflow, as for byte-swapped data; no floating-point warnings."""
    n = links.shape[-1]
    unitarity = float(np.max(np.abs(np.conj(np.swapaxes(links, -1, -2)) @ links - np.eye(n))))
    det = float(np.max(np.abs(np.linalg.det(links) - 1)))
    return float(np.maximum(unitarity, det))  # NaN if either is


def checked_links(links: np.ndarray, path, tol: float = 1e-5, reproject: bool = False) -> tuple[np.ndarray, float]:
    """``(links, deviation)``: finite links within ``tol`` of SU(N); else an error naming
    ``path`` and the deviation, or with ``reproject`` the nearest SU(N) links (refused when
    the deviation is not finite, or the projection is not within ``tol`` either)."""
    if not np.all(np.isfinite(links)):
        raise GaugeFileError(f"{path}: links hold NaN or infinite numbers")
    n = links.shape[-1]
    deviation = group_deviation(links)
    if within(deviation, tol):
        return links, deviation
    if not reproject or not math.isfinite(deviation):
        hint = (
            f" (or --reproject to import them projected onto SU({n}))"
            if math.isfinite(deviation)
            else " (byte-swapped or not gauge links?)"
        )
        raise GaugeFileError(
            f"{path}: links are not SU({n}): max(|U^dag U - 1|, |det U - 1|) = {deviation:.3g}; allowed: {tol:g}{hint}"
        )
    from ..lattice import SU

    u = torch.from_numpy(np.ascontiguousarray(links, dtype=np.complex128))
    try:
        projected = SU(n).project(u).numpy()
    except RuntimeError:  # the SVD did not converge: no projection
        projected = np.full_like(links, np.nan)
    after = group_deviation(projected) if np.all(np.isfinite(projected)) else math.nan
    if not within(after, tol):
        raise GaugeFileError(
            f"{path}: links are not SU({n}) (deviation {deviation:.3g}) and their projection "
            f"is not either (deviation {after:.3g}); allowed: {tol:g}"
        )
    return projected, deviation


def mean_plaquette(links: np.ndarray) -> float:
    """``<Re tr U_P> / N`` over sites and planes (our observable)."""
    from ..lattice import SU
    from ..observables import plaquette

    u = torch.from_numpy(np.ascontiguousarray(links, dtype=np.complex128)).unsqueeze(0)
    return float(plaquette(u, SU(links.shape[-1]))[0])


def link_trace(links: np.ndarray) -> float:
    """``<Re tr U_mu(x)> / N`` over sites and directions."""
    n = links.shape[-1]
    return float(np.mean(np.trace(links, axis1=-2, axis2=-1).real) / n)
