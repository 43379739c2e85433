"""Computing and recording a run's measurements: campaigns, sharpness and sparsity of one model each, and the
inference-time protection a campaign runs under.

Each measurement is skipped when its rows are recorded already (resume), checked on the tables in memory; each
row carries the model's fingerprint and the run's id, and only this driver writes the results folder (rows
computed elsewhere come back through :meth:`Measurements.record_campaign` and the two other ``record_*``).
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from ..analysis.sharpness import measure
from ..core.activations import measure_sparsity
from ..core.data import DataSplit
from ..core.progress import Stages
from ..core.results import table_file, write_schema_table
from ..faults.campaign import pending_trials, run_campaign
from ..faults.protection import Protection
from ..faults.protection_builder import build_protection
from .folder import ResultsFolder
from .inputs import eval_inputs, measure_options, sharpness_inputs
from .model_source import ModelSource
from .plan import Unit
from .run_record import RunRecord


class Measurements:
    """The measurement units of one run; see the module docstring."""

    def __init__(
        self, scale, folder: ResultsFolder, models: ModelSource, run: RunRecord, stages: Stages, device, progress: bool
    ) -> None:
        self.scale, self.folder, self.models, self.run, self.stages = scale, folder, models, run, stages
        self.device, self.progress = device, progress
        self.campaigns_done: set[tuple[str, str]] = set()
        self._protections: dict[str, Protection] = {}  # data-fitted protections per model id, built once

    # ---- inputs -------------------------------------------------------------------------------
    def data(self) -> DataSplit:
        return self.models.zoo.data_for(self.scale.train_config("standard-sgd", self.scale.seeds[0]))

    def eval_set(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluation images of the models of training seed ``seed`` (see :func:`eval_inputs`)."""
        return eval_inputs(self.scale, self.data(), seed)

    def sharpness_set(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return sharpness_inputs(self.scale, self.data(), seed)

    # ---- campaigns ----------------------------------------------------------------------------
    def protection(self, variant: str, seed: int) -> str | Protection:
        """The variant's inference-time protection: a name, or one fitted on the first training images (never the
        test images; :func:`~flatenn.faults.protection_builder.build_protection`): Ranger's bounds on
        ``ranger_examples`` of them, FT-ClipAct's thresholds on ``clipact_examples`` under bit flips at the
        informative window's rates, with fault maps that score no model."""
        name = self.scale.protection(variant)
        if name not in ("ranger", "ft-clipact"):
            return name
        mid = self.scale.model_id(variant, seed)
        if mid not in self._protections:
            model, _ = self.models.model(variant, seed)
            data = self.data()
            self._protections[mid] = build_protection(
                name,
                model,
                data.x_train,
                data.y_train,
                campaign_seed=self.scale.map_seed(seed),
                rates=self.scale.informative_rates.get("bitflip") or self.scale.rates,
                ranger_examples=self.scale.ranger_examples,
                clipact_examples=self.scale.clipact_examples,
                clipact_trials=self.scale.clipact_trials,
                batch_size=self.scale.eval_batch_size,
            )
        return self._protections[mid]

    def campaign(self, variant: str, seed: int, fault_model: str) -> None:
        """Run (or resume) the scale's campaign for one model and fault model into the campaign table."""
        model, _ = self.models.model(variant, seed)
        x, y = self.eval_set(seed)
        mid = self.scale.model_id(variant, seed)
        if self.campaign_recorded(variant, seed, fault_model):
            return
        t0 = time.perf_counter()
        self.run.begin()
        df = run_campaign(
            model,
            x,
            y,
            fault_model,
            rates=self.scale.rates,
            trials=self.scale.trials,
            seed=self.scale.map_seed(seed),
            model_id=mid,
            batch_size=self.scale.eval_batch_size,
            out=table_file(self.folder.path, "campaign"),
            progress=self.progress,
            extra={"variant": variant, "train_seed": seed, "run_id": self.run.run_id},
            protection=self.protection(variant, seed),
        )
        self.folder.changed("campaign")
        self.campaigns_done.add((mid, fault_model))
        self.stages.step("campaigns", f"{mid} {fault_model}", resumed=not df.attrs.get("computed_rows"))
        if df.attrs.get("computed_rows"):
            self.run.computed = True
            self.run.timings[f"campaign/{mid}/{fault_model}"] = time.perf_counter() - t0

    def campaign_recorded(self, variant: str, seed: int, fault_model: str) -> bool:
        """Whether the campaign table holds every row of this campaign (then marked done). Checked on the table
        in memory, before a data-fitted protection (FT-ClipAct's search) is built: a resumed run walks a large
        folder without re-reading the file or rebuilding protections."""
        mid = self.scale.model_id(variant, seed)
        if (mid, fault_model) in self.campaigns_done:
            return True
        model, _ = self.models.model(variant, seed)
        x, y = self.eval_set(seed)
        s = self.scale
        pending = pending_trials(
            model,
            x,
            y,
            fault_model,
            self.folder.table("campaign"),
            rates=s.rates,
            trials=s.trials,
            seed=s.map_seed(seed),
            model_id=mid,
            batch_size=s.eval_batch_size,
            protection=s.protection(variant),
        )
        if pending:
            return False
        self.campaigns_done.add((mid, fault_model))
        self.stages.step("campaigns", f"{mid} {fault_model}", resumed=True)
        return True

    def record_campaign(self, unit: Unit, rows: pd.DataFrame, seconds: float) -> None:
        """Campaign rows computed elsewhere, merged into the campaign table."""
        mid = self.scale.model_id(unit.variant, unit.seed)
        if len(rows):
            self.run.begin()
            write_schema_table(
                pd.concat([self.folder.table("campaign"), rows], ignore_index=True),
                table_file(self.folder.path, "campaign"),
                "campaign",
            )
            self.folder.changed("campaign")
            self.run.computed = True
            self.run.timings[f"campaign/{mid}/{unit.fault_model}"] = seconds
        self.campaigns_done.add((mid, unit.fault_model))
        self.stages.step("campaigns", f"{mid} {unit.fault_model}", resumed=not len(rows))

    # ---- sharpness and sparsity ---------------------------------------------------------------
    def sharpness_recorded(self, mid: str) -> bool:
        recorded = self.folder.table("sharpness")
        if not len(recorded):
            return False
        mine = (recorded["model_id"] == mid) & (recorded["fingerprint"] == self.models.fingerprints[mid])
        return set(self.scale.sharpness_metrics) <= set(recorded.loc[mine, "metric"])

    def sharpness(self, variant: str, seed: int) -> None:
        """Measure the scale's sharpness metrics (and 1-D landscape) for one model, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.models.model(variant, seed)
        if self.sharpness_recorded(mid):
            self.stages.step("sharpness", mid, resumed=True)
            return
        x, y = self.sharpness_set(seed)
        s = self.scale
        t0 = time.perf_counter()
        rows, land = measure(
            model,
            x,
            y,
            s.sharpness_metrics,
            model_id=mid,
            seed=s.sharpness_seed_for(seed),
            batch_size=s.eval_batch_size,
            options=measure_options(s),
        )
        self.record_sharpness(Unit("sharpness", variant, seed), rows, land, time.perf_counter() - t0)

    def _tags(self, unit: Unit) -> dict:
        mid = self.scale.model_id(unit.variant, unit.seed)
        return {
            "variant": unit.variant,
            "train_seed": unit.seed,
            "fingerprint": self.models.fingerprints[mid],
            "run_id": self.run.run_id,
        }

    def record_sharpness(self, unit: Unit, rows: pd.DataFrame, land: pd.DataFrame, seconds: float) -> None:
        mid = self.scale.model_id(unit.variant, unit.seed)
        for m, sec in zip(rows["metric"], rows["seconds"], strict=True):
            self.run.timings[f"sharpness/{mid}/{m}"] = float(sec)
        self.run.timings[f"sharpness/{mid}"] = seconds
        self.stages.step("sharpness", mid, f"{seconds:.0f}s")
        self.run.computed = True
        self.run.begin()
        self.folder.merge("sharpness", rows.assign(**self._tags(unit)))
        if len(land):
            self.folder.merge("landscape", land.assign(**self._tags(unit)))

    def sparsity(self, variant: str, seed: int) -> None:
        """Per-layer activation sparsity of one model on the evaluation set, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.models.model(variant, seed)
        if self.folder.has_rows("sparsity", mid, self.models.fingerprints[mid]):
            self.stages.step("sparsity", mid, resumed=True)
            return
        x, _ = self.eval_set(seed)
        self.record_sparsity(
            Unit("sparsity", variant, seed), measure_sparsity(model, x.to(self.device), self.scale.eval_batch_size)
        )

    def record_sparsity(self, unit: Unit, df: pd.DataFrame) -> None:
        mid = self.scale.model_id(unit.variant, unit.seed)
        self.run.computed = True
        self.run.begin()
        self.folder.merge("sparsity", df.assign(model_id=mid, **self._tags(unit)))
        self.stages.step("sparsity", mid)
