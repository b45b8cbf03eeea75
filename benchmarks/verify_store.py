"""What ``lqcdml verify`` (and the check ``generate`` makes before it continues a store) costs
per configuration; prints one JSON document.

For SU(3) stores of a few lattice sizes (``--chains`` chains, float64, Haar-random links
committed through the store as a chain would commit them: records, content digests,
checkpoint), in one run: the seconds per configuration of

- ``read``: reading every configuration through its checksum and content digest (what
  ``measure`` pays anyway),
- ``verify``: the full check (``lqcdml verify``: also links on the group, the plaquette
  recomputed, the acceptance records against the fields),
- ``quick``: ``lqcdml verify --quick`` (the last configurations, the records, the
  checkpoint and the metadata), for the whole store,

beside the bytes per configuration and the read rate in MB/s. Usage:
``python benchmarks/verify_store.py [--extents 4 6 8] [--configs 16] [--chains 4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from kernel_timing import best_of

from lqcdml.config import compose_experiment
from lqcdml.driver.specs import store_meta
from lqcdml.identity.expectations import store_expectations
from lqcdml.kinds import SAMPLERS
from lqcdml.lattice import SU, make_generators
from lqcdml.observables import plaquette
from lqcdml.store import EnsembleStore, verify_store
from lqcdml.store.verify import QUICK_TAIL


def _store(path: Path, extent: int, n_configs: int, n_chains: int) -> EnsembleStore:
    """A store of ``n_configs`` Haar-random SU(3) configurations, committed as a chain would."""
    cfg = compose_experiment(
        "ci_tiny",
        [
            f"ensembles.su2.theory.lattice=[{extent},{extent},{extent},{extent}]",
            "ensembles.su2.theory.n_colors=3",
            f"ensembles.su2.chain.n_chains={n_chains}",
            f"ensembles.su2.chain.n_configs={n_configs}",
            "ensembles.su2.chain.n_therm=0",
        ],
    )
    group = SU(3)
    shape = (n_chains, 4, extent, extent, extent, extent, 3, 3)
    store = EnsembleStore.create(
        path,
        field_shape=shape,
        dtype="complex128",
        capacity=n_configs,
        meta=store_meta(cfg, "su2", 1),
        observable="plaquette",
        counters=SAMPLERS.lookup("hmc").counters,
    )
    gens = make_generators(1, n_chains)
    for i in range(n_configs):
        links = group.haar(gens, shape[1:-2], torch.complex128)
        records = {
            "trajectory": i + 1,
            "accepted": np.ones(n_chains),
            "delta_H": np.zeros(n_chains),
            "plaquette": plaquette(links, group).numpy(),
            "cg_md": 0,
            "cg_metropolis": 0,
        }
        store.commit(
            i,
            links.numpy(),
            records,
            {"rng_states": np.zeros((n_chains, 8), np.uint8), "n_accepted": np.full(n_chains, i + 1, np.int64)},
            {"trajectory": i + 1},
        )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extents", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for extent in args.extents:
            path = Path(tmp) / f"L{extent}.zarr"
            store = _store(path, extent, args.configs, args.chains)
            expect = store_expectations(store.meta)
            n = store.n_committed
            config_bytes = int(np.prod(store.field_shape)) * 16
            read = best_of(lambda: [EnsembleStore.open(path).read_fields(i) for i in range(n)], 2)
            full = best_of(lambda: verify_store(path, expect), 2)
            quick = best_of(lambda: verify_store(path, expect, tail=QUICK_TAIL), 2)
            assert verify_store(path, expect)["ok"]
            rows.append(
                {
                    "lattice": f"{extent}^4",
                    "n_colors": 3,
                    "chains": args.chains,
                    "configurations": n,
                    "bytes_per_configuration": config_bytes,
                    "read_seconds_per_configuration": read / n,
                    "verify_seconds_per_configuration": full / n,
                    "quick_seconds_per_store": quick,
                    "read_MB_per_s": config_bytes * n / read / 1e6,
                    "verify_MB_per_s": config_bytes * n / full / 1e6,
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "verify_store",
                "threads": args.threads,
                "dtype": "complex128",
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
