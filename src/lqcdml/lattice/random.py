"""Per-chain random numbers: one ``torch.Generator`` for each chain of a batch.

Every draw is made chain by chain with that chain's generator, so chain ``b`` of a
batch of ``B`` sees the same random numbers as a lone chain with the same generator:
results do not depend on how chains are batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["make_generators", "randn", "rand", "generator_states", "restore_generators"]

Generators = Sequence[torch.Generator]


def make_generators(seed: int, n_chains: int, device: torch.device | str = "cpu") -> list[torch.Generator]:
    """Generators for chains ``0..n_chains-1``, seeded from ``(seed, chain index)``.

    The per-chain seed mixes the run seed and the chain index with a fixed odd
    multiplier, so chains of one run and the same chain of runs with nearby seeds do
    not share streams.
    """
    if n_chains < 1:
        raise ValueError(f"make_generators: n_chains = {n_chains}; allowed: >= 1")
    gens = []
    for b in range(n_chains):
        g = torch.Generator(device=device)
        g.manual_seed((int(seed) * 1_000_003 + 7919 * b + 1) % (2**63 - 1))
        gens.append(g)
    return gens


def randn(
    gens: Generators,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal numbers of shape ``[len(gens), *shape]``, chain ``b`` from ``gens[b]``."""
    device = device if device is not None else gens[0].device
    return torch.stack([torch.randn(tuple(shape), generator=g, dtype=dtype, device=device) for g in gens])


def rand(
    gens: Generators,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniform numbers in [0, 1) of shape ``[len(gens), *shape]``, chain ``b`` from ``gens[b]``."""
    device = device if device is not None else gens[0].device
    return torch.stack([torch.rand(tuple(shape), generator=g, dtype=dtype, device=device) for g in gens])


def generator_states(gens: Generators) -> list[torch.Tensor]:
    """Copies of the generators' states (uint8 tensors on the CPU)."""
    return [g.get_state().clone() for g in gens]


def restore_generators(states: Sequence[torch.Tensor], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """New generators on ``device`` set to ``states``.

    CPU and CUDA generators are different algorithms (Mersenne twister, Philox) with states
    of different sizes: a state restores only on the device type that drew it (``ValueError``).
    """
    gens = []
    for s in states:
        g = torch.Generator(device=device)
        try:
            g.set_state(s.cpu().clone())
        except RuntimeError as exc:
            kind = torch.device(device).type
            raise ValueError(
                f"restore_generators: a generator state of {s.numel()} bytes does not fit a {kind} "
                f"generator ({exc}); allowed: the device type the chain was started on"
            ) from None
        gens.append(g)
    return gens
