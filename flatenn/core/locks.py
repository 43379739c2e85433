"""Advisory file locks: one writer per results folder, one trainer per model cache entry.

Built on :mod:`filelock` (fcntl on POSIX, msvcrt on Windows): the OS releases a lock when its process
dies, so a killed run never leaves a stale lock. The holder of a folder lock writes its pid beside
the lock file, so a second writer is told who holds it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Exclusive, non-blocking lock on a folder for the lifetime of a run (``release()`` or process exit)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._holder = self.path.with_name(".lock.holder")
        self._lock: FileLock | None = FileLock(self.path, timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            self._lock = None
            try:
                holder = self._holder.read_text().strip() or "another process"
            except OSError:
                holder = "another process"
            raise FolderBusyError(
                f"{self.path.parent} is being written by {holder}; wait for it to finish, or use another "
                "--results-dir (two runs on one folder would lose rows)"
            ) from None
        self._holder.write_text(f"pid {os.getpid()}")

    def release(self) -> None:
        if self._lock is not None:
            self._holder.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Blocking exclusive lock on ``path`` (e.g. ``<cache>/<key>.lock``): concurrent trainers of one model
    wait for each other, and the later one then loads what the first stored."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def clean_stale_temp_files(folder: Path) -> list[Path]:
    """Delete ``*.tmp`` files a killed writer left between write and rename (call while holding the lock)."""
    removed = []
    for p in Path(folder).glob("*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed
