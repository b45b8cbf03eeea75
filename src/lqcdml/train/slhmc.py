"""Training the effective action of self-learning HMC.

The network ``f`` of ``S_eff(U, phi) = S_f^{m_eff}(f(U), phi)`` is fitted to the exact
fermion action ``S_f^m(U, phi)`` with the loss

    L = mean over configurations of (S_f(U, phi) - S_eff(U, phi) - c)^2,

``phi`` the pseudofermion drawn for ``U`` from the exact heat bath (Nagai, Tomiya:
``c = 0``, loss ``plain``). A constant ``c`` added to the effective action changes no
force and no energy difference, so the molecular dynamics of ``S_eff`` and ``S_eff + c``
are the same; the loss ``centred`` takes the best ``c``, the batch mean of
``S_f - S_eff`` (by the envelope theorem its gradient is the gradient at fixed ``c``).
It fits the fluctuations of the mismatch, which set the acceptance, instead of its mean
(with ``m_eff != m`` of order the number of pseudofermion components, which the plain
loss makes the network chase at the expense of the fluctuations).
Its gradient needs only ``dS_eff/dV`` at the smeared links (the analytic force, as in
the molecular dynamics) and one vector-jacobian product through the network:
``dL/dtheta = mean 2 (S_eff - S_f) (dS_eff/dV) . dV/dtheta``; no solver is
differentiated.

- ``OnlineSLHMCTrainer``: self-learning HMC with the current network; after each
  trajectory one Adam step on the loss at the end configuration with that trajectory's
  pseudofermions. The chain adapts while training, so it is a training run, not a
  production chain: production uses the frozen weights.
- ``OfflineSLHMCTrainer``: Adam on batches of configurations of an existing ensemble,
  each with fresh pseudofermions from the exact heat bath.

Both keep everything needed to continue bit for bit in ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch

from ..lattice import make_generators
from ..samplers import ChainState, Sampler
from ..theories import PseudofermionAction

__all__ = ["action_mismatch", "equilibrium_acceptance", "OnlineSLHMCTrainer", "OfflineSLHMCTrainer"]


def action_mismatch(
    net: torch.nn.Module,
    exact: Sequence[PseudofermionAction],
    effective: Sequence[PseudofermionAction],
    links: torch.Tensor,
    phis: Sequence[torch.Tensor],
    centred: bool = False,
) -> tuple[torch.Tensor, Callable[[], None]]:
    """``S_f - S_eff - c`` per configuration ``[B]`` and a function that accumulates the
    gradient of its mean square into the network's ``.grad``; ``c = 0``, or with
    ``centred`` the batch mean of ``S_f - S_eff``.

    ``exact[i]`` and ``effective[i]`` (unsmeared base actions, at ``m`` and ``m_eff``)
    share the field ``phis[i]``; the effective ones see ``net(links)``.
    """
    links = links.detach()
    with torch.enable_grad():  # one forward pass: its graph serves the backward
        v = net(links)
    v_det = v.detach()
    with torch.no_grad():
        s_f = sum(t.action(links, p) for t, p in zip(exact, phis))
        s_eff = sum(t.action(v_det, p) for t, p in zip(effective, phis))
    diff = cast(torch.Tensor, s_f - s_eff)  # at least one pseudofermion term: sums of tensors
    if centred:
        if diff.shape[0] < 2:
            raise ValueError("slhmc training: the centred loss needs a batch of at least 2 configurations")
        diff = diff - diff.mean()

    def backward() -> None:
        # dS_eff/dV as the cotangent 2i F_V V of each configuration, weighted by dL/dS_eff
        force = sum(t.force(v_det, p) for t, p in zip(effective, phis))
        weight = (-2.0 * diff / diff.shape[0]).reshape((-1,) + (1,) * (links.ndim - 1))
        cotangent = 2j * (force @ v_det) * weight.to(v_det.dtype)
        params = [p for p in net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(v, params, grad_outputs=cotangent, allow_unused=True)
        for p, g in zip(params, grads):
            if g is None:
                continue
            p.grad = g.detach() if p.grad is None else p.grad + g.detach()

    return diff, backward


class _EffectiveActionTrainer:
    """Adam on the mismatch loss of ``net``; the state every SLHMC trainer shares."""

    def __init__(
        self,
        net: torch.nn.Module,
        exact: Sequence[PseudofermionAction],
        effective: Sequence[PseudofermionAction],
        lr: float,
        centred: bool,
        history: Sequence[str],
    ) -> None:
        self.net, self.centred = net, bool(centred)
        self.exact, self.effective = tuple(exact), tuple(effective)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.step_count = 0
        self.history: dict[str, list[float]] = {k: [] for k in ("loss", *history)}

    def _adam_step(self, links: torch.Tensor, phis: Sequence[torch.Tensor]) -> float:
        diff, backward = action_mismatch(self.net, self.exact, self.effective, links, phis, self.centred)
        loss = float(diff.square().mean())
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(f"slhmc training: loss is {loss} at step {self.step_count}")
        self.optimizer.zero_grad(set_to_none=True)
        backward()
        self.optimizer.step()
        self.step_count += 1
        self.history["loss"].append(loss)
        return loss

    def state_dict(self) -> dict:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "history": {k: list(v) for k, v in self.history.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.history = {k: list(v) for k, v in state["history"].items()}


class OnlineSLHMCTrainer(_EffectiveActionTrainer):
    """Self-learning HMC that trains its network after every trajectory.

    ``make_sampler(net)``: the SLHMC sampler whose effective action uses ``net``;
    ``exact`` / ``effective``: the pseudofermion actions of the loss (unsmeared; the
    effective ones at ``m_eff``; ``exact`` are the first pseudofermion terms of the
    sampler's target, whose fields the chain state lists first); ``start``: the first chain state; ``centred``: the loss
    (module docstring; the chains are the batch). One ``step`` is one trajectory of every
    chain and one Adam step. History: ``loss`` (mean squared mismatch at the end
    configurations), ``acceptance``, ``delta_H`` (mean |dH|).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        make_sampler: Callable[[torch.nn.Module], Sampler],
        exact: Sequence[PseudofermionAction],
        effective: Sequence[PseudofermionAction],
        start: ChainState,
        lr: float = 1e-3,
        centred: bool = True,
    ) -> None:
        super().__init__(net, exact, effective, lr, centred, ("acceptance", "delta_H"))
        self.make_sampler, self.state = make_sampler, start

    def step(self) -> float:
        sampler = self.make_sampler(self.net)
        with torch.no_grad():
            self.state, info = sampler.step(self.state)
        # the loss's exact terms are the first pseudofermion terms of the target (their fields first)
        loss = self._adam_step(self.state.fields, self.state.pseudofermions[: len(self.exact)])
        self.history["acceptance"].append(float(info.accepted.double().mean()))
        self.history["delta_H"].append(float(info.delta_H.abs().mean()))
        return loss

    def state_dict(self) -> dict:
        return {**super().state_dict(), "chain": self.state.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.state = ChainState.from_dict(state["chain"], self.state.fields.device)


class OfflineSLHMCTrainer(_EffectiveActionTrainer):
    """Adam on configurations of an existing ensemble with fresh pseudofermions.

    ``configs``: ``[n, d, L..., N, N]`` (thermalised configurations). Step ``k`` draws
    ``batch`` of them and their pseudofermions from generators seeded by
    ``(seed, k)``, so the whole training is a function of the seed and continues bit
    for bit from any step. History: ``loss``.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        configs: torch.Tensor,
        exact: Sequence[PseudofermionAction],
        effective: Sequence[PseudofermionAction],
        batch: int = 4,
        lr: float = 1e-3,
        seed: int = 0,
        centred: bool = True,
    ) -> None:
        if configs.shape[0] < 1 or batch < 1:
            raise ValueError(
                f"offline slhmc training: {configs.shape[0]} configurations, batch = {batch}; "
                "allowed: at least one configuration, batch >= 1"
            )
        super().__init__(net, exact, effective, lr, centred, ())
        self.configs, self.batch, self.seed = configs, int(batch), int(seed)

    def _draw(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pick = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step_count)
        index = torch.randint(self.configs.shape[0], (self.batch,), generator=pick)
        links = self.configs[index]
        gens = make_generators(self.seed * 1_000_003 + self.step_count, self.batch, links.device)
        return links, [t.heat_bath(links, gens) for t in self.exact]

    def step(self) -> float:
        return self._adam_step(*self._draw())


@torch.no_grad()
def equilibrium_acceptance(sampler, configs: torch.Tensor, seed: int) -> dict:
    """One trajectory of ``sampler`` from each of ``configs`` (``[n, ...]``, drawn from the
    target distribution, e.g. thermalised HMC configurations): the mean Metropolis
    probability ``<min(1, exp(-dH))>`` is the chain's acceptance rate at equilibrium,
    estimated without a chain of its own. Returns it with its standard error, the mean
    ``exp(-dH)`` and the CG iterations of the trajectory (one batch)."""
    from ..lattice import make_generators

    n = configs.shape[0]
    state = ChainState.initial(configs, make_generators(seed, n, configs.device))
    _, info = sampler.step(state)
    prob = info.accept_prob
    return {
        "n_configs": int(n),
        "acceptance": float(prob.mean()),
        "acceptance_error": float(prob.std() / n**0.5) if n > 1 else float("nan"),
        "mean_exp_minus_delta_H": float(torch.exp(-info.delta_H.double()).mean()),
        "cg_md": int(info.counters.get("cg_md", 0)),
        "cg_metropolis": int(info.counters.get("cg_metropolis", 0)),
    }
