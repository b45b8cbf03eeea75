"""Observable kinds: what ``lqcdml measure`` computes, per theory.

An observable kind names the theory kinds it measures (``theories``) and those that measure it
by default (``default_for``: when ``measure.observables`` is empty). Each entry builds, from the ensemble config, a measurement that maps a batch of fields
``[B, ...]`` and per-chain generators to ``{variable: (values, dims, coords)}`` with
``values`` of shape ``[B, *extra]`` and ``dims``/``coords`` naming the extra axes.

Importing this module imports neither torch nor ``observables`` (the workflow validates
configs at parse time): each builder imports what its measurement uses when it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config.errors import fail as _fail
from .estimators import BiasCorrectedEstimator
from .registry import Kind, Registry, Validator
from .theories import theory_kind

if TYPE_CHECKING:
    import torch

__all__ = [
    "ObservableKind",
    "OBSERVABLES",
    "Measurement",
    "measurement_plan",
    "expensive_measurement",
    "ama_generators",
    "Variable",
]

Variable = tuple[np.ndarray, tuple[str, ...], dict[str, np.ndarray]]
#: (fields [B, ...], per-chain generators) -> {variable: (values [B, ...], dims, coords)}
Measurement = Callable[["torch.Tensor", list], dict]


@dataclass(frozen=True, kw_only=True)
class ObservableKind(Kind):
    """A measurement: ``build(ensemble) -> Measurement``. ``theories``: the theory kinds it
    measures; ``default_for``: those that measure it when ``measure.observables`` is empty;
    ``needs_fermions``: it needs the theory's Dirac operator."""

    theories: tuple[str, ...]
    build: Callable[[Any], Measurement]
    default_for: tuple[str, ...] = ()
    needs_fermions: bool = False


OBSERVABLES: Registry[ObservableKind] = Registry("observable", "measure.observables")


def measurement_plan(ens) -> list[Measurement]:
    """The measurements an ensemble's ``measure`` section asks for, in order."""
    th = ens.theory
    names = list(ens.measure.observables) or [k.name for k in OBSERVABLES if th.name in k.default_for]
    return [OBSERVABLES.lookup(n).build(ens) for n in names]


def _scalar(name: str, fn) -> Measurement:
    return lambda f, gens: {name: (fn(f).cpu().numpy(), (), {})}


def _group(ens):
    return theory_kind(ens.theory).group(ens.theory)


def _volume(ens) -> int:
    return int(np.prod(ens.theory.lattice))


def _register(
    name: str,
    theories: tuple[str, ...],
    build,
    default_for=(),
    validate: Validator | None = None,
    needs_fermions: bool = False,
) -> None:
    OBSERVABLES.register(
        ObservableKind(
            name=name,
            theories=theories,
            build=build,
            default_for=tuple(default_for),
            validate=validate,
            needs_fermions=needs_fermions,
        )
    )


# --- scalar field ----------------------------------------------------------------------
def _magnetization(ens) -> Measurement:
    from ..observables import magnetization

    return _scalar("magnetization", lambda p: magnetization(p) / _volume(ens))


def _abs_magnetization(ens) -> Measurement:
    from ..observables import abs_magnetization

    return _scalar("abs_magnetization", abs_magnetization)


def _chi2(ens) -> Measurement:
    from ..observables import two_point_susceptibility

    return _scalar("chi2", two_point_susceptibility)


def _phi2(ens) -> Measurement:
    return _scalar("phi2", lambda p: p.square().reshape(p.shape[0], -1).mean(dim=1))


def _schwinger_dyson(ens) -> Measurement:
    action = theory_kind(ens.theory).action(ens.theory)
    return _scalar("schwinger_dyson", lambda p: (p * action.force(p)).reshape(p.shape[0], -1).mean(dim=1))


def _correlator(ens) -> Measurement:
    from ..observables import zero_momentum_correlator

    t = np.arange(ens.theory.lattice[0])
    return lambda p, gens: {"correlator": (zero_momentum_correlator(p).cpu().numpy(), ("t",), {"t": t})}


