"""Exact values and published references beside which the summary puts each estimate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .exact import (
    free_scalar_propagator,
    free_scalar_zero_momentum_correlator,
    strong_coupling_plaquette,
    u1_2d_log_z,
    u1_2d_plaquette,
    u1_2d_plaquette_susceptibility,
    u1_2d_topological_susceptibility,
)

__all__ = ["flow_log_z", "kl_per_plaquette", "reference_value", "SLHMC_HMC_ROW", "TUTORIAL_HMC"]

#: strong-coupling expansion trusted below these couplings (4D, closed-surface order)
_STRONG_COUPLING_MAX_BETA = {2: 1.2, 3: 3.5}
#: HMC references at the flow-tutorial point (2D, L = 8, m2 = -4, lam = 8),
#: docs/reference.md#flow-tutorial
#: HMC row of the two-colour SLHMC paper (Polyakov loop there is tr, not / N: halved here)
SLHMC_HMC_ROW = {
    "plaquette": (0.7025, 0.0001),
    "polyakov_loop_re": (0.41, 0.005),
    "chiral_condensate": (0.4245, 0.0005),
}
TUTORIAL_HMC = {"chi2": (0.7447, 0.0005), "abs_magnetization": (0.08691, 0.00009), "phi2": (0.1434576, 0.0000085)}


def _su_n_2d(theory: Mapping[str, Any], observable: str, coord: Any) -> float | None:
    """Exact 2D SU(N) plaquette, its susceptibility ``V (<p^2> - <p>^2)`` and ``R x T`` Wilson loops
    (``coord``: the label ``"RxT"``) on the finite torus: loops depend on the area only
    (``analysis.exact_sun_2d``)."""
    from .exact_sun_2d import su_n_2d_plaquette, su_n_2d_plaquette_susceptibility, su_n_2d_wilson_loop

    n, beta = int(theory["n_colors"]), float(theory["beta"])
    volume = int(np.prod(theory["lattice"]))
    if observable == "plaquette":
        return su_n_2d_plaquette(beta, n, volume)
    if observable == "plaquette_susceptibility":
        return su_n_2d_plaquette_susceptibility(beta, n, volume)
    if observable == "wilson_loop" and coord is not None:
        r, t = (int(x) for x in str(coord).split("x"))
        if r * t < volume:
            return su_n_2d_wilson_loop(beta, n, volume, r * t)
    return None


def flow_log_z(theory: Mapping[str, Any]) -> float | None:
    """``ln Z`` in the measure a flow's density is given in (``None`` where not known exactly), so
    that ``KL(q || p) = E_q[ln q + S] + ln Z``: 2D U(1), angles with Lebesgue measure (``Z``
    times ``(2 pi)^{links}``); 2D quenched SU(N), Haar measure of unit volume."""
    from .exact_sun_2d import su_n_2d_log_z

    lattice = list(theory["lattice"])
    if len(lattice) != 2 or theory.get("fermion", "none") != "none":
        return None
    volume = lattice[0] * lattice[1]
    if theory["name"] == "u1":
        return u1_2d_log_z(float(theory["beta"]), volume) + 2 * volume * float(np.log(2 * np.pi))
    if theory["name"] == "su":
        return su_n_2d_log_z(float(theory["beta"]), int(theory["n_colors"]), volume)
    return None


def kl_per_plaquette(theory: Mapping[str, Any], loss: Any) -> Any:
    """``KL(q || p)`` per plaquette, ``(loss + ln Z) / V``, of a 2D flow's reverse-KL loss (a number
    or an array), or ``None`` where ``ln Z`` is not known exactly (``flow_log_z``)."""
    log_z = flow_log_z(theory)
    return None if log_z is None else (loss + log_z) / int(np.prod(theory["lattice"]))


def reference_value(theory: Mapping[str, Any], observable: str, coord: Any = None) -> tuple[float, float, str] | None:
    """``(value, uncertainty, source)`` for ``observable`` of ``theory``, or ``None``.

    ``uncertainty`` is 0 for exact results. ``coord`` selects an element of a
    vector observable (a time ``t`` for correlators).
    """
    if observable == "exp_minus_delta_H":
        return 1.0, 0.0, "exact (area-preserving, reversible MD)"
    name, lattice = theory["name"], list(theory["lattice"])
    dim = len(lattice)
    if name == "u1" and dim == 2:
        n_p = lattice[0] * lattice[1]
        if observable == "plaquette":
            return u1_2d_plaquette(theory["beta"], n_p), 0.0, "exact (Bessel functions)"
        if observable == "chi_t":
            return u1_2d_topological_susceptibility(theory["beta"], n_p), 0.0, "exact (Bessel functions)"
        if observable == "plaquette_susceptibility":
            return u1_2d_plaquette_susceptibility(theory["beta"], n_p), 0.0, "exact (Bessel functions)"
    quenched = theory.get("fermion", "none") == "none"
    if name == "su" and dim == 2 and quenched:
        exact = _su_n_2d(theory, observable, coord)
        if exact is not None:
            return exact, 0.0, "exact (character expansion, finite volume)"
    if name == "su" and theory.get("n_colors") == 2 and observable == "polyakov_loop_im":
        return 0.0, 0.0, "exact (SU(2) traces are real)"
    if name in ("u1", "su") and quenched:
        if observable in ("polyakov_loop_re", "polyakov_loop_im"):
            return 0.0, 0.0, "exact (centre symmetry)"
        if observable == "topological_charge":
            return 0.0, 0.0, "exact (parity)"
    slhmc = (
        name == "su"
        and theory.get("n_colors") == 2
        and lattice == [4, 4, 4, 4]
        and np.isclose(theory["beta"], 2.7)
        and theory.get("fermion") == "staggered"
        and np.isclose(theory.get("fermion_mass", 0), 0.3)
        and theory.get("antiperiodic", True)
        and theory.get("n_flavours") == 4  # the flavour content that reproduces the paper's HMC row
    )
    if slhmc and observable in SLHMC_HMC_ROW:
        value, err = SLHMC_HMC_ROW[observable]
        return value, err, "HMC, Nagai-Tomiya arXiv:2103.11965 (Nf = 4 reproduces it; the text says 2)"
    if name == "su" and dim == 4 and observable == "plaquette" and theory.get("fermion", "none") == "none":
        n = theory["n_colors"]
        if theory["beta"] <= _STRONG_COUPLING_MAX_BETA.get(n, 0):
            return strong_coupling_plaquette(theory["beta"], n), 0.0, "strong-coupling expansion"
    if name == "phi4":
        if observable == "schwinger_dyson":
            return 1.0, 0.0, "exact (Schwinger-Dyson identity)"
        if observable == "magnetization":
            return 0.0, 0.0, "exact (Z2 symmetry)"
        if theory["lam"] == 0 and theory["m2"] > 0:
            g = free_scalar_propagator(lattice, theory["m2"], theory["convention"])
            if observable == "chi2":
                return float(g.sum()), 0.0, "exact (free field)"
            if observable == "phi2":
                return float(g.flat[0]), 0.0, "exact (free field)"
            if observable == "correlator" and coord is not None:
                c = free_scalar_zero_momentum_correlator(lattice, theory["m2"], theory["convention"])
                return float(c[int(coord)]), 0.0, "exact (free field)"
        tutorial = (
            lattice == [8, 8]
            and theory["convention"] == "flow"
            and np.isclose(theory["m2"], -4.0)
            and np.isclose(theory["lam"], 8.0)
        )
        if tutorial and observable in TUTORIAL_HMC:
            value, err = TUTORIAL_HMC[observable]
            return value, err, "HMC reference (docs/reference.md)"
    return None
