"""The transform contract: every flow layer is an ``InvertibleLayer``, inverses and log-Jacobians
of the real flows of ``nn`` in float64, composition, and the priors' domains and dtypes."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil

import pytest
import torch

import lqcdml.nn as lnn
from lqcdml.lattice import make_generators
from lqcdml.nn import (
    AffineCoupling,
    CheckerboardFlow,
    Compose,
    Domain,
    FlowModel,
    InvertibleLayer,
    NormalPrior,
    PlaquetteCoupling,
    Prior,
    U1EquivariantCoupling,
    UniformAnglePrior,
    checkerboard_masks,
    conv_net,
    phi4_flow,
    u1_flow,
    u1_plaquette_flow,
)
from lqcdml.nn.prior import HaarPrior, cast_precision
from lqcdml.nn.su_equivariant import su_flow
from lqcdml.nn.u1_plaquette import PlaquetteFlowModel, SinkPartnerCoupling, _partner_net

DT = torch.float64
#: the flow layers and models of ``nn`` (the contract test below also finds any new one)
FLOW_CLASSES = (
    AffineCoupling,
    U1EquivariantCoupling,
    PlaquetteCoupling,
    SinkPartnerCoupling,
    FlowModel,
    CheckerboardFlow,
    PlaquetteFlowModel,
    Compose,
)


def wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def randomize(module: torch.nn.Module, seed: int, std: float) -> torch.nn.Module:
    """Random normal weights everywhere (zero-initialised heads too), then float64."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module.to(DT)


