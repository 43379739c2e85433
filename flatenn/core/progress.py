"""Progress lines for long runs: throttled whole lines (readable in CI logs), formatted by tqdm.

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


LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) {elapsed} elapsed, eta {remaining}{postfix}"


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
        """One line (no carriage returns, so CI logs stay readable), formatted by ``tqdm.format_meter``."""
        from tqdm import tqdm

        emit(
            tqdm.format_meter(
                self.done,
                self.total or None,
                now - self.start,
                prefix=self.desc,
                postfix=note or None,
                bar_format=LINE_FORMAT,
            )
        )


class Stages:
    """Stage counters of a long run: ``[smoke] campaigns 12/75, 3:10 elapsed, eta 6:40 for the run``.

    Each unit is counted once, however often it is asked for (a resumed unit counts, but a second
    request for a unit already counted does not), so a counter never passes its total. The ETA covers
    the whole run: for every stage, the mean time of its units computed so far (time since the previous
    step; resumed units are excluded) times the units it has left. While some stage with units left has
    no timed unit yet, the ETA is a lower bound (``eta >= ...``).
    """

    def __init__(self, prefix: str, totals: dict[str, int]) -> None:
        self.prefix, self.totals = prefix, dict(totals)
        self.done = dict.fromkeys(totals, 0)
        self.start = self._last = time.perf_counter()
        self._seen: set[tuple[str, str]] = set()
        self._timed: dict[str, tuple[int, float]] = {}  # stage -> (computed units, seconds)

    def step(self, stage: str, unit: str, note: str = "", resumed: bool = False) -> None:
        """Count ``unit`` of ``stage`` as done (once), timed since the previous step unless ``resumed``."""
        now = time.perf_counter()
        spent, self._last = now - self._last, now
        if (stage, unit) in self._seen:
            return
        self._seen.add((stage, unit))
        self.done[stage] = self.done.get(stage, 0) + 1
        if not resumed:
            n, sec = self._timed.get(stage, (0, 0.0))
            self._timed[stage] = (n + 1, sec + spent)
        d, t = self.done[stage], self.totals.get(stage, 0)
        detail = ", ".join(x for x in (unit, "resumed" if resumed else "", note) if x)
        emit(
            f"{self.prefix} {stage} {d}/{t}, {_clock(now - self.start)} elapsed, {self.eta()} for the run"
            + (f" [{detail}]" if detail else "")
        )

    def eta(self) -> str:
        """``eta H:MM:SS`` for every stage's remaining units, ``eta >= …`` where some stage is not timed yet."""
        total, bound = 0.0, False
        for stage, t in self.totals.items():
            left = max(t - self.done.get(stage, 0), 0)
            if not left:
                continue
            n, sec = self._timed.get(stage, (0, 0.0))
            if n:
                total += sec / n * left
            else:
                bound = True
        return f"eta {'>= ' if bound else ''}{_clock(total)}"
