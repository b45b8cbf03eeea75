"""Test helpers shared across the suite."""

from __future__ import annotations

import torch

from lqcdml.lattice import Manifold, gauge_transform, make_generators


def random_links(group: Manifold, shape, seed: int = 0, n_chains: int = 2) -> torch.Tensor:
    """Haar-random links ``[B, d, L...]`` for ``shape = (d, L_0, ...)``."""
    return group.haar(make_generators(seed, n_chains), shape)


def random_gauge_transform(links: torch.Tensor, group: Manifold, seed: int = 99) -> torch.Tensor:
    """Apply a Haar-random gauge transformation."""
    site_shape = links.shape[2 : links.ndim - group.internal_ndim]
    omega = group.haar(make_generators(seed, links.shape[0]), site_shape)
    return gauge_transform(links, omega, group)


def smooth_links(group: Manifold, shape, eps: float = 0.15, seed: int = 0, n_chains: int = 2):
    """Links near the identity: a field with small action, for perturbative checks."""
    return group.near_identity(make_generators(seed, n_chains), shape, eps)


def randomize(module: torch.nn.Module, seed: int, scale: float = 0.5) -> torch.nn.Module:
    """Random weights everywhere (zero-initialised output layers included), drawn from a CPU
    generator: the same untrained network on every device."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def interrupt_at_step(monkeypatch, trainer_class: type, step: int) -> None:
    """Make ``trainer_class.step`` raise ``KeyboardInterrupt`` (what SIGINT raises) when the trainer
    is about to take step ``step + 1``: a training stopped mid-way; ``monkeypatch.undo()`` or a
    fresh ``monkeypatch.setattr`` of the original restores it."""
    original = trainer_class.step

    def dying(self):
        if self.step_count == step:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(trainer_class, "step", dying)


def count_zarr_writes(monkeypatch, action) -> int:
    """How many file writes (``zarr.storage._local._put`` calls) ``action()`` makes."""
    import zarr.storage._local as zarr_local

    real_put = zarr_local._put
    calls = {"n": 0}

    def put(*args, **kwargs):
        calls["n"] += 1
        return real_put(*args, **kwargs)

    monkeypatch.setattr(zarr_local, "_put", put)
    try:
        action()
    finally:
        monkeypatch.setattr(zarr_local, "_put", real_put)
    return calls["n"]


def full_disk_at_write(monkeypatch, fail_at: int, action, delay: float = 0.02) -> None:
    """Run ``action()`` with zarr's file write number ``fail_at + 1`` failing at once with ENOSPC
    and every other write delayed by ``delay`` seconds (the siblings of the failing write, which
    zarr runs concurrently, are still in flight when it fails); expects the OSError, then waits
    until any write still in flight has ended, so that what it leaves behind can be checked."""
    import errno
    import time

    import pytest
    import zarr.storage._local as zarr_local

    real_put = zarr_local._put
    calls = {"n": 0}

    def put(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at + 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))
        time.sleep(delay)
        return real_put(*args, **kwargs)

    monkeypatch.setattr(zarr_local, "_put", put)
    try:
        with pytest.raises(OSError, match="No space left"):
            action()
    finally:
        monkeypatch.setattr(zarr_local, "_put", real_put)
    time.sleep(4 * delay)


def su_left_invariant_log_det(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """``log|det|`` of an SU(N) layer's Jacobian on all links of one configuration (``x`` ``[1, d, L...,
    N, N]``; the layer has ``group`` and returns ``(y, log_det)``), perturbed as
    ``exp(i w . t) U`` and read off as ``F(U)' F(U)^dag = exp(i w' . t)`` (left-invariant)."""
    group = layer.group
    t = group.generators()
    y0 = layer(x)[0][0]

    def coords(w: torch.Tensor) -> torch.Tensor:
        step = torch.linalg.matrix_exp(1j * torch.einsum("...a,aij->...ij", w.to(t.dtype), t))
        moved = layer(step[None] @ x)[0][0] @ y0.mH
        return group.coefficients(-1j * moved).reshape(-1)

    w0 = torch.zeros(*x.shape[1:-2], group.algebra_dim, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(coords, w0)
    return float(torch.linalg.slogdet(jac.reshape(w0.numel(), -1))[1])


def assert_masked_steps_invert_and_are_covariant(layers, group, shape) -> None:
    """Masked link steps (``nn.masked_stout.MaskedLinkStep``) applied in turn to Haar-random links:
    each inverts to 1e-10 (log-Jacobians opposite), stays in the group, is gauge covariant with an
    invariant log-Jacobian (1e-12) and moves the links of its own direction only."""
    from lqcdml.lattice import SU

    x = group.haar(make_generators(0, 3), (len(shape), *shape))
    omega = group.haar(make_generators(1, 3), shape)
    for layer in layers:
        with torch.no_grad():
            y, log_det = layer(x)
            back, log_back = layer.reverse(y)
            y_g, log_det_g = layer(gauge_transform(x, omega, group))
        assert (back - x).abs().max() < 1e-10 and (log_det + log_back).abs().max() < 1e-10
        assert (y_g - gauge_transform(y, omega, group)).abs().max() < 1e-12
        assert (log_det_g - log_det).abs().max() < 1e-12
        if isinstance(group, SU):
            assert group.deviation(y) < 1e-12
        moved = (y - x).abs().flatten(2).amax(-1).amax(0)  # per direction
        assert moved[layer.mu] > 1e-3 and all(moved[d] == 0 for d in range(len(shape)) if d != layer.mu)
        x = y


def assert_log_det_is_the_full_jacobians(layers, group, shape) -> None:
    """Each layer's log-Jacobian against ``log|det|`` of its autograd Jacobian on all links of one
    configuration (U(1): in angles; SU(N): ``su_left_invariant_log_det``), to 1e-9 relative."""
    from lqcdml.lattice import U1

    x = group.haar(make_generators(2, 1), (len(shape), *shape))
    for layer in layers:
        expected = layer(x)[1][0].item()
        if isinstance(group, U1):
            jac = torch.autograd.functional.jacobian(lambda v, f=layer: f(v[None])[0][0].reshape(-1), x[0])
            got = float(torch.linalg.slogdet(jac.reshape(x[0].numel(), -1))[1])
        else:
            got = su_left_invariant_log_det(layer, x)
        assert abs(got - expected) < 1e-9 * max(1.0, abs(expected))
        x = layer(x)[0].detach()


def quadratic_form_matrix(term, links: torch.Tensor, field_shape: tuple[int, ...], keep: torch.Tensor) -> torch.Tensor:
    """The hermitian matrix ``K`` of ``S(phi) = phi^dag K phi`` on the components ``keep``, by polarisation."""
    idx = torch.nonzero(keep.reshape(-1)).squeeze(1)
    n, size = idx.numel(), keep.numel()
    vecs = []
    for i in range(n):
        for j in range(n):
            v = torch.zeros(size, dtype=torch.complex128)
            v[idx[i]] = 1.0
            if j != i:  # e_i + e_j (i < j), e_i + i e_j (i > j)
                v[idx[j]] = 1.0 if i < j else 1j
            vecs.append(v)
    phis = torch.stack(vecs).reshape(n * n, *field_shape)
    s = term.action(links.expand(n * n, *links.shape[1:]), phis).reshape(n, n)
    diag = s.diagonal()
    k = torch.diag(diag).to(torch.complex128)
    for i in range(n):
        for j in range(n):
            if i < j:
                re = 0.5 * (s[i, j] - diag[i] - diag[j])
                im = 0.5 * (s[j, i] - diag[i] - diag[j])  # S(e_j + i e_i) = K_ii + K_jj + 2 Im K_ij
                k[i, j] = re + 1j * im
                k[j, i] = re - 1j * im
    return k
