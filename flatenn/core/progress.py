"""A dependency-free progress line for long runs (throttled, works in CI logs).

Lines go through one *sink* (default: stderr). A host that captures stderr, such as the pytest
benchmark session, installs a sink that writes to the terminal instead (:func:`set_sink`), so stage
progress stays visible. ``FLATENN_QUIET=1`` silences everything.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

_sink: Callable[[str], None] | None = None


def set_sink(sink: Callable[[str], None] | None) -> None:
    """Send progress lines to ``sink`` (None: back to stderr)."""
    global _sink
    _sink = sink


def emit(line: str) -> None:
    """Write one progress line unless FLATENN_QUIET is set."""
    if os.environ.get("FLATENN_QUIET"):
        return
    if _sink is not None:
        _sink(line)
    else:
        print(line, file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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
        emit(line + (f" [{note}]" if note else ""))


class Stages:
    """Stage counters of a long run: ``[smoke] campaigns 12/75, 3:10 elapsed, eta 6:40 (stage)``."""

    def __init__(self, prefix: str, totals: dict[str, int]) -> None:
        self.prefix, self.totals = prefix, dict(totals)
        self.done = dict.fromkeys(totals, 0)
        self.start = time.perf_counter()
        self.first: dict[str, float] = {}

    def step(self, stage: str, note: str = "") -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.done[stage] = self.done.get(stage, 0) + 1
        d, t = self.done[stage], self.totals.get(stage, 0)
        rate = (now - self.first[stage]) / max(d - 1, 1) if d > 1 else float("nan")
        eta = rate * max(t - d, 0)
        emit(f"{self.prefix} {stage} {d}/{t}, {_clock(now - self.start)} elapsed, eta {_clock(eta)} for this stage"
             + (f" [{note}]" if note else ""))  # fmt: skip
