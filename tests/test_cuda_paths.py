"""Every training and sampling path on every device: the CPU here, CUDA where torch sees one.

Each case runs a few steps of one path on a tiny lattice and checks that what it returns
lives on the requested device and is sensible (finite, acceptance in [0, 1], fields on the
group). Where the computation is deterministic (actions, forces, molecular dynamics, solves,
network maps and their gradients) the device's result is compared with CPU float64; on the
CPU that comparison is trivial, the CUDA run is what it is for. CPU and CUDA generators are
different algorithms (Mersenne twister, Philox), so random draws, and with them whole chains,
differ between devices: a chain is only compared with itself (checkpoint and resume on the
same device), and one begun on one device type is refused on the other.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from lqcdml.config import compose_experiment
from lqcdml.driver import run_chain_into_store, train_into_checkpoint
from lqcdml.driver.specs import chain_spec, check_compatible, load_model, store_meta
from lqcdml.estimators import control_variate_terms, schwinger_dyson_term, train_control_variate
from lqcdml.identity import training_hash
from lqcdml.kinds import trainer_kind
from lqcdml.lattice import SU, U1, make_generators, randn, restore_generators
from lqcdml.nn import (
    PlaquetteVectorField,
    ShiftedMLP,
    cask_net,
    phi4_flow,
    stout_net,
    u1_flow,
    u1_plaquette_flow,
)
from lqcdml.observables import (
    chiral_condensate,
    gradient_flow,
    pion_correlator,
    plaquette,
    polyakov_loop,
    timeslice_correlator,
    topological_charge_u1_2d,
    trace_inverse_powers,
)
from lqcdml.samplers import (
    HMC,
    ChainState,
    FlowMCMC,
    Integrator,
    Level,
    SmearedPseudofermion,
    run_chain,
    slhmc,
)
from lqcdml.solvers import cg, multishift_cg
from lqcdml.store import EnsembleStore, StoreError
from lqcdml.theories import Phi4Action, WilsonGaugeAction
from lqcdml.theories.staggered import StaggeredOperator, StaggeredPseudofermion
from lqcdml.train import (
    FlowTrainer,
    OfflineSLHMCTrainer,
    OnlineSLHMCTrainer,
    action_mismatch,
    equilibrium_acceptance,
    evaluate_flow,
)

from .helpers import randomize

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
    ),
]
on_every_device = pytest.mark.parametrize("device", DEVICES)

SU2 = SU(2)
SU2_SHAPE = (4, 2, 2, 2, 2)  # links of the 2^4 lattice
LOOPS = ("plaquette", "rectangle", "polyakov")


def _on(device: str, *tensors: torch.Tensor) -> None:
    """Every tensor lives on ``device`` (its type: ``cuda`` matches ``cuda:0``)."""
    for t in tensors:
        assert t.device.type == torch.device(device).type, (t.device, device)


def _agree(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-10) -> None:
    """A device result ``a`` equals the CPU float64 reference ``b`` to ``tol``."""
    torch.testing.assert_close(a.detach().cpu(), b.detach().cpu(), rtol=tol, atol=tol)


def _probability(x: torch.Tensor | float) -> None:
    x = torch.as_tensor(x, dtype=torch.float64)
    assert bool(torch.all((x >= 0) & (x <= 1))), x


def _su2_links(n_chains: int = 2, seed: int = 0, eps: float = 0.5) -> torch.Tensor:
    """CPU SU(2) links of the 2^4 lattice near the identity."""
    return SU2.near_identity(make_generators(seed, n_chains), SU2_SHAPE, eps)


def _staggered(mass: float, n_flavours: int = 4) -> StaggeredPseudofermion:
    return StaggeredPseudofermion(StaggeredOperator(mass, SU2), n_flavours, tol=1e-11, rational_tol=1e-10)


# --- HMC and RHMC ----------------------------------------------------------------------------
@on_every_device
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hmc_of_2d_u1(device, dtype):
    group, action = U1(), WilsonGaugeAction(2.0, U1())
    sampler = HMC(Integrator.single(action, 4, "omelyan"), 1.0)
    state = sampler.start(make_generators(5, 2, device), lambda g: group.haar(g, (2, 4, 4), dtype))
    state, rec = run_chain(sampler, state, 2, measure=lambda f: plaquette(f, group))
    _on(device, state.fields, rec["delta_H"], rec["accepted"], rec["value"])
    assert state.fields.dtype == dtype and state.trajectory == 2
    assert torch.isfinite(rec["delta_H"]).all() and bool((rec["value"].abs() <= 1).all())
    assert int(state.n_accepted.sum()) == int(rec["accepted"].sum())
    # the serialised state continues the chain bit for bit on the same device
    resumed = ChainState.from_dict(copy.deepcopy(state.to_dict()), device)
    a, info = sampler.step(state)
    b, _ = sampler.step(resumed)
    assert torch.equal(a.fields, b.fields)
    _probability(info.accept_prob)
    # the molecular dynamics (deterministic) agrees with CPU float64
    q0 = group.haar(make_generators(1, 2), (2, 4, 4))
    p0 = group.random_momentum(make_generators(2, 2), (2, 4, 4))
    ref = sampler.integrator.integrate(q0, p0, 1.0)
    out = sampler.integrator.integrate(q0.to(device, dtype), p0.to(device, dtype), 1.0)
    tol = 1e-10 if dtype == torch.float64 else 1e-3
    _agree(out.q.double(), ref.q, tol)
    _agree(sampler.hamiltonian((action,), out.q, out.p).double(), sampler.hamiltonian((action,), ref.q, ref.p), tol)


@on_every_device
def test_rhmc_of_staggered_su2(device):
    """One trajectory with an even-odd (Nf = 4) and a rational (Nf = 3) pseudofermion."""
    gauge = WilsonGaugeAction(2.0, SU2)
    fermions = (_staggered(0.5, 4), _staggered(0.5, 3))
    levels = (Level(fermions, 2, "omelyan"), Level((gauge,), 2, "omelyan"))
    sampler = HMC(Integrator(SU2, levels), 0.5)
    state = ChainState.initial(_su2_links().to(device), make_generators(7, 2, device))
    state, info = sampler.step(state)
    _on(device, state.fields, *state.pseudofermions, info.delta_H, info.accept_prob)
    assert torch.isfinite(info.delta_H).all() and info.counters["cg_md"] > 0
    _probability(info.accept_prob)
    assert float(SU2.deviation(state.fields)) < 1e-12
    # heat bath fields, actions, forces and a whole trajectory agree with CPU float64
    links = _su2_links(seed=3)
    phis = tuple(t.heat_bath(links, make_generators(4, 2)) for t in fermions)
    for term, phi in zip(fermions, phis):
        _agree(term.action(links.to(device), phi.to(device)), term.action(links, phi), 1e-8)
        _agree(term.force(links.to(device), phi.to(device)), term.force(links, phi), 1e-8)
    p0 = SU2.random_momentum(make_generators(5, 2), SU2_SHAPE)
    md = sampler.integrator.bind(phis)
    ref = md.integrate(links, p0, 0.5)
    out = sampler.integrator.bind(tuple(p.to(device) for p in phis)).integrate(links.to(device), p0.to(device), 0.5)
    _agree(out.q, ref.q, 1e-8)
    _agree(out.p, ref.p, 1e-7)


@on_every_device
def test_solvers(device):
    op = StaggeredOperator(0.4, SU2)
    links = _su2_links(seed=8)
    b = torch.complex(randn(make_generators(9, 2), (2, 2, 2, 2, 2)), randn(make_generators(10, 2), (2, 2, 2, 2, 2)))
    x_ref, _ = cg(lambda v: op.normal(links, v), b, tol=1e-12)
    ld, bd = links.to(device), b.to(device)
    x, info = cg(lambda v: op.normal(ld, v), bd, tol=1e-12)
    _on(device, x, info.residual)
    _agree(x, x_ref, 1e-9)
    xs_ref, _ = multishift_cg(lambda v: op.normal(links, v), b, [0.0, 0.1, 1.0], tol=1e-12)
    xs, info = multishift_cg(lambda v: op.normal(ld, v), bd, [0.0, 0.1, 1.0], tol=1e-12)
    _on(device, xs, info.residual)
    _agree(xs, xs_ref, 1e-9)


# --- observables (the measurements of ``lqcdml measure``) ---------------------------------------
@on_every_device
def test_observables(device):
    op = StaggeredOperator(0.5, SU2)
    links = _su2_links(seed=11)
    ld = links.to(device)
    gens = make_generators(12, 2, device)
    for noise in ("z2", "u1"):
        c = chiral_condensate(op, ld, gens, n_noise=2, noise=noise, tol=1e-10)
        _on(device, c)
        assert c.shape == (2, 2) and torch.isfinite(c).all()
    t = trace_inverse_powers(op, ld, gens, 2, 1, "u1", truncate=3)
    _on(device, t)
    assert torch.isfinite(t).all()
    _agree(pion_correlator(op, ld, 1e-11), pion_correlator(op, links, 1e-11), 1e-8)
    _agree(plaquette(ld, SU2), plaquette(links, SU2))
    _agree(polyakov_loop(ld, SU2), polyakov_loop(links, SU2))
    flowed, ref = gradient_flow(ld, SU2, 0.1, 0.05), gradient_flow(links, SU2, 0.1, 0.05)
    _on(device, flowed.links)
    _agree(torch.from_numpy(flowed.energy), torch.from_numpy(ref.energy))
    _agree(torch.from_numpy(flowed.charge), torch.from_numpy(ref.charge))
    theta = U1().haar(make_generators(13, 2), (2, 4, 4))
    q = topological_charge_u1_2d(theta.to(device))
    _on(device, q)
    _agree(q, topological_charge_u1_2d(theta))


# --- normalizing flows: reverse-KL training, flow MCMC ---------------------------------------
def _flow_case(kind: str):
    """(model in float64 with fixed weights, action, a CPU batch of fields for the maps)."""
    torch.manual_seed(0)
    if kind == "phi4":
        model = phi4_flow((4, 4), n_layers=2, hidden=(4,))
        return model.double(), Phi4Action(m2=-4.0, lam=8.0).action, 0.5 * randn(make_generators(3, 4), (4, 4))
    if kind == "u1_equivariant":
        model = u1_flow((4, 4), n_layers=2, hidden=(4,), n_mix=2)
    else:
        model = u1_plaquette_flow((4, 4), n_layers=2, hidden=(4,), n_mix=2, n_partners=2, partner_hidden=(4,))
    randomize(model, 0, 0.1)
    return model.double(), WilsonGaugeAction(1.0, U1()).action, U1().haar(make_generators(3, 4), (2, 4, 4))


@on_every_device
@pytest.mark.parametrize("kind", ["phi4", "u1_equivariant", "u1_plaquette"])
def test_flow_training_and_flow_mcmc(device, kind):
    ref, action, x = _flow_case(kind)
    model = copy.deepcopy(ref).to(device)
    _agree(model.log_prob(x.to(device)), ref.log_prob(x), 1e-9)
    y, log_det = model(x.to(device))
    y_ref, log_det_ref = ref(x)
    _agree(y, y_ref, 1e-9)
    _agree(log_det, log_det_ref, 1e-9)
    trainer = FlowTrainer(model, action, steps=4, batch=8, lr=1e-3, seed=1)
    assert trainer.generator.device.type == torch.device(device).type
    losses = [trainer.step() for _ in range(2)]
    assert all(math.isfinite(v) for v in losses)
    assert all(0 < e <= 1 for e in trainer.history["ess"])
    _on(device, *model.parameters())
    # the trainer's state (CUDA generator included) resumes bit for bit on the same device
    twin = FlowTrainer(copy.deepcopy(model), action, steps=4, batch=8, lr=1e-3, seed=99)
    twin.load_state_dict(copy.deepcopy(trainer.state_dict()))
    assert twin.step() == trainer.step()
    # flow MCMC with the (frozen) trained model
    model.eval().requires_grad_(False)
    sampler = FlowMCMC(model, action)
    state = sampler.start(make_generators(4, 4, device))
    state, rec = run_chain(sampler, state, 3)
    _on(device, state.fields, state.extra["log_weight"], rec["delta_H"], rec["accepted"])
    assert torch.isfinite(state.extra["log_weight"]).all()
    _probability(rec["accepted"].double().mean())
    trained_on_cpu = FlowMCMC(copy.deepcopy(model).cpu(), action)
    _agree(sampler.log_weight(state.fields), trained_on_cpu.log_weight(state.fields.cpu()), 1e-8)
    quality = evaluate_flow(model, action, 64, seed=2)
    assert 0 < quality["ess"] <= 1
    _probability(quality["acceptance"])


# --- self-learning HMC: stout and CASK effective actions, their training ------------------------
def _smearing(kind: str) -> torch.nn.Module:
    net = stout_net(SU2, 4, 1, LOOPS) if kind == "stout" else cask_net(SU2, 4, 1, LOOPS, extent=1)
    return randomize(net, 0, 0.04)


@on_every_device
@pytest.mark.parametrize("kind", ["stout", "cask"])
def test_slhmc(device, kind):
    ref = _smearing(kind)
    net = copy.deepcopy(ref).to(device).requires_grad_(False)
    effective = SmearedPseudofermion(_staggered(0.6), net)
    sampler = slhmc(
        WilsonGaugeAction(2.0, SU2), [_staggered(0.4)], [effective], n_steps=2, gauge_steps=1, trajectory_length=0.3
    )
    state = ChainState.initial(_su2_links().to(device), make_generators(21, 2, device))
    for _ in range(2):
        state, info = sampler.step(state)
        _on(device, state.fields, info.delta_H, *state.pseudofermions)
        assert torch.isfinite(info.delta_H).all()
        _probability(info.accept_prob)
    assert float(SU2.deviation(state.fields)) < 1e-12
    # the smeared links and the effective force (one VJP through the network) agree with CPU float64
    links = _su2_links(seed=22)
    phi = _staggered(0.4).heat_bath(links, make_generators(23, 2))
    _agree(net(links.to(device)), ref(links))
    cpu_effective = SmearedPseudofermion(_staggered(0.6), ref)
    _agree(effective.force(links.to(device), phi.to(device)), cpu_effective.force(links, phi), 1e-8)


@on_every_device
def test_slhmc_training(device):
    exact, eff = [_staggered(0.4)], [_staggered(0.6)]
    configs = _su2_links(n_chains=4, seed=31)
    ref = _smearing("stout")
    # the loss and its gradient (the VJP of the analytic force) agree with CPU float64
    phis = [exact[0].heat_bath(configs, make_generators(32, 4))]
    net = copy.deepcopy(ref).to(device)
    diff_ref, backward_ref = action_mismatch(ref, exact, eff, configs, phis, centred=True)
    diff, backward = action_mismatch(net, exact, eff, configs.to(device), [p.to(device) for p in phis], centred=True)
    backward_ref()
    backward()
    _on(device, diff)
    _agree(diff, diff_ref, 1e-8)
    for p, q in zip(net.parameters(), ref.parameters()):
        _agree(p.grad, q.grad, 1e-8)
    # one offline step on configurations on the device
    net = copy.deepcopy(ref).to(device)
    offline = OfflineSLHMCTrainer(net, configs.to(device), exact, eff, batch=2, lr=1e-3, seed=0)
    assert math.isfinite(offline.step())
    _on(device, *net.parameters())
    # one online step: a self-learning HMC trajectory, then an Adam step
    net = copy.deepcopy(ref).to(device)

    def make_sampler(model):
        return slhmc(
            WilsonGaugeAction(2.0, SU2), exact, [SmearedPseudofermion(eff[0], model)], n_steps=2, trajectory_length=0.3
        )

    start = ChainState.initial(configs[:2].to(device), make_generators(33, 2, device))
    online = OnlineSLHMCTrainer(net, make_sampler, exact, eff, start, lr=1e-3)
    assert math.isfinite(online.step())
    _probability(online.history["acceptance"][-1])
    _on(device, online.state.fields, *net.parameters())
    resumed = OnlineSLHMCTrainer(copy.deepcopy(net), make_sampler, exact, eff, start, lr=1e-3)
    resumed.load_state_dict(copy.deepcopy(online.state_dict()))
    _on(device, resumed.state.fields)
    assert torch.equal(resumed.state.fields, online.state.fields)
    probe = equilibrium_acceptance(make_sampler(net.eval().requires_grad_(False)), configs.to(device), seed=3)
    _probability(probe["acceptance"])


# --- control variates --------------------------------------------------------------------------
def _cv_case(kind: str):
    """(vector field, force, CPU configurations, CPU observable)."""
    if kind == "phi4":
        x = 0.5 * randn(make_generators(41, 16), (4, 4))
        g = randomize(ShiftedMLP((4, 4), hidden=(4,)), 0, 0.3)
        return g, Phi4Action(m2=0.5, lam=1.0, convention="standard").force, x, timeslice_correlator(x, 2)
    x = U1().haar(make_generators(41, 16), (2, 4, 4))
    g = randomize(PlaquetteVectorField((4,)), 0, 0.3)
    return g, WilsonGaugeAction(1.0, U1()).force, x, plaquette(x, U1())


@on_every_device
@pytest.mark.parametrize("kind", ["phi4", "u1"])
def test_control_variate_training(device, kind):
    ref, force, x, o = _cv_case(kind)
    g = copy.deepcopy(ref).to(device)
    xd, od = x.to(device), o.to(device)
    _agree(schwinger_dyson_term(g, force, xd), schwinger_dyson_term(ref, force, x))
    for divergence in ("exact", "hutchinson"):
        hist = train_control_variate(g, force, xd, od, steps=2, batch=8, divergence=divergence)
        assert all(math.isfinite(v) for v in hist.loss) and math.isfinite(hist.mu)
    _on(device, *g.parameters())
    f = control_variate_terms(g, force, xd, batch=8, divergence="hutchinson")
    assert f.shape == (16,) and bool(np.isfinite(f).all())


# --- the configured paths: driver, stores, checkpoints -------------------------------------------
@on_every_device
def test_configured_hmc_and_rhmc_chains_run_and_resume(device, tmp_path):
    cfg = compose_experiment("ci_tiny", [f"device={device}", "ensembles.u1.chain.n_chains=1"])
    for ensemble, first, total in (("u1", 2, 3), ("stag", 1, 2)):
        path = tmp_path / f"{ensemble}.zarr"
        for n in (first, total):  # the second run resumes from the first one's commit
            summary = run_chain_into_store(chain_spec(cfg, ensemble, 1, store_path=path), path, n)
        assert summary["n_committed"] == total and summary["resumed_from"] == first
        _probability(summary["acceptance"])
        store = EnsembleStore.open(path)
        assert store.meta["device_type"] == torch.device(device).type
        assert bool(torch.isfinite(torch.as_tensor(store.read_records("plaquette"))).all())


@on_every_device
def test_configured_flow_training_then_sampling(device, tmp_path):
    cfg = compose_experiment("ci_tiny", [f"device={device}"])
    ens = cfg.ensembles["flow"]
    meta, ckpt = {"training_hash": training_hash(ens)}, tmp_path / "flow.pt"
    trainer = trainer_kind(ens).build(ens, torch.device(device), None)
    train_into_checkpoint(trainer, ckpt, 1, 1, meta)
    _on(device, *trainer.model.parameters())
    resumed = trainer_kind(ens).build(
        ens, torch.device(device), None
    )  # a later run: the checkpoint is read onto the CPU first
    train_into_checkpoint(resumed, ckpt, 2, 1, meta)
    assert resumed.step_count == 2 and resumed.history["loss"][:1] == trainer.history["loss"]
    assert all(math.isfinite(v) for v in resumed.history["loss"])
    _on(device, *resumed.model.parameters(), *load_model(ens, ckpt, device).parameters())
    path = tmp_path / "flow.zarr"
    summary = run_chain_into_store(chain_spec(cfg, "flow", 1, ckpt, store_path=path), path, 2)
    assert summary["n_committed"] == 2
    _probability(summary["acceptance"])


@on_every_device
def test_configured_slhmc_training_then_sampling(device, tmp_path):
    cfg = compose_experiment("ci_slhmc", [f"device={device}", "ensembles.cask.sampler.n_steps=2"])
    ens = cfg.ensembles["cask"]
    trainer, ckpt = trainer_kind(ens).build(ens, torch.device(device), None), tmp_path / "cask.pt"
    train_into_checkpoint(trainer, ckpt, 1, 1, {"training_hash": training_hash(ens)})
    assert all(math.isfinite(v) for v in trainer.history["loss"])
    _on(device, trainer.state.fields, *trainer.net.parameters())
    path = tmp_path / "cask.zarr"
    summary = run_chain_into_store(chain_spec(cfg, "cask", 1, ckpt, store_path=path), path, 1)
    assert summary["n_committed"] == 1
    _probability(summary["acceptance"])


# --- a chain continues only on the device type it began on (checked without a GPU) -------------
def test_generator_states_of_another_device_type_are_refused():
    philox = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator state
    with pytest.raises(ValueError, match="does not fit a cpu generator"):
        restore_generators([philox], "cpu")


def test_a_store_begun_on_cuda_is_not_continued_on_the_cpu(tmp_path):
    cfg = compose_experiment("ci_tiny", ["device=cpu"])
    meta = store_meta(cfg, "u1", 1)
    assert meta["device_type"] == "cpu"
    with pytest.raises(StoreError, match=r"generated on cuda, this run is on cpu.*allowed: device = cuda"):
        check_compatible(meta, {**meta, "device_type": "cuda"}, tmp_path / "u1.zarr")
    check_compatible(meta, {k: v for k, v in meta.items() if k != "device_type"}, tmp_path / "u1.zarr")  # older store
