"""A dependency-free progress line for long runs (stderr, throttled, works in CI logs)."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """Prints ``desc: done/total (pct) elapsed eta [note]`` at most every ``every`` seconds."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: float = 2.0) -> None:
        self.total, self.desc, self.every = max(int(total), 0), desc, every
        self.enabled = enabled and not os.environ.get("FLATENN_QUIET")
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.every or self.done >= self.total):
            self._last = now
            self._print(now, note)

    def _print(self, now: float, note: str) -> None:
        elapsed = now - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        line = f"{self.desc}: {self.done}/{self.total} ({100 * frac:.0f}%) {elapsed:.1f}s elapsed, eta {eta:.1f}s"
        print(line + (f" [{note}]" if note else ""), file=sys.stderr, flush=True)
