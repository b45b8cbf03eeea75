"""One writer per store: an exclusive OS file lock beside the store.

``writer_lock(path)`` takes ``flock(LOCK_EX | LOCK_NB)`` on ``<path>.lock`` for as long as
the ``with`` block runs, and writes the holder's PID and host into it. The operating
system releases the lock when the holder exits or is killed (SIGKILL included), so no
stale lock survives a crash (the empty-of-meaning file a killed holder leaves is simply
locked by the next writer). A holder removes the file before it releases the lock; a
writer that locked a file removed meanwhile notices (the path names another inode) and
tries again, so two writers never hold two different files. Readers never take the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .ensemble import StoreError

__all__ = ["writer_lock", "lock_path"]


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        return f"PID {info.get('pid', '?')} on host {info.get('host', '?')}"
    except (OSError, ValueError):
        return "another process"


def _acquire(lock: Path, path) -> int:
    """An fd of ``lock`` holding its exclusive flock; the file the path names now is the
    one locked (a holder that released and removed it meanwhile made us lock a stale inode:
    then try again)."""
    ancestor = lock.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(f"store {str(path)!r}: {str(ancestor)!r} is a file, not a folder; allowed: a path "
                         "whose parent folders are folders")
    for _ in range(100):
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"store {str(path)!r}: cannot create its lock file {str(lock)!r} "
                             f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StoreError(
                f"store {str(path)!r} is being written by {holder}; allowed: one writer per store "
                "(wait for it to finish, or stop it)"
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise StoreError(f"store {str(path)!r}: its lock file {str(lock)!r} keeps changing; allowed: one writer")


@contextmanager
def writer_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive writer lock of the store at ``path``, or raise ``StoreError``
    naming the holder. The lock file is removed (while still locked) on release."""
    lock = lock_path(path)
    fd = _acquire(lock, path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        yield
    finally:
        try:
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)  # releases the flock
