"""Advisory file locks: one writer per results folder, one trainer per model cache entry.

POSIX ``fcntl.flock`` on a ``.lock`` file: released by the OS when the process dies, so a killed run
never leaves a stale lock. Elsewhere (no fcntl) locking is skipped with a one-time warning.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Exclusive, non-blocking lock on a folder for the lifetime of a run (``release()`` or process exit)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None
        if fcntl is None:
            warnings.warn("no fcntl on this platform: results folders are not locked", stacklevel=2)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FolderBusyError(
                f"{self.path.parent} is being written by {holder}; wait for it to finish, or use another "
                "--results-dir (two runs on one folder would lose rows)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Blocking exclusive lock on ``path`` (e.g. ``<cache>/<key>.lock``): concurrent trainers of one model
    wait for each other, and the later one then loads what the first stored."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def clean_stale_temp_files(folder: Path) -> list[Path]:
    """Delete ``*.tmp`` files a killed writer left between write and rename (call while holding the lock)."""
    removed = []
    for p in Path(folder).glob("*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed
