"""Executors run a reproduction's work units (:mod:`flatenn.repro.plan`).

An executor gets the units in plan order and a function that computes one unit and records its rows
(the driver: the only code that writes the results folder). :class:`LocalExecutor`, the default, runs
them one after another in this process. A cluster executor runs the independent units elsewhere and
hands their rows back to the driver; it plugs in here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from .plan import Unit


class Executor(Protocol):
    def run(self, units: Iterable[Unit], work: Callable[[Unit], None]) -> None:
        """Compute every unit (a unit's dependencies come before it in ``units``)."""


class LocalExecutor:
    """In-process, in plan order (no extra dependency, no process start-up)."""

    def run(self, units: Iterable[Unit], work: Callable[[Unit], None]) -> None:
        for u in units:
            work(u)
