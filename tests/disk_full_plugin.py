"""A pytest plugin for tests/test_reproduce_console.py: the disk is full from the Nth atomic write on.

``FLATENN_FULL_AFTER=N``: writes 1..N succeed, every later one fails with ENOSPC (as a full disk does).
"""

import errno
import os

import flatenn.core.atomic as atomic

_real = atomic.os.replace
_count = [0]


def _replace(src, dst):
    _count[0] += 1
    if _count[0] > int(os.environ.get("FLATENN_FULL_AFTER", "0")):
        raise OSError(errno.ENOSPC, "No space left on device")
    return _real(src, dst)


atomic.os.replace = _replace
