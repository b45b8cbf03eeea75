"""Masked CASK layers: gauge-covariant attention as an invertible field transformation.

A layer ``(mu, parity)`` moves the links of a masked stout step (``nn.masked_stout``: the links
``U_mu(x)`` with ``sum_{nu != mu} x_nu % 2 == parity``) by

    ``U' = exp(-i TH(U C)) U``,   ``C(x) = sum_k a_k(x) S_k(x)``,

the ``n = 2 (d - 1)`` plaquette staples ``S_k`` of ``U_mu(x)`` (fixed links only) weighted by
attention among the staples. The staples are the tokens: each transforms as ``S -> g(x + mu) S
g(x)^dag``, so their inner products

    ``<S_j, S_k> = Re tr(S_j S_k^dag) / N``

(1 for ``j = k``, else the trace of the ``1 x 2`` loop of fixed links that the two staples close
through ``x``, or of the chair they close across planes) are gauge invariant. Head ``h`` attends
with ``A^h_jk = softmax_k(beta_h <S_j, S_k>)`` and its output for token ``j`` is the covariant
``sum_k A^h_jk S_k``; ``C`` sums the outputs with weights ``w_hj = tanh(c_hj) / (H n)``, i.e.

    ``a_k(x) = sum_{h, j} w_hj A^h_jk(x)``.

U(1): ``theta' = theta - sum_k a_k sin(theta + s_k)``, ``<S_j, S_k> = cos(s_j - s_k)``.

Why it is exact. The weights come from fixed links only (the issue's masked attention): the
Jacobian stays block-diagonal, one block per moved link, the block of a masked stout step with
``rho S`` replaced by ``C`` (``MaskedLinkStep``). The rows of ``A^h`` sum to 1, so ``sum_k |a_k| <=
sum_hj |w_hj| < 1``: ``|C| < 1`` as for the stout step's ``|rho S|``, the map of a link is a
contraction away from the identity, a bijection with a positive Jacobian, inverted by the same
fixed-point iteration. All ``c = 0``: the identity; all ``beta = 0``: uniform attention, a masked
stout step with ``rho = sum_hj w_hj / n``. Trainable per layer: ``c`` ``[H, n]`` (zeros) and the
heads' inverse temperatures ``beta`` ``[H]`` (spread over ``[-1, 1]`` so that heads differ).
"""

from __future__ import annotations

import torch
from torch import nn

from ..lattice import SU, U1
from .flow import FlowModel
from .masked_stout import MaskedLinkStep, masked_cycle, masked_prior

__all__ = ["MaskedCASK", "masked_cask_flow", "masked_cask_stack"]


class MaskedCASK(MaskedLinkStep):
    """One masked attention step ``(mu, parity)`` with ``heads`` heads on U(1) or SU(N) links of
    lattice ``shape`` (the module docstring); starts as the identity."""

    def __init__(self, shape: tuple[int, ...], group: U1 | SU, mu: int, parity: int, heads: int = 2) -> None:
        super().__init__(shape, group, mu, parity)
        if int(heads) != heads or heads < 1:
            raise ValueError(f"masked cask: heads = {heads!r}; allowed: an integer >= 1")
        self.heads = int(heads)
        self.c = nn.Parameter(torch.zeros(self.heads, self.n_staples, dtype=torch.float64))
        spread = torch.linspace(-1.0, 1.0, self.heads, dtype=torch.float64) if self.heads > 1 else torch.zeros(1)
        self.beta = nn.Parameter(spread.to(torch.float64))

    @property
    def w(self) -> torch.Tensor:
        """The heads' output weights ``w_hj = tanh(c_hj) / (H n)``, ``[H, n]``: ``sum |w| < 1``."""
        return torch.tanh(self.c) / (self.heads * self.n_staples)

    def attention(self, similarity: torch.Tensor) -> torch.Tensor:
        """The staples' weights ``a_k = sum_hj w_hj softmax_k(beta_h <S_j, S_k>)`` ``[n, B, L...]``
        given the inner products ``<S_j, S_k>`` ``[n, n, B, L...]`` (real dtype of the links)."""
        beta = self.beta.to(similarity.dtype).reshape(-1, 1, 1, *([1] * (similarity.ndim - 2)))
        weights = torch.softmax(beta * similarity.unsqueeze(0), dim=2)  # [H, j, k, B, L...]
        return torch.einsum("hj,hjk...->k...", self.w.to(similarity.dtype), weights)

    def weights(self, links: torch.Tensor) -> torch.Tensor:
        """The staples' weights ``a_k`` at every site, ``[n, B, L...]`` (those of the moved links
        are the layer's)."""
        if isinstance(self.group, U1):
            return self._u1_weights(self._u1_staple_angles(links))
        return self.attention(_similarity(torch.stack(self._su_staple_list(links))))

    def _u1_weights(self, s: torch.Tensor) -> torch.Tensor:
        return self.attention(torch.cos(s.unsqueeze(1) - s.unsqueeze(0)))

    def _su_coupling(self, links: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        staples = torch.stack(self._su_staple_list(links))  # [n, B, L..., N, N]
        weights = self.attention(_similarity(staples))
        coupling = torch.einsum("k...,k...ij->...ij", weights.to(staples.dtype), staples)
        one = torch.ones((), dtype=weights.dtype, device=weights.device)
        return coupling, one, float(self.w.detach().abs().sum())  # |C| <= sum_k |a_k| <= sum |w|


def _similarity(staples: torch.Tensor) -> torch.Tensor:
    """``<S_j, S_k> = Re tr(S_j S_k^dag) / N`` of staples ``[n, B, L..., N, N]``: ``[n, n, B, L...]``."""
    flat = staples.flatten(-2)
    return torch.einsum("j...a,k...a->jk...", flat, flat.conj()).real / staples.shape[-1]


def masked_cask_stack(shape: tuple[int, ...], group: U1 | SU, n_layers: int, heads: int = 2) -> list[MaskedCASK]:
    """``n_layers`` masked attention steps over ``nn.masked_stout.masked_cycle``; all start as the
    identity."""
    return [MaskedCASK(shape, group, mu, parity, heads) for mu, parity in masked_cycle(shape, n_layers, "masked cask")]


def masked_cask_flow(shape: tuple[int, ...], group: U1 | SU, n_layers: int, heads: int = 2) -> FlowModel:
    """``masked_prior`` and ``masked_cask_stack``: a transform of field-transformed HMC (its
    pulled-back force by autograd)."""
    return FlowModel(masked_prior(shape, group), masked_cask_stack(shape, group, n_layers, heads))