_PHI4 = ("phi4",)
_register("magnetization", _PHI4, _magnetization, _PHI4)
_register("abs_magnetization", _PHI4, _abs_magnetization, _PHI4)
_register("chi2", _PHI4, _chi2, _PHI4)
_register("phi2", _PHI4, _phi2, _PHI4)
_register("schwinger_dyson", _PHI4, _schwinger_dyson, _PHI4)
_register("correlator", _PHI4, _correlator)


# --- gauge fields ----------------------------------------------------------------------
def _plaquette(ens) -> Measurement:
    from ..observables import plaquette

    group = _group(ens)
    return _scalar("plaquette", lambda u: plaquette(u, group))


def _polyakov(ens) -> Measurement:
    from ..observables import polyakov_loop

    group = _group(ens)

    def measure(links, gens):
        p = polyakov_loop(links, group).cpu().numpy()
        return {"polyakov_loop_re": (p.real.copy(), (), {}), "polyakov_loop_im": (p.imag.copy(), (), {})}

    return measure


def _loops(ens) -> Measurement:
    import torch

    from ..observables import wilson_loop

    group, loops = _group(ens), ens.measure.wilson_loops
    labels = np.array([f"{r}x{t}" for r, t in loops])

    def measure(links, gens):
        values = torch.stack([wilson_loop(links, group, r, t) for r, t in loops], dim=1)
        return {"wilson_loop": (values.cpu().numpy(), ("loop",), {"loop": labels})}

    return measure


def _charge(ens) -> Measurement:
    from ..observables import topological_charge_u1_2d

    volume = _volume(ens)

    def measure(links, gens):
        q = topological_charge_u1_2d(links).cpu().numpy()
        return {"topological_charge": (q, (), {}), "chi_t": (q * q / volume, (), {})}

    return measure


def _charge_checks(ens, p: str) -> None:
    if len(ens.theory.lattice) != 2:
        _fail(
            p + "measure.observables",
            list(ens.measure.observables),
            "topological_charge only in 2D (the geometric U(1) charge); in 4D measure 'gradient_flow'",
        )


def _gradient_flow(ens) -> Measurement:
    from ..observables import gradient_flow

    group, gf = _group(ens), ens.measure.gradient_flow

    def measure(links, gens):
        res = gradient_flow(links, group, gf.t_max, gf.eps, gf.measure_every)
        coords = {"flow_time": res.times}
        out = {
            "flow_energy": (res.energy.T.copy(), ("flow_time",), coords),
            "flow_t2E": (res.t2e.T.copy(), ("flow_time",), coords),
        }
        if res.charge is not None:
            out["flow_charge"] = (res.charge.T.copy(), ("flow_time",), coords)
        return out

    return measure


def _gradient_flow_checks(ens, p: str) -> None:
    if ens.measure.gradient_flow.t_max <= 0:
        _fail(
            p + "measure.gradient_flow.t_max",
            ens.measure.gradient_flow.t_max,
            "t_max > 0 when 'gradient_flow' is measured",
        )


_GAUGE = ("u1", "su")
_register("plaquette", _GAUGE, _plaquette, _GAUGE)
_register("polyakov_loop", _GAUGE, _polyakov, _GAUGE)
_register("wilson_loops", _GAUGE, _loops, ("su",))
_register("topological_charge", ("u1",), _charge, ("u1",), validate=_charge_checks)
_register("gradient_flow", _GAUGE, _gradient_flow, validate=_gradient_flow_checks)


# --- fermions ----------------------------------------------------------------------------
def _operator(ens):
    """The Dirac operator and the map from stored fields to its links: identity for SU(N);
    U(1) angles become 1 x 1 matrices ``exp(i theta)`` (the staggered Schwinger model)."""
    op = theory_kind(ens.theory).fermion_operator(ens.theory)
    group = _group(ens)
    if not group.internal_ndim:
        return op, group.to_matrix
    return op, lambda links: links


