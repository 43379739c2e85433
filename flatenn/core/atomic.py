"""Atomic file writes: readers see the old file or the whole new one, never a partly written file."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace`` (mode 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and models are meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC and e.filename != str(path):
            raise DiskFullError(path) from e  # name the file the caller meant, not the temp file
        raise


class DiskFullError(OSError):
    """The disk filled up while writing ``filename``; the old file (if any) is intact."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(errno.ENOSPC, "No space left on device", str(path))


def is_disk_full(e: BaseException) -> bool:
    """Whether an exception is the disk filling up (ENOSPC)."""
    return isinstance(e, OSError) and e.errno == errno.ENOSPC


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode())
