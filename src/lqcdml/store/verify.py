"""Check an ensemble store: every committed configuration, the records, the checkpoint, and
everything the chain's own definition says the store must hold.

Two layers of checks. The store's own (no config needed): array metadata (codecs with
the crc32c checksum, data types, chunking), every chunk present and readable through its
checksum, values finite and links on the group, the content digest of each configuration
(format 2: a chunk swapped with another index or copied from another store fails), the
checkpoint array by array. And, given ``StoreExpectations`` (built by the config layer from
the store's stored config, ``identity.expectations.store_expectations``): the stored config
re-hashed against its chain hash, the records list against the sampler's declared
records, the field shape and dtype, the cheap observable recomputed from the fields, the
trajectory counter, and the acceptance records against the fields and the checkpoint's
acceptance counters (a rejected step leaves a chain's fields unchanged; an accepted one
moves them).

Every comparison is NaN-safe: a value passes only if ``x <= tol`` holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ensemble import DIGEST, EnsembleStore, StoreDamage, StoreError

__all__ = ["verify_store", "first_problem", "StoreExpectations", "QUICK_TAIL"]

#: configurations ``verify --quick`` (and ``generate --verify tail``) read: the last ones
QUICK_TAIL = 2


@dataclass(frozen=True)
class StoreExpectations:
    """What a store of a given chain holds, from the chain's definition (not the store).

    ``records``: the records list, in order; ``field_shape`` ``[B, ...]`` and
    ``field_dtype``; ``observable``: fields ``[B, ...]`` -> the values of the record
    ``observable_name`` ``[B]``; ``trajectory``: index -> its trajectory record;
    ``steps_per_config``: Markov steps per configuration (``chain.save_every``), ``None``
    where the store holds no chain (imported files); ``chain_hash``: the stored config
    re-hashed; ``problems``: what the stored config itself gets wrong.
    """

    records: tuple[str, ...] | None = None
    field_shape: tuple[int, ...] | None = None
    field_dtype: str | None = None
    observable_name: str | None = None
    observable: Callable[[np.ndarray], np.ndarray] | None = None
    trajectory: Callable[[int], int] | None = None
    steps_per_config: int | None = None
    chain_hash: str | None = None
    problems: tuple[str, ...] = ()


def _tolerances(dtype: np.dtype) -> tuple[float, float]:
    """(group deviation, relative observable mismatch) allowed at the fields' precision."""
    double = dtype in (np.complex128, np.float64)
    return (1e-10, 1e-10) if double else (1e-4, 1e-4)


def _group_problem(fields: np.ndarray, theory: dict) -> str | None:
    """A problem with the values of one configuration ``[B, ...]`` (None if fine)."""
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(fields)):
            return "non-finite values"
        if theory.get("name") == "su" and fields.ndim >= 2 and fields.shape[-1] == fields.shape[-2]:
            n = fields.shape[-1]
            drift = float(np.max(np.abs(np.conj(np.swapaxes(fields, -1, -2)) @ fields - np.eye(n))))
            tol = _tolerances(fields.dtype)[0]
            if not drift <= tol:
                return f"links off SU({n}): max |U^dag U - 1| = {drift:.3g}"
    return None


