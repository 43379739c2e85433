"""Runs what a scale's claims need — trainings, campaigns, sharpness, sparsity — and records it.

Every product is written under ``<results>/<scale>/`` as soon as it exists and is reused on the next run
(resume). An :class:`Experiment` puts together one run's parts, each with one job:

* :class:`~flatenn.repro.run_record.RunRecord`: the run's id, code, timings and provenance entry;
* :class:`~flatenn.repro.model_source.ModelSource`: where models come from (the folder, the shipped models, the
  zoo) and which must be trained elsewhere, in waves;
* :class:`~flatenn.repro.measurements.Measurements`: campaigns, sharpness and sparsity, computed and recorded;
* :class:`~flatenn.repro.unit_tasks.UnitTasks`: a unit computed here, or handed to an executor as a task;
* :class:`~flatenn.repro.looks.RunPlan`: which units the run computes (a reproduction, a ``-k`` selection,
  a plan-v2 recording's looks);

and derives the summary, claims and verdicts at the end. Its methods are what executors
(:mod:`flatenn.repro.executor`, :mod:`flatenn.repro.ray_executor`), the benchmarks and the command line use.
Only what a caller asks for is computed, so ``pytest benchmarks -k saq`` measures just what those cases need.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..core.data import DataSplit
from ..core.determinism import resolve_device, torch_state
from ..core.results import SUMMARY_COLUMNS, SUMMARY_KEY, write_table
from ..core.zoo import Zoo
from .executor import Executor, LocalExecutor
from .folder import ResultsFolder
from .looks import RunPlan
from .measurements import Measurements
from .model_source import ModelSource
from .plan import Unit
from .run_record import RunRecord, git_state, new_run_id
from .scales import ScaleConfig
from .tasks import Task, TaskResult
from .unit_tasks import UnitTasks

REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "results"
__all__ = ["Experiment", "REFERENCE_ROOT", "campaign_summary", "git_state", "new_run_id"]


class Experiment:
    """One run over one scale's results folder; see the module docstring."""

    def __init__(
        self,
        scale: ScaleConfig,
        results_dir: str | Path,
        zoo: Zoo | None = None,
        device: str | None = None,
        progress: bool = True,
        retrain: bool = False,
        reference_dir: str | Path | None = None,
        command: str | None = None,
        executor: Executor | None = None,
        all_seeds: bool = True,
    ) -> None:
        self.scale, self.retrain, self.progress = scale, retrain, progress
        # plan-v2 scales: a reproduction re-measures the plan's reproduce_seeds unless all_seeds (every seed the
        # reference recorded); a recording (run_looks) always adds seeds by the plan
        self.all_seeds = all_seeds
        self.folder = ResultsFolder(results_dir)  # lock, tables, models, provenance
        self.dir, self.lock = self.folder.path, self.folder.lock
        self.executor: Executor = executor or LocalExecutor()
        self.device = resolve_device(device or scale.device)
        self.zoo = zoo or Zoo(device=str(self.device), progress=progress)
        self.reference = Path(reference_dir) if reference_dir else REFERENCE_ROOT / scale.name
        self.run_record = RunRecord(self.folder, scale, self.device, command)
        threads = int(os.environ.get("FLATENN_THREADS", 0)) or scale.torch_threads
        self._threads = threads if self.device.type == "cpu" else None
        # deterministic kernels (also when every model comes from the cache) and the scale's thread count
        # (recorded in provenance: results may depend on it) hold while the experiment is open; close() restores
        self._torch = torch_state(deterministic=True, threads=self._threads)
        self._torch.__enter__()
        self.plan = RunPlan(scale, self.reference, all_seeds, self.run, self.tables, set())
        shipped = Zoo(self.reference / "models", device=str(self.device), progress=progress)
        self.models = ModelSource(
            scale, self.folder, self.zoo, shipped, self.run_record, self.plan.stages, retrain, self.device, progress
        )
        self.measurements = Measurements(
            scale, self.folder, self.models, self.run_record, self.plan.stages, self.device, progress
        )
        self.unit_tasks = UnitTasks(scale, self.models, self.measurements, self._threads, self.device)
        self.plan._done = self.unit_tasks.done

    def close(self) -> None:
        """Release the folder lock (also released when the process ends) and restore torch's global settings."""
        self.folder.release()
        self._torch.__exit__(None, None, None)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the run's record ---------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The id every row this run writes carries (``<UTC start>-<commit>-<random>``)."""
        return self.run_record.run_id

    @run_id.setter
    def run_id(self, value: str) -> None:
        """Give the run another id (tests pin one so that whole files compare byte for byte)."""
        self.run_record.run_id = value

    @property
    def timings(self) -> dict[str, float]:
        return self.run_record.timings

    @property
    def computed(self) -> bool:
        return self.run_record.computed

    @computed.setter
    def computed(self, value: bool) -> None:
        self.run_record.computed = value

    @property
    def units(self) -> list[Unit]:
        return self.plan.units

    # ---- what callers ask for -----------------------------------------------------------------
    def data(self) -> DataSplit:
        return self.measurements.data()

    def model(self, variant: str, seed: int):
        """(model, record) for a variant and training seed (:class:`ModelSource`)."""
        return self.models.model(variant, seed)

    def run(self, units) -> None:
        """Compute the given work units through the experiment's executor (only this driver writes)."""
        self.executor.run([u for u in units if u not in self.unit_tasks.done], self)

    def ensure(
        self, variants: tuple[str, ...], campaign: tuple[str, ...] = (), sharpness: bool = False, sparsity: bool = False
    ) -> None:
        """Compute whatever of the requested products is missing, for every seed of the scale."""
        units = []
        for v in variants:
            for s in self.scale.seeds:
                units.append(Unit("models", v, s))
                units += [Unit("campaigns", v, s, fm) for fm in campaign]
                units += [Unit("sharpness", v, s)] * sharpness + [Unit("sparsity", v, s)] * sparsity
        self.run(units)

    def ensure_for(self, claim_id: str) -> None:
        """Compute everything one claim needs at this scale (and nothing else)."""
        self.run(self.plan.claim_units(claim_id))

    def ensure_all(self) -> None:
        """Everything every claim of the scale needs (a plan-v2 scale: look by look)."""
        self.plan.run_all()

    # ---- the executor seam: what an executor asks of the experiment ---------------------------
    @property
    def threads(self) -> int | None:
        return self._threads

    def run_unit(self, unit: Unit) -> None:
        self.unit_tasks.run_unit(unit)

    def task(self, unit: Unit) -> Task | None:
        return self.unit_tasks.task(unit)

    def record(self, unit: Unit, result: TaskResult) -> None:
        self.unit_tasks.record(unit, result)

    def model_ready(self, unit: Unit) -> bool:
        return self.models.model_ready(unit)

    def training_waves(self, model_units: list[Unit]) -> list[list]:
        return self.models.training_waves(model_units)

    def train_task(self, cfg) -> Task:
        return self.models.train_task(cfg, self._threads)

    def failed_training(self, cfg) -> bool:
        return self.models.failed_training(cfg)

    def training_failed(self, cfg) -> None:
        self.models.training_failed(cfg)

    def adopt_trained(self, cfg, result: TaskResult) -> None:
        self.models.adopt_trained(cfg, result)

    # ---- tables, claims and provenance at the end ---------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every recorded raw table of this scale (empty frames where none yet)."""
        return self.folder.tables()

    def write_summary(self) -> None:
        """campaign_summary.csv from the campaign table."""
        camp = self.tables()["campaign"]
        if len(camp):
            write_table(campaign_summary(camp), self.dir / "campaign_summary.csv", SUMMARY_COLUMNS, sort=SUMMARY_KEY)

    def prune_models(self) -> None:
        """Delete model files of the folder that no row of training.csv refers to (replaced models)."""
        self.folder.prune_models()

    def finish(self, interrupted: bool = False) -> None:
        """Write the derived tables, claims and provenance of what this run computed.

        Also when this run computed nothing but the folder's provenance is not current (an earlier run was
        killed after writing rows or claims but before its provenance): the folder is completed either way.
        ``interrupted``: the run stopped early (Ctrl-C); its finished rows stay, it is listed as ``interrupted``,
        and nothing is derived from the partial tables (the run that completes the folder derives them).
        """
        if interrupted:
            if self.run_record.begun:
                self.run_record.write_provenance(status="interrupted", keep_unused=True)
            return
        current = self.run_record.provenance_current()
        if self.computed or not current:
            if (self.dir / "training.csv").is_file():
                self.write_summary()
                self.record_claims()
                self.prune_models()
            self.run_record.write_provenance(derived=True)
        elif self.run_record.begun:
            self.run_record.write_provenance()  # drops this run's entry again if it wrote no row

    def record_claims(self) -> pd.DataFrame:
        """Evaluate every case whose inputs are recorded; (re)write claims.csv and claims_detail.csv."""
        from .claims import CLAIM_COLUMNS, DETAIL_COLUMNS, evaluate_all

        claims, detail = evaluate_all(self.tables(), self.scale)
        self.folder.changed("claims")
        self.folder.changed("claims_detail")
        write_table(claims, self.dir / "claims.csv", CLAIM_COLUMNS, sort=["case"])
        write_table(
            detail, self.dir / "claims_detail.csv", DETAIL_COLUMNS, sort=["claim", "metric", "fault_model", "rate"]
        )
        if self.plan.sequential and self.all_seeds:
            self.record_verdicts()
        return claims

    def record_verdicts(self) -> pd.DataFrame:
        """Plan v2's verdicts.csv and sequential.csv and plan v3's tables, (re)written from the folder's tables."""
        from .verdict_tables import write_plan_tables

        verdicts, names = write_plan_tables(self.tables(), self.scale, self.dir)
        for name in names:
            self.folder.changed(name)
        return verdicts


def campaign_summary(camp: pd.DataFrame) -> pd.DataFrame:
    """campaign_summary.csv's rows from campaign rows (also used by verify to re-derive the file)."""
    from ..analysis.stats import summarize_campaign

    summ = summarize_campaign(camp)
    tags = camp.drop_duplicates("model_id").set_index("model_id")[["variant", "train_seed", "fingerprint"]]
    return summ.join(tags, on="model_id")[SUMMARY_COLUMNS]
