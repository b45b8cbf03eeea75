"""One writer per store: exclusive OS file locks, beside the store and on the store itself.

``writer_lock(path)`` takes ``flock(LOCK_EX | LOCK_NB)`` on ``<path>.lock`` (which also
guards the creation of a new store and names the holder: its PID and host are written into
it) and on the store's own folder, an inode that cannot be swapped from under the writer:
a lock file deleted while its holder runs lets a second process lock a new file, but not
the store. The store is locked on entry when it exists, or with ``hold_store()`` as soon as
the writer has created it. The operating system releases both locks when the holder exits
or is killed (SIGKILL included), so no stale lock survives a crash. A holder removes its
lock file (if the path still names it) before it releases the lock; a writer that locked
a file removed meanwhile notices (the path names another inode) and tries again.
Readers never take the lock.
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

__all__ = ["writer_lock", "lock_path", "WriterLock"]


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


def _flock_holder(fd: int) -> str:
    """The PID holding a flock on the inode of ``fd``, from ``/proc/locks`` (Linux), or a
    phrase when it cannot be told."""
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == device:
                    return f"PID {parts[4]} on host {socket.gethostname()}"
    except OSError:
        pass
    return "another process"


def _acquire(lock: Path, path) -> int:
    """An fd of ``lock`` holding its exclusive flock; the file the path names now is the
    one locked (a holder that released and removed it meanwhile made us lock a stale inode:
    then try again)."""
    ancestor = lock.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(
            f"store {str(path)!r}: {str(ancestor)!r} is a file, not a folder; allowed: a path "
            "whose parent folders are folders"
        )
    for _ in range(100):
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"store {str(path)!r}: cannot create its lock file {str(lock)!r} ({exc.strerror or exc})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StoreError(
                f"store {str(path)!r} is being written by {holder}; allowed: one writer per store "
                "(wait for it to finish, or stop it)"
            ) from None
        if _names(lock, fd):
            return fd
        os.close(fd)
    raise StoreError(f"store {str(path)!r}: its lock file {str(lock)!r} keeps changing; allowed: one writer")


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open as ``fd``."""
    try:
        st, own = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class WriterLock:
    """The held locks of one writer: the lock file beside the store and, once the store
    exists, the store's folder."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd
        self._store_fd: int | None = None

    def hold_store(self) -> None:
        """Lock the store's folder (once it exists); ``StoreError`` if another writer holds it."""
        if self._store_fd is not None or not self.path.is_dir():
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _flock_holder(fd)
            os.close(fd)
            raise StoreError(
                f"store {str(self.path)!r} is being written by {holder} (its lock file "
                f"{str(lock_path(self.path))!r} was removed while it ran); allowed: one writer per store "
                "(wait for it to finish, or stop it)"
            ) from None
        self._store_fd = fd

    def release(self) -> None:
        lock = lock_path(self.path)
        try:
            if _names(lock, self._fd):  # never remove a lock file another writer made meanwhile
                lock.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # releases the flock
            if self._store_fd is not None:
                os.close(self._store_fd)


@contextmanager
def writer_lock(path: str | os.PathLike) -> Iterator[WriterLock]:
    """Hold the exclusive writer lock of the store at ``path`` (see the module docstring), or
    raise ``StoreError`` naming the holder. The lock file is removed (while still locked) on
    release."""
    path = Path(path)
    lock = WriterLock(path, _acquire(lock_path(path), path))
    try:
        os.ftruncate(lock._fd, 0)
        os.write(lock._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        lock.hold_store()
        yield lock
    finally:
        lock.release()
