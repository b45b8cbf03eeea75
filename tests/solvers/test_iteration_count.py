"""CG iteration counting: a scoped measurement that changes no result."""

import torch

from lqcdml.solvers import cg, count_iterations, multishift_cg


def _system(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, dtype=torch.float64, generator=gen)
    a = a @ a.T + n * torch.eye(n, dtype=torch.float64)
    b = torch.randn(2, n, dtype=torch.float64, generator=gen)
    return (lambda v: v @ a.T), b


def test_counts_are_the_solvers_iterations_and_nest():
    apply_a, b = _system()
    with count_iterations() as outer:
        x_a, info_a = cg(apply_a, b, tol=1e-12)
        with count_iterations() as inner:
            xs, info_m = multishift_cg(apply_a, b, [0.0, 1.0, 5.0], tol=1e-12)
    assert inner.total == info_m.iterations > 0
    assert outer.total == info_a.iterations + info_m.iterations
    x_plain, _ = cg(apply_a, b, tol=1e-12)  # outside any block: nothing counted, same result
    assert torch.equal(x_plain, x_a)
