"""Which work units a run computes: every unit of a plan-v1 scale, or for a plan-v2 scale the units the
reference folder recorded (its looks replayed from its rows) at the plan's ``reproduce_seeds``; a ``-k``
selection narrows them to its claims. A recording of a plan-v2 scale adds seeds look by look
(:meth:`RunPlan.run_looks`): after each complete block the open primary cases are tested and the next block
trains only what the still-open claims need.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..core.progress import Stages, emit
from .plan import Unit, claim_units, is_sequential, plan, sequential_units, totals


class RunPlan:
    """The units of one run and how far it got; ``run`` computes a list of units, ``tables`` reads the folder's."""

    def __init__(
        self,
        scale,
        reference: Path,
        all_seeds: bool,
        run: Callable[[list[Unit]], None],
        tables: Callable[[], dict[str, pd.DataFrame]],
        done: set[Unit],
    ) -> None:
        self.scale, self.reference, self.all_seeds = scale, reference, all_seeds
        self._run, self._tables, self._done = run, tables, done
        self._reference_tables: dict[str, pd.DataFrame] | None = None
        # everything the scale's claims need (progress totals); a plan-v2 scale: what a reproduction re-measures
        # (a recording, run_looks, replaces it look by look)
        self.units = self._reproduction_units() if self.sequential else plan(scale)
        self.stages = Stages(f"[{scale.name}]", totals(self.units))

    @property
    def sequential(self) -> bool:
        return is_sequential(self.scale)

    def reference_tables(self) -> dict[str, pd.DataFrame]:
        """The reference folder's raw tables (read once; empty where it has none)."""
        if self._reference_tables is None:
            from ..core.results import read_results

            self._reference_tables = read_results(self.reference) if self.reference.is_dir() else {}
        return self._reference_tables

    def _reproduction_units(self) -> list[Unit]:
        from .claims import scale_claims

        seen: dict[Unit, None] = {}
        for cid in scale_claims(self.scale.claims):
            for u in self.reproduce_units(cid):
                seen.setdefault(u, None)
        return list(seen)

    def reproduce_units(self, claim_id: str) -> list[Unit]:
        """A plan-v2 claim's units to re-measure: those the reference recorded (its looks replayed), at the
        plan's ``reproduce_seeds`` unless ``all_seeds``."""
        from .decide import PLAN
        from .plan import seeds_recorded

        mine = claim_units(self.scale, claim_id, seeds_recorded(self.scale))
        ref = self.reference_tables()
        if ref and len(ref.get("campaign", ())):
            recorded = set(sequential_units(self.scale, ref, "complete"))
            mine = [u for u in mine if u in recorded]
        else:  # no reference: the first block, as a recording would start
            mine = [u for u in mine if u.seed < PLAN.scales[self.scale.name].looks[0]]
        if not self.all_seeds:
            keep = set(PLAN.scales[self.scale.name].reproduce_seeds)
            mine = [u for u in mine if u.seed in keep]
        return mine

    def claim_units(self, claim_id: str) -> list[Unit]:
        """Everything one claim needs at this scale (and nothing else)."""
        return self.reproduce_units(claim_id) if self.sequential else claim_units(self.scale, claim_id)

    def limit_to(self, claim_ids: set[str]) -> None:
        """Plan (and count in the progress lines) only the units these claims need: a ``-k`` selection."""
        units: dict[Unit, None] = {}
        for cid in sorted(claim_ids):
            for u in self.claim_units(cid):
                units.setdefault(u, None)
        self.units = list(units)
        self.stages.totals = totals(self.units)

    def progress_counts(self) -> tuple[int, int]:
        """(units finished, units planned) of this run."""
        return sum(u in self._done for u in self.units), len(self.units)

    def run_all(self) -> None:
        """Everything every claim of the scale needs (a plan-v2 scale: look by look)."""
        if self.sequential:
            self.run_looks()
        else:
            self._run(self.units)

    def run_looks(self) -> None:
        """Record a plan-v2 scale block by block until every primary case is decided or the cap is reached;
        resumes from whatever is recorded."""
        from .decide import PLAN, sequential

        looks = PLAN.scales[self.scale.name].looks
        while True:
            state = sequential(self._tables(), self.scale)
            self.units = sequential_units(self.scale, self._tables())
            self.stages.totals = totals(self.units)
            todo = [u for u in self.units if u not in self._done]
            if state.next_look < len(looks):
                self.stages.prefix = f"[{self.scale.name} look {state.next_look + 1}/{len(looks)}]"
                emit(
                    f"[{self.scale.name}] look {state.next_look + 1} of {len(looks)}: seeds up to "
                    f"{looks[state.next_look]}, open primary cases: {', '.join(state.open) or 'none'}"
                )
            if not todo:
                return
            self._run(todo)
