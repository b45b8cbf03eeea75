"""How well any SLHMC effective action can do: the mismatch floor set by the Dirac spectrum,
the acceptance it allows, and the cost per accepted trajectory that follows.

SLHMC's Metropolis test sees ``dH = dH_eff + d(U', phi) - d(U, phi)`` with the mismatch
``d = S_exact - S_eff``. For a staggered pseudofermion (``N_f = 4``, even sites) the exact
kernel is ``(m^2 + mu_i^2)^{-1}`` on the eigenmodes of ``-H^2`` (``mu_i^2``, from
``observables.fermion.staggered_even_spectrum``) and the field is a complex Gaussian with
covariance ``C = m^2 + mu^2``. At fixed links ``d = sum_i c_i |xi_i|^2`` (``xi`` standard
complex normal), ``c_i`` the eigenvalues of ``1 - C^{1/2} K C^{1/2}`` for the effective
kernel ``K``, so ``var(d | U) = sum_i c_i^2``. An effective action ``phi^dag M_eff(V)^{-1} phi``
at the mass ``m_eff`` on any links ``V = f(U)`` (a network acts on the links only) has
``K <= 1 / m_eff^2``; by Weyl's monotonicity the ``i``-th ``c_i`` is at least
``1 - (m^2 + mu_i^2) / m_eff^2``. Hence the floor, which no network lowers:

``var(d) >= E_U sum_i (1 - (m^2 + mu_i^2) / m_eff^2)_+^2``.

For the lightest Hasenbusch ratio ``det(M(m) / M(m_1))`` the exact kernel is
``1 + d' M(m)^{-1}`` (``d' = m_1^2 - m^2``), the field's covariance ``C (C + d')^{-1}`` and an
effective ratio at ``m_eff < m_1`` has kernel ``<= m_1^2 / m_eff^2``: the same argument gives
``sum_i (1 - (m^2 + mu_i^2) m_1^2 / ((mu_i^2 + m_1^2) m_eff^2))_+^2``.

With the molecular dynamics of the effective action exact and the end configuration
decorrelated from the start, ``dH`` is Gaussian with ``<dH^2> = 2 var(d)`` and ``<dH> =
<dH^2> / 2`` (``<exp(-dH)> = 1``), and the acceptance is ``erfc(sqrt(var(d)) / 2)``.
"""

from __future__ import annotations

import math

import torch
from scipy import special

__all__ = [
    "gaussian_acceptance",
    "mismatch_floor",
    "ratio_mismatch_floor",
    "thin_field_variance",
    "modes_below",
    "sites_at_acceptance",
]


def gaussian_acceptance(var_d: float) -> float:
    """``<min(1, exp(-dH))>`` for Gaussian ``dH`` with ``<dH^2> = 2 var_d = 2 <dH>``:
    ``erfc(sqrt(var_d) / 2)``."""
    if var_d < 0:
        raise ValueError(f"var_d = {var_d}; allowed: >= 0")
    return math.erfc(math.sqrt(var_d) / 2)


def sites_at_acceptance(var_per_site: float, acceptance: float) -> float:
    """The number of sites at which a mismatch variance ``var_per_site * V`` (extensive) brings
    the Gaussian acceptance down to ``acceptance``: ``(2 erfcinv(acceptance))^2 / var_per_site``.
    With a floor measured on a small box this is an upper bound: the box's gap thins the low
    modes, so the floor per site only grows towards the thermodynamic limit."""
    if not 0 < acceptance < 1 or var_per_site <= 0:
        raise ValueError(
            f"acceptance = {acceptance}, var_per_site = {var_per_site}; allowed: 0 < acceptance < 1, var_per_site > 0"
        )
    return (2 * float(special.erfcinv(acceptance))) ** 2 / var_per_site


def _check(mass: float, m_eff: float) -> None:
    if not 0 <= mass < m_eff:
        raise ValueError(f"m_eff = {m_eff} with mass = {mass}; allowed: 0 <= mass < m_eff")


def mismatch_floor(mu2: torch.Tensor, mass: float, m_eff: float) -> float:
    """The floor of ``var(d)`` for the whole light action against any effective action at
    ``m_eff`` on any links: ``sum_i (1 - (m^2 + mu_i^2) / m_eff^2)_+^2``, averaged over the
    configurations of ``mu2 [B, n]``."""
    _check(mass, m_eff)
    lam = mu2 + mass**2
    return float((torch.clamp(1 - lam / m_eff**2, min=0) ** 2).sum(-1).mean())


def ratio_mismatch_floor(mu2: torch.Tensor, mass: float, m_eff: float, m_1: float) -> float:
    """The floor of ``var(d)`` for the Hasenbusch ratio ``(m, m_1)`` against any effective ratio
    ``(m_eff, m_1)``, ``m < m_eff < m_1``, on any links (configuration mean)."""
    _check(mass, m_eff)
    if not m_eff < m_1:
        raise ValueError(f"m_eff = {m_eff} with m_1 = {m_1}; allowed: m_eff < m_1")
    lam = mu2 + mass**2
    c = 1 - lam * m_1**2 / ((mu2 + m_1**2) * m_eff**2)
    return float((torch.clamp(c, min=0) ** 2).sum(-1).mean())


def thin_field_variance(mu2: torch.Tensor, mass: float, m_eff: float) -> float:
    """``E_U var(d | U)`` of the thin effective action (the light operator at ``m_eff`` on the
    same links): ``c_i = (m_eff^2 - m^2) / (mu_i^2 + m_eff^2)``; the whole action and the
    lightest ratio share it."""
    _check(mass, m_eff)
    c = (m_eff**2 - mass**2) / (mu2 + m_eff**2)
    return float((c**2).sum(-1).mean())


def modes_below(mu2: torch.Tensor, mass: float, m_eff: float) -> float:
    """Mean number of eigenvalues ``m^2 + mu_i^2`` of ``D^dag D`` (even sites) below ``m_eff^2``:
    the modes that carry the floor."""
    return float((mu2 + mass**2 < m_eff**2).double().sum(-1).mean())