def _condensate(ens) -> Measurement:
    from ..observables.fermion import chiral_condensate

    (op, links_of), me, tol = _operator(ens), ens.measure, ens.sampler.solver_tol

    def measure(links, gens):
        c = chiral_condensate(op, links_of(links), gens, me.n_noise, me.noise, tol)
        return {"chiral_condensate": (c.mean(dim=1).cpu().numpy(), (), {})}

    return measure


def _traces(ens) -> Measurement:
    from ..observables.fermion import trace_inverse_powers

    (op, links_of), me, tol = _operator(ens), ens.measure, ens.sampler.solver_tol
    coords = {"power": np.arange(1, 5)}

    def measure(links, gens):
        t = trace_inverse_powers(op, links_of(links), gens, 4, me.n_noise, me.noise, tol).mean(dim=1)
        return {
            "trace_inverse_re": (t.real.cpu().numpy(), ("power",), coords),
            "trace_inverse_im": (t.imag.cpu().numpy(), ("power",), coords),
        }

    return measure


def _pion(ens) -> Measurement:
    from ..observables.fermion import pion_correlator

    (op, links_of), tol, t = _operator(ens), ens.sampler.solver_tol, np.arange(ens.theory.lattice[0])
    return lambda links, gens: {
        "pion_correlator": (pion_correlator(op, links_of(links), tol).cpu().numpy(), ("t",), {"t": t})
    }


def ama_generators(gens) -> list[torch.Generator]:
    """Generators for the noise of the truncated and the full tr D^-n of one configuration.

    Seeded from each chain's own generator seed (not its state), so the cheap
    (``trace_inverse_sloppy``, every configuration) and the expensive measurement (``lqcdml
    measure --expensive``, the labelled ones) of a configuration use the same noise vectors
    whatever else is measured: the features are then strongly correlated with the target.
    """
    import torch

    out = []
    for g in gens:
        fresh = torch.Generator(device=g.device)
        fresh.manual_seed((g.initial_seed() * 31 + 0xA3A) % (2**63 - 1))
        out.append(fresh)
    return out


def _sloppy_iterations(ens) -> int:
    """The truncated solve's CG iterations: the bias-corrected estimator's, else its default."""
    es = ens.estimator
    return es.sloppy_iterations if isinstance(es, BiasCorrectedEstimator) else BiasCorrectedEstimator.sloppy_iterations


def _sloppy_traces(ens) -> Measurement:
    from ..observables.fermion import trace_inverse_powers

    (op, links_of), me, k = _operator(ens), ens.measure, _sloppy_iterations(ens)
    coords = {"power": np.arange(1, 5)}

    def measure(links, gens):
        t = trace_inverse_powers(op, links_of(links), ama_generators(gens), 4, me.n_noise, me.noise, truncate=k).mean(
            dim=1
        )
        return {"trace_inverse_sloppy_re": (t.real.cpu().numpy(), ("power",), coords)}

    return measure


def expensive_measurement(ens) -> Measurement:
    """The expensive target of the bias-corrected estimators: Re tr D^-n / V, n = 1..4, per
    noise vector (``[B, noise, power]``), at ``sampler.solver_tol``, noise of ``ama_generators``."""
    from ..observables.fermion import trace_inverse_powers

    (op, links_of), me, tol = _operator(ens), ens.measure, ens.sampler.solver_tol
    coords = {"noise": np.arange(me.n_noise), "power": np.arange(1, 5)}

    def measure(links, gens):
        t = trace_inverse_powers(op, links_of(links), ama_generators(gens), 4, me.n_noise, me.noise, tol)
        return {"trace_inverse_noise_re": (t.real.cpu().numpy(), ("noise", "power"), coords)}

    return measure


_register("chiral_condensate", ("su", "u1"), _condensate, needs_fermions=True)
_register("trace_inverse", ("su", "u1"), _traces, needs_fermions=True)
_register("pion_correlator", ("su", "u1"), _pion, needs_fermions=True)
_register("trace_inverse_sloppy", ("su", "u1"), _sloppy_traces, needs_fermions=True)