def _nn_classes() -> list[type]:
    """Every class defined in a module of ``lqcdml.nn``."""
    found = []
    for info in pkgutil.iter_modules(lnn.__path__):
        module = importlib.import_module(f"lqcdml.nn.{info.name}")
        found += [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
    return found


def test_every_flow_layer_of_nn_is_an_invertible_layer():
    classes = _nn_classes()
    assert set(FLOW_CLASSES) <= set(classes)
    # a module class of nn with an inverse map is a flow layer: it must take the contract
    with_reverse = [c for c in classes if issubclass(c, torch.nn.Module) and callable(getattr(c, "reverse", None))]
    assert set(FLOW_CLASSES) <= set(with_reverse)
    assert all(issubclass(c, InvertibleLayer) for c in with_reverse), with_reverse
    priors = [c for c in classes if issubclass(c, Prior) and not inspect.isabstract(c)]
    assert set(priors) == {NormalPrior, UniformAnglePrior, HaarPrior}


def test_the_flow_builders_compose_invertible_layers_on_a_prior():
    for model in (
        phi4_flow((4, 4), 2, (4,)),
        u1_flow((4, 4), 2, (4,), n_mix=2),
        u1_plaquette_flow((4, 4), 2, (4,), n_mix=2, n_partners=2, partner_hidden=(4,)),
        su_flow((4, 4), 2, n_layers=2, hidden=4, bins=4),
    ):
        assert isinstance(model, FlowModel) and isinstance(model, InvertibleLayer)
        assert isinstance(model.prior, Prior)
        assert all(isinstance(layer, InvertibleLayer) for layer in model.layers)


def _affine_layer(shape, parity, fast, seed):
    even, odd = checkerboard_masks(shape)
    net = conv_net(len(shape), 1, 2, [4], 3, "leaky_relu", "tanh")
    return randomize(AffineCoupling(even if parity == 0 else odd, net, fast=fast), seed, 0.5)


def _partner(shape, index, seed):
    return randomize(SinkPartnerCoupling(shape, index, _partner_net((6,), 2, "tanh"), 2), seed, 0.3)


def _plaquette_layer(shape, parity, seed):
    return randomize(PlaquetteCoupling(shape, parity, conv_net(2, 2, 6, [4], 3, "tanh", final=None), 2), seed, 0.3)


def _u1_layer(shape, mu, offset, seed):
    net = conv_net(2, 4, 6, [4], 3, "leaky_relu", final=None)
    return randomize(U1EquivariantCoupling(shape, mu, offset, net, 2), seed, 0.3)


#: (name, transform, domain): the real flows of nn in float64 with random weights
def _flows():
    shape = (4, 4)
    yield "affine layer (site lists)", _affine_layer(shape, 0, None, 1), Domain.REAL
    yield "affine layer (masked)", _affine_layer(shape, 1, False, 2), Domain.REAL
    yield "phi4 flow (site-major)", randomize(phi4_flow(shape, 4, (4,)), 3, 0.5), Domain.REAL
    yield "phi4 flow (masked)", randomize(phi4_flow(shape, 4, (4,), fast=False), 3, 0.5), Domain.REAL
    yield "phi4 flow 3d", randomize(phi4_flow((2, 4, 4), 2, (4,)), 4, 0.5), Domain.REAL
    yield "phi4 flow 1d", randomize(phi4_flow((8,), 3, (4,)), 5, 0.5), Domain.REAL
    yield "u1 equivariant layer", _u1_layer(shape, 1, 2, 5), Domain.ANGLES
    yield "u1 flow", randomize(u1_flow(shape, 4, (4,), n_mix=2), 6, 0.2), Domain.ANGLES
    yield "plaquette layer", _plaquette_layer(shape, 0, 7), Domain.ANGLES
    yield "sink partner", _partner(shape, 9, 8), Domain.ANGLES
    yield (
        "plaquette flow (merged)",
        randomize(u1_plaquette_flow(shape, 2, (4,), n_mix=2, n_partners=3, partner_hidden=(4,)), 9, 0.3),
        Domain.ANGLES,
    )
    yield (
        "plaquette flow (layer by layer)",
        randomize(u1_plaquette_flow(shape, 2, (4,), n_mix=2, n_partners=3, partner_hidden=(4,), merged=False), 9, 0.3),
        Domain.ANGLES,
    )
    yield (
        "compose of mixed u1 layers",
        Compose(
            [
                _u1_layer(shape, 0, 1, 10),
                _plaquette_layer(shape, 1, 11),
                _partner(shape, 13, 12),
                _u1_layer(shape, 1, 3, 13),
            ]
        ),
        Domain.ANGLES,
    )


def _draw(flow: InvertibleLayer, domain: Domain, gen: torch.Generator) -> torch.Tensor:
    if domain is Domain.REAL:
        layer = flow.layers[0] if isinstance(flow, Compose) else flow
        return 1.5 * torch.randn((3, *layer.frozen.shape), generator=gen, dtype=DT)
    return (2 * torch.rand((3, 2, 4, 4), generator=gen, dtype=DT) - 1) * math.pi


def _distance(a: torch.Tensor, b: torch.Tensor, domain: Domain) -> float:
    diff = a - b if domain is Domain.REAL else wrap(a - b)
    return float(diff.abs().max())


@pytest.mark.parametrize("name, flow, domain", list(_flows()), ids=[f[0] for f in _flows()])
def test_forward_and_reverse_are_inverse_and_their_log_dets_cancel(name, flow, domain):
    x = _draw(flow, domain, torch.Generator().manual_seed(17))
    with torch.no_grad():
        y, ld = flow(x)
        x_back, ld_back = flow.reverse(y)
        z, ld_rev = flow.reverse(x)
        x_fwd, ld_fwd = flow(z)
    assert y.dtype == ld.dtype == DT and ld.shape == (3,)
    assert _distance(y, x, domain) > 1e-2  # not the identity
    assert float(ld.abs().max()) > 1e-3
    assert _distance(x_back, x, domain) < 1e-12
    assert _distance(x_fwd, x, domain) < 1e-12
    assert float((ld + ld_back).abs().max()) < 1e-12
    assert float((ld_rev + ld_fwd).abs().max()) < 1e-12


def test_compose_sums_the_log_dets_of_its_layers_in_order():
    shape = (4, 4)
    layers = [_affine_layer(shape, p, None, 20 + p) for p in (0, 1, 0)]
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(2), dtype=DT)
    y, total = x, torch.zeros(2, dtype=DT)
    for layer in layers:
        y, ld = layer(y)
        total = total + ld
    y_c, ld_c = Compose(layers)(x)
    assert torch.equal(y_c, y) and torch.equal(ld_c, total)
    # a flow model is the composition of its layers
    model = FlowModel(NormalPrior(shape), layers)
    assert torch.equal(model(x)[0], y) and torch.equal(model(x)[1], total)


