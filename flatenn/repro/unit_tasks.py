"""A work unit of :mod:`flatenn.repro.plan`, computed in this process or handed to an executor as a
self-contained task (:mod:`flatenn.repro.tasks`) whose rows come back to be recorded here.

A task carries everything it needs (config, model weights, inputs, options, the run id); a unit whose rows are
recorded already gives no task, and the model's weights are copied only for a unit that still has rows to compute.
"""

from __future__ import annotations

from .inputs import measure_options
from .measurements import Measurements
from .model_source import ModelSource
from .plan import Unit
from .tasks import Task, TaskResult


class UnitTasks:
    """Units of one run: computed here (:meth:`run_unit`), or as tasks (:meth:`task`) recorded by :meth:`record`."""

    def __init__(self, scale, models: ModelSource, measurements: Measurements, threads: int | None, device) -> None:
        self.scale, self.models, self.measurements = scale, models, measurements
        self.threads, self.device = threads, device
        self.done: set[Unit] = set()

    def run_unit(self, unit: Unit) -> None:
        """Compute (or resume) one work unit, at most once per run."""
        if unit in self.done:
            return
        m = self.measurements
        if unit.kind == "models":
            self.models.model(unit.variant, unit.seed)
        elif unit.kind == "campaigns":
            m.campaign(unit.variant, unit.seed, unit.fault_model)
        elif unit.kind == "sharpness":
            m.sharpness(unit.variant, unit.seed)
        elif unit.kind == "sparsity":
            m.sparsity(unit.variant, unit.seed)
        else:
            raise ValueError(f"unknown unit kind {unit.kind!r}")
        self.done.add(unit)

    def task(self, unit: Unit) -> Task | None:
        """The measurement unit as a self-contained task (None when its rows are recorded already)."""
        mid = self.scale.model_id(unit.variant, unit.seed)
        model, record = self.models.model(unit.variant, unit.seed)
        s, m = self.scale, self.measurements
        if unit.kind == "campaigns":
            if m.campaign_recorded(unit.variant, unit.seed, unit.fault_model):
                return None
            camp = m.folder.table("campaign")
            mine = camp[(camp["model_id"] == mid) & (camp["fault_model"] == unit.fault_model)] if len(camp) else None
            kind, inputs = "campaign", m.eval_set(unit.seed)
            options = {
                "fault_model": unit.fault_model,
                "rates": s.rates,
                "trials": s.trials,
                "seed": s.map_seed(unit.seed),
                "model_id": mid,
                "batch_size": s.eval_batch_size,
                "extra": {"variant": unit.variant, "train_seed": unit.seed, "run_id": m.run.run_id},
                "recorded": mine,
                "protection": m.protection(unit.variant, unit.seed),
            }
        elif unit.kind == "sharpness":
            if m.sharpness_recorded(mid):
                return None
            kind, inputs = "sharpness", m.sharpness_set(unit.seed)
            options = {
                "metrics": s.sharpness_metrics,
                "model_id": mid,
                "seed": s.sharpness_seed_for(unit.seed),
                "batch_size": s.eval_batch_size,
                "measure": measure_options(s),
            }
        elif unit.kind == "sparsity":
            if m.folder.has_rows("sparsity", mid, self.models.fingerprints[mid]):
                return None
            kind, inputs, options = "sparsity", m.eval_set(unit.seed), {"batch_size": s.eval_batch_size}
        else:
            raise ValueError(f"no task for unit kind {unit.kind!r}")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return Task(
            kind,
            unit.label(s),
            s.train_config(unit.variant, unit.seed),
            threads=self.threads,
            device=str(self.device),
            state=state,
            threshold=record.threshold,
            fingerprint=self.models.fingerprints[mid],
            inputs=inputs,
            options=options,
        )

    def record(self, unit: Unit, result: TaskResult) -> None:
        """Merge a task's rows into the results folder (the driver is the only writer)."""
        m = self.measurements
        if unit.kind == "sharpness":
            m.record_sharpness(unit, result.rows, result.landscape, result.seconds)
        elif unit.kind == "sparsity":
            m.record_sparsity(unit, result.rows)
        elif unit.kind == "campaigns":
            m.record_campaign(unit, result.rows, result.seconds)
        else:
            raise ValueError(f"no record for unit kind {unit.kind!r}")
        self.done.add(unit)
