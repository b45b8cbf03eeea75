import numpy as np
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.observables.fermion import (
    chiral_condensate,
    dense_operator,
    noise_vectors,
    pion_correlator,
    trace_inverse_powers,
)
from lqcdml.theories.staggered import StaggeredOperator
from lqcdml.theories.wilson_fermion import WilsonOperator

from ..helpers import random_links


def test_noise_is_unit_normalised():
    gens = make_generators(0, 2)
    for kind in ("z2", "u1"):
        eta = noise_vectors(gens, (50, 3), kind)
        assert torch.allclose(eta.abs(), torch.ones_like(eta.real))


def test_free_staggered_condensate_stochastic_agrees_with_exact():
    group = SU(2)
    op = StaggeredOperator(0.3, group)
    links = group.identity((2, 4, 4, 4, 4, 4))
    values = chiral_condensate(op, links, make_generators(3, 2), n_noise=24, noise="z2").reshape(-1)
    mean, err = values.mean().item(), values.std().item() / np.sqrt(values.numel())
    assert abs(mean - 0.37639) < 3 * err and err < 0.01


def test_trace_inverse_powers_agree_with_dense_traces():
    group = SU(2)
    op = StaggeredOperator(0.5, group)
    links = random_links(group, (4, 2, 2, 2, 4), n_chains=1, seed=2)
    dinv = torch.linalg.inv(dense_operator(op, links))
    exact = [torch.trace(torch.linalg.matrix_power(dinv, n)).item() / 32 for n in range(1, 5)]
    est = trace_inverse_powers(op, links, make_generators(4, 1), 4, n_noise=400, noise="u1")[0]
    mean, err = est.mean(dim=0), est.real.std(dim=0) / np.sqrt(est.shape[0])
    for n in range(4):
        assert abs(mean[n].real.item() - exact[n].real) < 4 * err[n].item(), n


def test_pion_correlators_equal_dense_propagators():
    group = SU(2)
    links = random_links(group, (4, 2, 2, 2, 4), n_chains=1, seed=3)
    for op, n_int in ((StaggeredOperator(0.4, group), (2,)), (WilsonOperator(0.4, group), (4, 2))):
        dinv = torch.linalg.inv(dense_operator(op, links))
        # columns of the origin's internal indices; sum |G|^2 over sink x-vec and indices
        n_src = int(np.prod(n_int))
        g = dinv[:, :n_src].reshape(2, 2, 2, 4, *n_int, n_src)
        expected = g.abs().square().reshape(2, -1).sum(dim=1)
        assert torch.allclose(pion_correlator(op, links)[0], expected, atol=1e-10)