def test_the_contract_refuses_what_is_not_an_invertible_layer_or_a_prior():
    class OnlyForward(InvertibleLayer):
        def forward(self, x):
            return x, torch.zeros(x.shape[0])

    with pytest.raises(TypeError, match="abstract"):
        OnlyForward()
    with pytest.raises(TypeError, match=r"compose: layers of type \['Identity'\]; allowed: InvertibleLayer"):
        Compose([torch.nn.Identity()])
    with pytest.raises(TypeError, match=r"flow model: prior of type Identity; allowed: a Prior subclass"):
        FlowModel(torch.nn.Identity(), [])


def test_priors_declare_domain_and_field_dtype():
    normal, angles = NormalPrior((4, 4)), UniformAnglePrior((2, 4, 4))
    assert normal.domain is Domain.REAL and angles.domain is Domain.ANGLES and normal.domain == "real"
    for prior in (normal, angles):
        assert prior.precision == torch.get_default_dtype() == prior.field_dtype()
        assert prior.field_dtype(torch.float32) == prior.field_dtype("float32") == torch.float32
        assert prior.field_dtype(torch.float64) == prior.field_dtype("float64") == torch.float64
        with pytest.raises(ValueError, match=r"precision = 'float16x'; allowed: float32, float64"):
            prior.field_dtype("float16x")
        with pytest.raises(ValueError, match=r"precision = torch.int64; allowed"):
            prior.field_dtype(torch.int64)
        with pytest.raises(
            ValueError,
            match=rf"dtype = torch.complex128; allowed: torch.float64 \(domain "
            rf"'{prior.domain.value}'\)",
        ):
            prior.sample(2, dtype=torch.complex128)
    assert not Domain.REAL.is_complex and not Domain.ANGLES.is_complex
    assert Domain.SU_N.is_complex and Domain.COMPLEX.is_complex


def test_the_precision_follows_the_model_and_stays_out_of_the_state_dict():
    model = phi4_flow((4, 4), 2, (4,))
    keys = set(model.state_dict())
    assert model.prior.field_dtype() == torch.float32
    assert model.sample(3)[0].dtype == torch.float32
    model.double()
    assert model.prior.precision == model.prior.field_dtype() == torch.float64
    x, log_q = model.sample(3, torch.Generator().manual_seed(0))
    assert x.dtype == log_q.dtype == torch.float64
    assert set(model.state_dict()) == keys and not any("precision" in k for k in keys)
    model.to(torch.float32)
    assert model.prior.field_dtype() == torch.float32
    cast_precision(model, "float64")
    assert model.prior.field_dtype() == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_cast_precision_keeps_complex_tensors_complex():
    module = torch.nn.Module()
    module.register_buffer("links", torch.eye(2, dtype=torch.complex64))
    module.register_buffer("index", torch.arange(3))
    module.weight = torch.nn.Parameter(torch.ones(2))
    cast_precision(module, torch.float64)
    assert module.links.dtype == torch.complex128 and module.weight.dtype == torch.float64
    assert module.index.dtype == torch.int64
    assert torch.equal(module.links, torch.eye(2, dtype=torch.complex128))


def test_prior_draws_and_densities():
    normal = NormalPrior((3, 4), scale=0.7).double()
    z = normal.sample(5, torch.Generator().manual_seed(1))
    assert z.shape == (5, 3, 4) and z.dtype == DT
    reference = torch.distributions.Normal(torch.tensor(0.0, dtype=DT), 0.7).log_prob(z).flatten(1).sum(1)
    assert torch.allclose(normal.log_prob(z), reference, rtol=1e-13)
    chains = normal.sample_chains(make_generators(3, 4))
    assert chains.shape == (4, 3, 4) and chains.dtype == DT
    assert torch.equal(normal.sample_chains(make_generators(3, 4), DT), chains)
    angles = UniformAnglePrior((2, 4, 4))
    a = angles.sample_chains(make_generators(1, 3))
    assert a.dtype == torch.float32 and float(a.abs().max()) <= math.pi
    assert torch.allclose(angles.log_prob(a), torch.full((3,), -32 * math.log(2 * math.pi)))
    with pytest.raises(ValueError, match=r"normal prior: scale = 0.0; allowed: > 0"):
        NormalPrior((2,), scale=0.0)
