import numpy as np
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.observables.fermion import (
    chiral_condensate,
    dense_operator,
    noise_vectors,
    pion_correlator,
    staggered_even_spectrum,
    trace_inverse_powers,
)
from lqcdml.theories.staggered import StaggeredOperator
from lqcdml.theories.wilson_fermion import WilsonOperator

from ..helpers import random_gauge_transform, random_links


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


def test_staggered_even_spectrum_of_the_free_field_is_the_sum_of_sines():
    """Identity links: ``-H^2 = sum_mu sin^2 p_mu`` with ``p_0 = (2 n + 1) pi / L_0`` (antiperiodic
    time), ``p_i = 2 pi n / L_i``, each ``N`` times; the even sites carry every other eigenvalue
    (``H_oe H_eo`` and ``H_eo H_oe`` share their spectrum)."""
    group, lattice = SU(2), (4, 2, 4, 2)
    links = group.identity((1, 4, *lattice))
    mu2 = staggered_even_spectrum(StaggeredOperator(0.3, group), links)[0]
    p = np.meshgrid(
        *[(2 * np.arange(n) + (1 if mu == 0 else 0)) * np.pi / n for mu, n in enumerate(lattice)], indexing="ij"
    )
    free = np.sort(np.repeat(sum(np.sin(q) ** 2 for q in p).ravel(), group.n))
    assert mu2.shape == (free.size // 2,)
    np.testing.assert_allclose(mu2.numpy(), free[::2], atol=1e-12)


def test_staggered_even_spectrum_is_that_of_the_dense_operator_and_gauge_invariant():
    group = SU(2)
    links = random_links(group, (4, 4, 2, 2, 2), seed=3)
    op = StaggeredOperator(0.1, group)
    mu2 = staggered_even_spectrum(op, links, chunk=5)  # chunked basis: the same matrix
    hop = dense_operator(StaggeredOperator(0.0, group), links[1:])
    mu = torch.linalg.eigvalsh(1j * hop)  # H anti-hermitian: i H hermitian, spectrum +- mu
    torch.testing.assert_close(mu2[1], torch.sort(mu[mu > 0].real ** 2).values, atol=1e-12, rtol=0)
    rotated = staggered_even_spectrum(op, random_gauge_transform(links, group))
    torch.testing.assert_close(rotated, mu2, atol=1e-12, rtol=0)
