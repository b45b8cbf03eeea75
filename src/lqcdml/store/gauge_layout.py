"""Shared pieces of the gauge-file formats: site order, row reconstruction, checks.

File order (NERSC and ILDG): ``[t, z, y, x, mu, N, N]`` with ``x`` fastest and the
directions ``mu = x, y, z, t``. Our order: ``[mu, t, x, y, z, N, N]`` with ``mu = t, x, y, z``
(direction 0 is time, DESIGN.md).
"""

from __future__ import annotations

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
    "reconstruct_last_row",
]


class GaugeFileError(LqcdmlError, ValueError):
    """A gauge file that cannot be read or fails a check; the message names the file."""


def file_order_to_links(matrices: np.ndarray) -> np.ndarray:
    """``[t, z, y, x, mu(x,y,z,t), N, N]`` to ``[mu(t,x,y,z), t, x, y, z, N, N]``."""
    ours = np.transpose(matrices, (4, 0, 3, 2, 1, 5, 6))  # [mu_file, t, x, y, z, N, N]
    return np.ascontiguousarray(ours[[3, 0, 1, 2]])


def links_to_file_order(links: np.ndarray) -> np.ndarray:
    """Inverse of ``file_order_to_links``."""
    file_mu = np.asarray(links)[[1, 2, 3, 0]]  # x, y, z, t
    return np.ascontiguousarray(np.transpose(file_mu, (1, 4, 3, 2, 0, 5, 6)))


def decode_links(values: np.ndarray, sites_tzyx: tuple[int, ...], rows: int, n: int) -> np.ndarray:
    """File numbers (real, imag pairs of ``rows`` rows per link, file order) to our links."""
    pairs = values.astype(np.float64).reshape(*sites_tzyx, 4, rows, n, 2)
    matrices = pairs[..., 0] + 1j * pairs[..., 1]
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


def group_deviation(links: np.ndarray) -> float:
    """``max(|U^dag U - 1|, |det U - 1|)`` over all links."""
    n = links.shape[-1]
    unitarity = float(np.max(np.abs(np.conj(np.swapaxes(links, -1, -2)) @ links - np.eye(n))))
    return max(unitarity, float(np.max(np.abs(np.linalg.det(links) - 1))))


def checked_links(links: np.ndarray, path, tol: float = 1e-5, reproject: bool = False) -> tuple[np.ndarray, float]:
    """``(links, deviation)``: finite links within ``tol`` of SU(N); else an error naming
    ``path`` and the deviation, or with ``reproject`` the nearest SU(N) links."""
    if not np.all(np.isfinite(links)):
        raise GaugeFileError(f"{path}: links hold NaN or infinite numbers")
    n = links.shape[-1]
    deviation = group_deviation(links)
    if deviation > tol:
        if not reproject:
            raise GaugeFileError(
                f"{path}: links are not SU({n}): max(|U^dag U - 1|, |det U - 1|) = {deviation:.3g}; "
                f"allowed: {tol:g} (or --reproject to import them projected onto SU({n}))"
            )
        from ..lattice import SU

        u = torch.from_numpy(np.ascontiguousarray(links, dtype=np.complex128))
        links = SU(n).project(u).numpy()
    return links, deviation


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
