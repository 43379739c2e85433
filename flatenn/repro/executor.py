"""Executors run a reproduction's work units (:mod:`flatenn.repro.plan`).

An executor gets the units in plan order and the experiment (the driver: the only code that writes the
results folder). :class:`LocalExecutor`, the default, has the experiment compute them one after another
in this process. A cluster executor (:class:`flatenn.repro.ray_executor.RayExecutor`) turns units into
self-contained tasks (``experiment.task(unit)``, :mod:`flatenn.repro.tasks`), runs them elsewhere and
hands their results back (``experiment.record(unit, result)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .plan import Unit


class Executor(Protocol):
    def run(self, units: Iterable[Unit], experiment: Any) -> None:
        """Compute every unit (a unit's model comes before it in ``units``)."""


class LocalExecutor:
    """In-process, in plan order (no extra dependency, no process start-up)."""

    def run(self, units: Iterable[Unit], experiment: Any) -> None:
        for u in units:
            experiment.run_unit(u)
