"""The store's single-writer lock: an exclusive, non-blocking flock on `<root>/.lock`."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from delift_dvc.errors import StoreLockedError

__all__ = ["WriteLock"]


def _command_line() -> str:
    try:
        raw = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        parts = [p.decode(errors="replace") for p in raw]
    except OSError:
        parts = [sys.executable, *sys.argv]
    return " ".join(parts).replace("\n", " ").replace("\r", " ")[:300]


class WriteLock:
    """An exclusive, non-blocking flock on `<root>/.lock` holding "pid command"."""

    def __init__(self, root: Path) -> None:
        """Take the lock or raise StoreLockedError naming the holder."""
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip().replace("\n", " ")
            os.close(fd)
            pid, _, cmd = holder.partition(" ")
            who = f"pid {pid}: {cmd}" if pid else "pid unknown"
            raise StoreLockedError(f"{root}: store is locked by another delift-dvc process "
                                   f"({who}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_command_line()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Clear the holder line and release the lock (idempotent). The file stays: deleting
        it would let two processes lock different inodes."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
