"""The flow sampler and trainer take the field dtype from the prior: a Haar prior on SU(2) (built
here: SU(N) flow layers belong elsewhere, but the contract admits them) keeps complex links
through ``FlowMCMC`` and ``FlowTrainer``; a field dtype the prior's domain does not have is refused."""

from __future__ import annotations

import pytest
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.nn import Domain, FlowModel, InvertibleLayer, Prior, phi4_flow
from lqcdml.nn.transform import real_dtype
from lqcdml.samplers import FlowMCMC
from lqcdml.theories import Phi4Action, WilsonGaugeAction
from lqcdml.train import FlowTrainer, evaluate_flow

GROUP = SU(2)
SHAPE = (2, 4, 4)  # links [B, 2, 4, 4, 2, 2]


class HaarPrior(Prior):
    """Haar-random SU(N) links; the density with respect to the Haar measure is 1."""

    domain = Domain.SU_N

    def __init__(self, shape: tuple[int, ...], group: SU) -> None:
        super().__init__(shape)
        self.group = group

    def sample(self, n, generator=None, dtype=None, device=None):
        generator = torch.default_generator if generator is None else generator
        z = self.group.haar([generator] * n, self.shape, self.resolve_dtype(dtype))
        return z.to(self.device if device is None else device)

    def sample_chains(self, gens, dtype=None):
        return self.group.haar(gens, self.shape, self.resolve_dtype(dtype))

    def log_prob(self, z):
        return torch.zeros(z.shape[0], dtype=real_dtype(z.dtype), device=z.device)


class LeftRotation(InvertibleLayer):
    """``U -> exp(i a^k t^k) U`` on every link with trainable ``a``: Haar invariant, ``log|det| = 0``."""

    def __init__(self, group: SU) -> None:
        super().__init__()
        self.group = group
        self.a = torch.nn.Parameter(torch.zeros(group.algebra_dim))

    def _rotation(self) -> torch.Tensor:
        return self.group.expi(self.group.from_coefficients(self.a))

    def forward(self, x):
        return self._rotation().to(x.dtype) @ x, torch.zeros(x.shape[0], dtype=real_dtype(x.dtype))

    def reverse(self, y):
        return self._rotation().to(y.dtype).mH @ y, torch.zeros(y.shape[0], dtype=real_dtype(y.dtype))


def _haar_flow(n_layers: int = 2, seed: int = 0) -> FlowModel:
    """Random rotations; frozen (``requires_grad`` off) unless trained."""
    model = FlowModel(HaarPrior(SHAPE, GROUP), [LeftRotation(GROUP) for _ in range(n_layers)])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.requires_grad_(False)


def test_the_haar_prior_declares_complex_fields_at_the_models_precision():
    model = _haar_flow()
    assert model.prior.field_dtype() == torch.complex64
    assert model.prior.field_dtype("float64") == torch.complex128
    x, log_q = model.sample(3, torch.Generator().manual_seed(1))
    assert x.dtype == torch.complex64 and log_q.dtype == torch.float32
    model.double()
    x, log_q = model.sample(3, torch.Generator().manual_seed(1))
    assert x.dtype == torch.complex128 and log_q.dtype == torch.float64 and x.shape == (3, *SHAPE, 2, 2)
    assert float(GROUP.deviation(x)) < 1e-12
    z, ld = model.reverse(x)
    assert float((model(z)[0] - x).abs().max()) < 1e-12 and float(ld.abs().max()) == 0
    with pytest.raises(
        ValueError,
        match=r"HaarPrior: dtype = torch.float64; allowed: torch.complex128 "
        r"\(domain 'su_n'\)",
    ):
        model.prior.sample(2, dtype=torch.float64)


@pytest.mark.parametrize("n_layers", [0, 2])
def test_a_haar_flow_samples_complex_links_through_flow_mcmc(n_layers):
    """With no layers the model has no parameters: the sampler needs none (dtype and device
    come from the prior)."""
    model = _haar_flow(n_layers).double()
    action = WilsonGaugeAction(1.0, GROUP).action
    sampler = FlowMCMC(model, action, field_dtype=torch.complex128)
    state = sampler.start(make_generators(3, 6))
    assert state.fields.dtype == torch.complex128 and state.fields.shape == (6, *SHAPE, 2, 2)
    accepted = 0
    for _ in range(6):
        state, info = sampler.step(state)
        accepted += int(info.accepted.sum())
        assert state.fields.dtype == torch.complex128
        assert state.extra["log_weight"].dtype == torch.float64
        # log q = 0 (Haar prior, Haar-invariant layers): the weight is exp(-S)
        assert torch.allclose(state.extra["log_weight"], -action(state.fields), rtol=0, atol=1e-12)
    assert float(GROUP.deviation(state.fields)) < 1e-12
    assert 0 < accepted < 36
    assert torch.allclose(sampler.log_weight(state.fields), state.extra["log_weight"], rtol=0, atol=1e-12)


def test_the_trainer_draws_complex_links_from_the_prior():
    model = _haar_flow(1).double().requires_grad_(True)
    action = WilsonGaugeAction(1.0, GROUP).action
    trainer = FlowTrainer(model, action, steps=3, batch=4, lr=1e-2, seed=2)
    before = model.layers[0].a.detach().clone()
    for _ in range(3):
        assert torch.isfinite(torch.tensor(trainer.step()))
    assert not torch.equal(before, model.layers[0].a)
    assert model.sample(2, trainer.generator)[0].dtype == torch.complex128
    model.requires_grad_(False)
    quality = evaluate_flow(model.float(), action, 100, seed=4)  # evaluated at float64: complex128 links
    assert 0 < quality["ess"] <= 1


def test_an_explicit_field_dtype_must_be_one_of_the_priors_domain():
    torch.manual_seed(0)
    model = phi4_flow((4, 4), 2, (4,)).double()
    action = Phi4Action(m2=-4.0, lam=8.0).action
    with pytest.raises(
        ValueError,
        match=r"flow sampler: field_dtype = torch.complex128; allowed: torch.float64 "
        r"\(the prior's domain 'real' at that precision\)",
    ):
        FlowMCMC(model, action, field_dtype=torch.complex128)
    with pytest.raises(
        ValueError,
        match=r"flow sampler: field_dtype = torch.float64; allowed: torch.complex128 "
        r"\(the prior's domain 'su_n'",
    ):
        FlowMCMC(_haar_flow(), action, field_dtype=torch.float64)
    with pytest.raises(TypeError, match=r"flow sampler: model of type Identity; allowed: a FlowModel"):
        FlowMCMC(torch.nn.Identity(), action)
    with pytest.raises(TypeError, match=r"flow training: model of type Identity; allowed: a FlowModel"):
        FlowTrainer(torch.nn.Identity(), action, steps=1)
    # the prior's precision or another one: proposals at the prior's, fields stored at the chain's
    state = FlowMCMC(model, action, field_dtype=torch.float32).start(make_generators(1, 3))
    assert state.fields.dtype == torch.float32
    assert FlowMCMC(model, action).start(make_generators(1, 3)).fields.dtype == torch.float64