def _moved(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Per chain: whether the fields changed by more than a reprojection can move them."""
    tol = 1e-8 if now.dtype in (np.complex128, np.float64) else 1e-3
    with np.errstate(all="ignore"):
        diff = np.abs(now - before).reshape(now.shape[0], -1).max(axis=1)
    return ~(diff <= tol)


class _Checker:
    """One pass over a store, collecting problems."""

    def __init__(self, store: EnsembleStore, expect: StoreExpectations, first: int):
        self.store, self.expect, self.first = store, expect, first
        self.where = str(store.path)
        self.theory = store.meta.get("theory", {}) or {}
        self.records: dict[str, np.ndarray] = {}
        self.bad: list[dict] = []

    def structure(self, allow_resize: bool) -> list[str]:
        s, e, where = self.store, self.expect, self.where
        out = list(e.problems) + s.structural_problems(allow_resize=allow_resize)
        if e.chain_hash is not None and e.chain_hash != s.meta.get("config_hash"):
            out.append(
                f"store {where!r}: its stored config hashes to {e.chain_hash}, its attributes say "
                f"config_hash = {s.meta.get('config_hash')!r}: config or hash edited"
            )
        if e.records is not None and list(e.records) != s.record_names:
            out.append(f"store {where!r}: records list {s.record_names}; this chain records {list(e.records)}")
        if e.field_shape is not None and tuple(s.field_shape) != tuple(e.field_shape):
            out.append(
                f"store {where!r}: fields of shape {list(s.field_shape)}, the stored config gives {list(e.field_shape)}"
            )
        if e.field_dtype is not None and str(s.dtype) != e.field_dtype:
            out.append(f"store {where!r}: fields of data type {s.dtype}, the stored config gives {e.field_dtype}")
        config_theory = (s.meta.get("config") or {}).get("theory")
        if config_theory is not None and config_theory != self.theory:
            out.append(
                f"store {where!r}: attribute 'theory' {self.theory} differs from the stored config's "
                f"theory {config_theory}"
            )
        return out

    def read_records(self) -> dict[str, str]:
        out = {}
        for name in self.store.record_names:
            try:
                self.records[name] = self.store.read_records(name)
                out[name] = "ok"
            except StoreError as exc:
                out[name] = str(exc)
        return out

    def record_consistency(self, report: dict[str, str], checkpoint: dict | None) -> None:
        """The trajectory counter and the acceptance records against the checkpoint."""
        e, n = self.expect, self.store.n_committed
        traj = self.records.get("trajectory")
        if e.trajectory is not None and traj is not None and report.get("trajectory") == "ok":
            wrong = [i for i in range(n) if int(traj[i]) != e.trajectory(i)]
            if wrong:
                i = wrong[0]
                report["trajectory"] = (
                    f"trajectory[{i}] = {int(traj[i])}, the chain gives {e.trajectory(i)} ({len(wrong)} wrong)"
                )
        acc = self.records.get("accepted")
        steps = e.steps_per_config
        if steps is None or acc is None or report.get("accepted") != "ok":
            return
        with np.errstate(all="ignore"):
            counts = acc * steps
            off = ~(np.abs(counts - np.round(counts)) <= 1e-9) | ~((acc >= 0) & (acc <= 1))
        if off.any():
            i, c = (int(x[0]) for x in np.nonzero(off))
            report["accepted"] = (
                f"accepted[{i}, chain {c}] = {acc[i, c]!r}; allowed: k / {steps}, "
                f"k = 0..{steps} (accepted steps per configuration)"
            )
            return
        if checkpoint is not None and "n_accepted" in checkpoint["arrays"]:
            total = np.round(counts).astype(np.int64).sum(axis=0)
            n_acc = checkpoint["arrays"]["n_accepted"]
            if total.shape != n_acc.shape or not np.array_equal(total, n_acc):
                report["accepted"] = (
                    f"accepted records sum to {total.tolist()} accepted steps per chain, the "
                    f"checkpoint counts {n_acc.tolist()}"
                )

    def configuration(self, i: int, fields: np.ndarray, before: np.ndarray | None) -> str | None:
        """The first problem of configuration ``i`` (``before``: configuration ``i - 1``)."""
        e = self.expect
        problem = _group_problem(fields, self.theory)
        if problem:
            return problem
        values = self.records.get(e.observable_name) if e.observable_name else None
        if e.observable is not None and values is not None:
            recomputed = np.asarray(e.observable(fields), dtype=np.float64)
            tol = _tolerances(fields.dtype)[1]
            with np.errstate(all="ignore"):
                ok = np.abs(recomputed - values[i]) <= tol * np.maximum(1.0, np.abs(recomputed))
            if not ok.all():
                c = int(np.nonzero(~ok)[0][0])
                return (
                    f"record {e.observable_name}[{i}, chain {c}] = {values[i][c]!r}, the fields give {recomputed[c]!r}"
                )
        acc = self.records.get("accepted")
        if before is not None and e.steps_per_config is not None and acc is not None:
            moved = _moved(fields, before)
            claims = acc[i] > 0
            wrong = np.nonzero(moved != claims)[0]
            if wrong.size:
                c = int(wrong[0])
                state = "moved" if moved[c] else "did not move"
                return (
                    f"record accepted[{i}, chain {c}] = {acc[i][c]!r} but the chain's fields {state} "
                    f"since configuration {i - 1}"
                )
        return None

    def configurations(self) -> None:
        before = None
        for i in range(max(self.first - 1, 0), self.store.n_committed):
            try:
                fields = self.store.read_fields(i)
            except StoreError as exc:
                if i >= self.first:
                    self.bad.append({"index": i, "error": str(exc)})
                before = None
                continue
            if i >= self.first:
                problem = self.configuration(i, fields, before)
                if problem is not None:
                    self.bad.append({"index": i, "error": problem})
            before = fields


def verify_store(
    path: str | os.PathLike,
    expectations: StoreExpectations | None = None,
    tail: int | None = None,
    allow_resize: bool = False,
) -> dict:
    """``{"store", "n_committed", "ok", "checked", "bad": [{"index", "error"}], "records",
    "checkpoint", "structure", "content"}``.

    ``tail = None`` reads every committed configuration, ``tail = k`` the last ``k`` (the
    records, the checkpoint and the structure are checked whole either way);
    ``allow_resize``: arrays of different capacity (an interrupted resize, which a writer
    finishes) are not reported. A damaged
    configuration is reported with its index and the check goes on; a store whose
    bookkeeping cannot even be opened is reported under ``structure``.
    """
    expect = expectations or StoreExpectations()
    try:
        store = EnsembleStore.open(Path(path))
    except StoreDamage as exc:
        return {
            "store": str(path),
            "n_committed": None,
            "ok": False,
            "checked": "nothing",
            "bad": [],
            "records": {},
            "checkpoint": "not checked",
            "structure": [str(exc)],
            "content": "not checked",
        }
    n = store.n_committed
    first = 0 if tail is None else max(n - tail, 0)
    check = _Checker(store, expect, first)
    structure = check.structure(allow_resize)
    records = check.read_records()
    try:
        ckpt = store.checkpoint()
        checkpoint = "ok"
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint in any way
        ckpt, checkpoint = None, f"damaged: {exc}"
    check.record_consistency(records, ckpt)
    check.configurations()
    content = (
        "content digests checked"
        if DIGEST in store.record_names
        else f"no content digests (store format {store.format_version}): swapped or foreign chunks cannot be told apart"
    )
    ok = not check.bad and all(v == "ok" for v in records.values()) and checkpoint == "ok" and not structure
    return {
        "store": str(path),
        "n_committed": n,
        "ok": ok,
        "checked": "all configurations" if first == 0 else f"configurations {first}..{n - 1}",
        "bad": check.bad,
        "records": records,
        "checkpoint": checkpoint,
        "structure": structure,
        "content": content,
    }


def first_problem(report: dict) -> str:
    """The first problem of a ``verify_store`` report, as one line."""
    if report["structure"]:
        return report["structure"][0]
    for name, status in report["records"].items():
        if status != "ok":
            return status if str(report["store"]) in status else f"store {report['store']!r}: record {name!r}: {status}"
    if report["checkpoint"] != "ok":
        return report["checkpoint"]
    if report["bad"]:
        bad = report["bad"][0]
        more = f" ({len(report['bad'])} damaged configurations)" if len(report["bad"]) > 1 else ""
        return (
            bad["error"]
            if str(report["store"]) in bad["error"]
            else f"store {report['store']!r}: configuration {bad['index']}: {bad['error']}"
        ) + more
    return "no problem"
