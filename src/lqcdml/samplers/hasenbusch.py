"""HMC with Hasenbusch mass preconditioning, each factor of the determinant on its own time scale.

The light determinant of every pseudofermion field is split at the Hasenbusch masses
``m < m_1 < ... < m_k`` (``theories.hasenbusch_split``) into ratios and a heavy factor. The
nested integrator has one level per factor, the lightest ratio outermost (its force is the
smallest and the dearest), then the heavier ratios, then the heavy determinant, and the
gauge action innermost:

    level 0: ratio(m, m_1)        n_steps steps per trajectory
    level j: ratio(m_j, m_{j+1})  steps[j - 1] steps per position update of level j - 1
    level k: heavy(m_k)           steps[k - 1]
    level k+1: gauge              gauge_steps

The heat bath and the Metropolis test use the same split action, which is an identity of
the weight (up to the rational approximation of rooted fields, as in RHMC), so the chain
samples what plain HMC samples.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..theories import Action, PseudofermionAction, hasenbusch_split
from .hmc import HMC
from .integrators import Integrator, Level

__all__ = ["hasenbusch_hmc", "hasenbusch_levels"]


def hasenbusch_levels(
    gauge: Action,
    light: Sequence[PseudofermionAction],
    masses: Sequence[float],
    n_steps: int,
    steps: Sequence[int],
    gauge_steps: int = 1,
    scheme: str = "omelyan",
) -> tuple[Level, ...]:
    """The levels above for the light pseudofermion terms ``light`` (one per field)."""
    if len(steps) != len(masses):
        raise ValueError(
            f"hasenbusch steps = {list(steps)!r}; allowed: one per Hasenbusch mass ({len(masses)}: {list(masses)!r})"
        )
    if not light:
        raise ValueError("hasenbusch: no pseudofermion terms; allowed: a theory with dynamical fermions")
    splits = [hasenbusch_split(term, masses) for term in light]
    per_level = [tuple(split[j] for split in splits) for j in range(len(masses) + 1)]
    counts = [n_steps, *steps]
    levels = [Level(terms, n, scheme) for terms, n in zip(per_level, counts)]
    return (*levels, Level((gauge,), gauge_steps, scheme))


def hasenbusch_hmc(
    gauge: Action,
    light: Sequence[PseudofermionAction],
    masses: Sequence[float],
    n_steps: int,
    steps: Sequence[int],
    gauge_steps: int = 1,
    scheme: str = "omelyan",
    trajectory_length: float = 1.0,
    trajectory_jitter: float = 0.0,
) -> HMC:
    """HMC on the Hasenbusch-split action (``hasenbusch_levels``)."""
    levels = hasenbusch_levels(gauge, light, masses, n_steps, steps, gauge_steps, scheme)
    return HMC(Integrator(gauge.group, levels), trajectory_length, trajectory_jitter=trajectory_jitter)
