"""Runs what a scale's claims need — trainings, campaigns, sharpness, sparsity — and records it.

Every product is written under ``<results>/<scale>/`` as soon as it exists and is reused on the next
run (resume). Every measured row carries the fingerprint of the model it was measured on and the id
of the run that measured it; when a model is loaded, rows of the same model id with another
fingerprint are dropped (and recomputed), so a folder never mixes measurements of different models.

Models come, in this order, from the folder's own ``models/`` (what was measured there), from the
*shipped* models of the reference folder (``results/<scale>/models``: the tracked runs' models, so a
reproduction re-measures exactly the recorded models on any machine), or from the zoo cache, which
trains on a miss. ``retrain=True`` skips the shipped models. Every model used is stored in the
folder's ``models/``. Only what a caller asks for is computed, so ``pytest benchmarks -k saq``
measures just what the SAQ claims need.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.sharpness import measure
from ..core.activations import measure_sparsity
from ..core.data import DataSplit
from ..core.determinism import resolve_device, torch_state
from ..core.fingerprint import model_fingerprint
from ..core.progress import Stages
from ..core.results import SUMMARY_COLUMNS, SUMMARY_KEY, table_file, write_table
from ..core.zoo import Zoo
from ..faults.campaign import pending_trials, run_campaign
from ..faults.protection import Protection
from ..faults.protection_builder import build_protection
from .executor import Executor, LocalExecutor
from .folder import ResultsFolder
from .inputs import eval_inputs, measure_options, sharpness_inputs
from .plan import Unit, claim_units, is_sequential, plan, sequential_units, totals
from .scales import ScaleConfig
from .tasks import Task, TaskResult

REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "results"


def git_state(root: Path | None = None) -> dict:
    """Git commit and dirty flag of the working tree (``unknown`` outside git)."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flatenn", "benchmarks"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


def new_run_id(git: dict) -> str:
    """``<UTC time>-<commit[:8]>-<4 random hex>`` (``+dirty`` when the code differs from the commit).

    The random part keeps two runs started in the same second (a killed run and its immediate rerun,
    two processes on one machine) apart.
    """
    import secrets

    t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{t}-{git['commit'][:8]}-{secrets.token_hex(2)}" + ("+dirty" if git.get("dirty") else "")


class Experiment:
    """One scale's experiment, backed by a results folder, shipped models and a model zoo."""

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
        self.scale = scale
        # plan-v2 scales: a reproduction re-measures the plan's reproduce_seeds unless all_seeds (every seed the
        # reference recorded); a recording (run_looks) always adds seeds by the plan
        self.all_seeds = all_seeds
        self.folder = ResultsFolder(results_dir)  # lock, tables, models, provenance
        self.dir, self.lock = self.folder.path, self.folder.lock
        self.executor: Executor = executor or LocalExecutor()
        self.device = resolve_device(device or scale.device)
        self.zoo = zoo or Zoo(device=str(self.device), progress=progress)
        self.progress = progress
        self.retrain = retrain
        self.reference = Path(reference_dir) if reference_dir else REFERENCE_ROOT / scale.name
        self.local_models = Zoo(self.dir / "models", device=str(self.device), progress=progress)
        self.shipped = Zoo(self.reference / "models", device=str(self.device), progress=progress)
        self.timings: dict[str, float] = {}
        self.git = git_state()  # at start: the code that runs is the code recorded
        self.run_id = new_run_id(self.git)
        self.command = command or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
        self.computed = False  # whether this run measured or trained anything (provenance is written only then)
        self._begun = False  # whether this run is listed in provenance.json yet (see begin)
        self._trained_elsewhere: set[str] = set()  # keys of models an executor trained off this process
        self._failed_training: set[str] = set()
        threads = int(os.environ.get("FLATENN_THREADS", 0)) or scale.torch_threads
        self._threads = threads if self.device.type == "cpu" else None
        # deterministic kernels (also when every model comes from the cache) and the scale's thread count
        # (recorded in provenance: results may depend on it) hold while the experiment is open; close() restores
        self._torch = torch_state(deterministic=True, threads=threads if self.device.type == "cpu" else None)
        self._torch.__enter__()
        self._models: dict[str, tuple] = {}
        self._fingerprints: dict[str, str] = {}
        # everything the scale's claims need (progress totals); a plan-v2 scale: what a reproduction re-measures
        # (a recording, run_looks, replaces it look by look)
        self.units = self._reproduction_units() if is_sequential(scale) else plan(scale)
        self.stages = Stages(f"[{scale.name}]", totals(self.units))
        self._done: set[Unit] = set()
        self._campaigns_done: set[tuple[str, str]] = set()
        # data-built protections (Ranger bounds, FT-ClipAct thresholds) per model id, built once for all fault models
        self._built_protections: dict[str, Protection] = {}

    def close(self) -> None:
        """Release the folder lock (also released when the process ends) and restore torch's global settings."""
        self.folder.release()
        self._torch.__exit__(None, None, None)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- data -------------------------------------------------------------------------------
    def data(self) -> DataSplit:
        return self.zoo.data_for(self.scale.train_config("standard-sgd", self.scale.seeds[0]))

    def eval_set(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluation images of the models of training seed ``seed`` (see :func:`eval_inputs`)."""
        return eval_inputs(self.scale, self.data(), seed)

    def sharpness_set(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return sharpness_inputs(self.scale, self.data(), seed)

    # ---- models -----------------------------------------------------------------------------
    def _obtain(self, cfg) -> tuple[object, object, str]:
        """(model, record, source) from the folder's models, the shipped models, or the zoo."""
        candidates = [(self.local_models, "folder")]
        if not self.retrain and self.shipped.cache_dir != self.local_models.cache_dir:
            candidates.append((self.shipped, "shipped"))
        for zoo, source in candidates:
            loaded = zoo.load(cfg)
            # with --retrain a model already in the folder counts only if this folder trained it
            if loaded is not None and (not self.retrain or source == "shipped" or self._trained_here(cfg)):
                return (*loaded, source)
        trained_before = self.zoo.has(cfg) and cfg.key() not in self._trained_elsewhere
        model, record = self.zoo.get(cfg)
        self.computed = True
        return model, record, "cache" if trained_before else "trained"

    def _trained_here(self, cfg) -> bool:
        """With --retrain, a model in the folder counts only if this folder's training.csv says it was trained."""
        t = self.folder.table("training")
        return len(t) > 0 and bool(((t["key"] == cfg.key()) & t["source"].isin(["trained", "cache"])).any())

    def model(self, variant: str, seed: int):
        """(model, record) for a variant and training seed; see the module docstring for where it comes from."""
        mid = self.scale.model_id(variant, seed)
        if mid not in self._models:
            cfg = self.scale.train_config(variant, seed)
            t0 = time.perf_counter()
            model, record, source = self._obtain(cfg)
            if source == "trained":
                self.timings[f"train/{mid}"] = record.wall_time_s
            self.timings.setdefault(f"load/{mid}", time.perf_counter() - t0)
            if source != "folder":
                self.begin()
                self.local_models.store(cfg, model, record)
            self.stages.step(
                "models", mid, f"{source}, clean accuracy {record.clean_accuracy:.2f}%", resumed=source != "trained"
            )
            fp = model_fingerprint(model)
            self._models[mid] = (model, record)
            self._fingerprints[mid] = fp
            self.folder.drop_model_rows(mid, fp)
            row = {
                "model_id": mid,
                "variant": variant,
                "seed": seed,
                "key": cfg.key(),
                "fingerprint": fp,
                "source": source,
                "dataset": cfg.dataset,
                "model": cfg.model,
                "width": cfg.width,
                "activation": cfg.activation,
                "threshold": record.threshold,
                "optimizer": cfg.optimizer,
                "rho": cfg.rho,
                "epochs": cfg.epochs,
                "clean_accuracy": record.clean_accuracy,
                "clean_loss": record.clean_loss,
                "sparsity": record.sparsity,
                "run_id": self.run_id,
            }
            if not self.folder.has_rows("training", mid, fp):
                self.begin()
                self.folder.merge("training", pd.DataFrame([row]))
        return self._models[mid]

    # ---- measurements -----------------------------------------------------------------------
    def protection(self, variant: str, seed: int) -> str | Protection:
        """The variant's inference-time protection: a name, or one fitted on the first training images (never the
        test images; :func:`~flatenn.faults.protection_builder.build_protection`): Ranger's bounds on
        ``ranger_examples`` of them, FT-ClipAct's thresholds on ``clipact_examples`` under bit flips at the
        informative window's rates, with fault maps that score no model."""
        name = self.scale.protection(variant)
        if name not in ("ranger", "ft-clipact"):
            return name
        mid = self.scale.model_id(variant, seed)
        if mid not in self._built_protections:
            model, _ = self.model(variant, seed)
            data = self.data()
            self._built_protections[mid] = build_protection(
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
        return self._built_protections[mid]

    def campaign(self, variant: str, seed: int, fault_model: str) -> None:
        """Run (or resume) the scale's campaign for one model and fault model into campaign.csv."""
        model, _ = self.model(variant, seed)
        x, y = self.eval_set(seed)
        mid = self.scale.model_id(variant, seed)
        if (mid, fault_model) in self._campaigns_done or self._campaign_recorded(variant, seed, fault_model):
            return
        t0 = time.perf_counter()
        self.begin()
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
            out=table_file(self.dir, "campaign"),
            progress=self.progress,
            extra={"variant": variant, "train_seed": seed, "run_id": self.run_id},
            protection=self.protection(variant, seed),
        )
        self.folder.changed("campaign")
        self._campaigns_done.add((mid, fault_model))
        self.stages.step("campaigns", f"{mid} {fault_model}", resumed=not df.attrs.get("computed_rows"))
        if df.attrs.get("computed_rows"):
            self.computed = True
            self.timings[f"campaign/{mid}/{fault_model}"] = time.perf_counter() - t0

    def _campaign_recorded(self, variant: str, seed: int, fault_model: str) -> bool:
        """Whether campaign.csv holds every row of this campaign (then marked done). Checked on the table in
        memory, before a data-fitted protection (FT-ClipAct's search) is built: a resumed run walks a large
        folder without re-reading the file or rebuilding protections."""
        model, _ = self.model(variant, seed)
        x, y = self.eval_set(seed)
        mid = self.scale.model_id(variant, seed)
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
        self._campaigns_done.add((mid, fault_model))
        self.stages.step("campaigns", f"{mid} {fault_model}", resumed=True)
        return True

    def _sharpness_recorded(self, mid: str) -> bool:
        recorded = self.folder.table("sharpness")
        if not len(recorded):
            return False
        mine = (recorded["model_id"] == mid) & (recorded["fingerprint"] == self._fingerprints[mid])
        return set(self.scale.sharpness_metrics) <= set(recorded.loc[mine, "metric"])

    def sharpness(self, variant: str, seed: int) -> None:
        """Measure the scale's sharpness metrics (and 1-D landscape) for one model, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.model(variant, seed)
        if self._sharpness_recorded(mid):
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
        self._record_sharpness(Unit("sharpness", variant, seed), rows, land, time.perf_counter() - t0)

    def _record_sharpness(self, unit: Unit, rows: pd.DataFrame, land: pd.DataFrame, seconds: float) -> None:
        mid = self.scale.model_id(unit.variant, unit.seed)
        for m, sec in zip(rows["metric"], rows["seconds"], strict=True):
            self.timings[f"sharpness/{mid}/{m}"] = float(sec)
        self.timings[f"sharpness/{mid}"] = seconds
        self.stages.step("sharpness", mid, f"{seconds:.0f}s")
        tags = {
            "variant": unit.variant,
            "train_seed": unit.seed,
            "fingerprint": self._fingerprints[mid],
            "run_id": self.run_id,
        }
        self.computed = True
        self.begin()
        self.folder.merge("sharpness", rows.assign(**tags))
        if len(land):
            self.folder.merge("landscape", land.assign(**tags))

    def sparsity(self, variant: str, seed: int) -> None:
        """Per-layer activation sparsity of one model on the evaluation set, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.model(variant, seed)
        if self.folder.has_rows("sparsity", mid, self._fingerprints[mid]):
            self.stages.step("sparsity", mid, resumed=True)
            return
        x, _ = self.eval_set(seed)
        self._record_sparsity(
            Unit("sparsity", variant, seed), measure_sparsity(model, x.to(self.device), self.scale.eval_batch_size)
        )

    def _record_sparsity(self, unit: Unit, df: pd.DataFrame) -> None:
        mid = self.scale.model_id(unit.variant, unit.seed)
        self.computed = True
        tags = {
            "model_id": mid,
            "variant": unit.variant,
            "train_seed": unit.seed,
            "fingerprint": self._fingerprints[mid],
            "run_id": self.run_id,
        }
        self.begin()
        self.folder.merge("sparsity", df.assign(**tags))
        self.stages.step("sparsity", mid)

    # ---- units as tasks (for executors that run them elsewhere; see flatenn.repro.tasks) ---------
    @property
    def threads(self) -> int | None:
        return self._threads

    def _failed(self, unit: Unit) -> bool:
        cfg = self.scale.train_config(unit.variant, unit.seed)
        return cfg.key() in self._failed_training or (
            cfg.parent is not None and cfg.parent.key() in self._failed_training
        )

    def model_ready(self, unit: Unit) -> bool:
        """Whether the unit's model exists (its training did not fail on the cluster)."""
        return not self._failed(unit)

    def _needs_training(self, cfg) -> bool:
        if self.local_models.has(cfg) and (not self.retrain or self._trained_here(cfg)):
            return False
        if not self.retrain and self.shipped.cache_dir != self.local_models.cache_dir and self.shipped.has(cfg):
            return False
        return not self.zoo.has(cfg)

    def training_waves(self, model_units: list[Unit]) -> list[list]:
        """The configs that must be trained, in waves: a fine-tuned model's parent in an earlier wave."""
        waves: list[dict] = [{}, {}]
        for u in model_units:
            cfg = self.scale.train_config(u.variant, u.seed)
            if not self._needs_training(cfg):
                continue
            if cfg.parent is not None and not self.zoo.has(cfg.parent):
                waves[0][cfg.parent.key()] = cfg.parent
                waves[1][cfg.key()] = cfg
            else:
                waves[0][cfg.key()] = cfg
        return [list(w.values()) for w in waves if w]

    def train_task(self, cfg) -> Task:
        parent = None
        if cfg.parent is not None:
            pm, _ = self.zoo.get(cfg.parent)
            parent = {k: v.detach().cpu().clone() for k, v in pm.state_dict().items()}
        return Task("train", cfg.key(), cfg, threads=self._threads, device=str(self.device), state=parent)

    def failed_training(self, cfg) -> bool:
        return cfg.key() in self._failed_training

    def training_failed(self, cfg) -> None:
        """A model could not be trained elsewhere: its units (and its fine-tuned children's) are skipped."""
        self._failed_training.add(cfg.key())

    def adopt_trained(self, cfg, result: TaskResult) -> None:
        """Store a model trained elsewhere in the zoo (the driver writes the cache); it counts as trained here."""
        from ..core.data import dataset_shape
        from ..core.train import build_for

        model = build_for(cfg, dataset_shape(cfg.dataset), threshold=result.record.threshold)
        model.load_state_dict(result.state)
        self.zoo.store(cfg, model, result.record)
        self._trained_elsewhere.add(cfg.key())

    def task(self, unit: Unit) -> Task | None:
        """The measurement unit as a self-contained task (None when its rows are recorded already)."""
        mid = self.scale.model_id(unit.variant, unit.seed)
        model, record = self.model(unit.variant, unit.seed)
        s = self.scale
        if unit.kind == "campaigns":
            if (mid, unit.fault_model) in self._campaigns_done or self._campaign_recorded(
                unit.variant, unit.seed, unit.fault_model
            ):
                return None
            camp = self.folder.table("campaign")
            mine = camp[(camp["model_id"] == mid) & (camp["fault_model"] == unit.fault_model)] if len(camp) else None
            kind, inputs = "campaign", self.eval_set(unit.seed)
            options = {
                "fault_model": unit.fault_model,
                "rates": s.rates,
                "trials": s.trials,
                "seed": s.map_seed(unit.seed),
                "model_id": mid,
                "batch_size": s.eval_batch_size,
                "extra": {"variant": unit.variant, "train_seed": unit.seed, "run_id": self.run_id},
                "recorded": mine,
                "protection": self.protection(unit.variant, unit.seed),
            }
        elif unit.kind == "sharpness":
            if self._sharpness_recorded(mid):
                return None
            kind, inputs = "sharpness", self.sharpness_set(unit.seed)
            options = {
                "metrics": s.sharpness_metrics,
                "model_id": mid,
                "seed": s.sharpness_seed_for(unit.seed),
                "batch_size": s.eval_batch_size,
                "measure": measure_options(s),
            }
        elif unit.kind == "sparsity":
            if self.folder.has_rows("sparsity", mid, self._fingerprints[mid]):
                return None
            kind, inputs, options = "sparsity", self.eval_set(unit.seed), {"batch_size": s.eval_batch_size}
        else:
            raise ValueError(f"no task for unit kind {unit.kind!r}")
        # the model's weights are copied only for a unit that still has rows to compute
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return Task(
            kind,
            unit.label(s),
            s.train_config(unit.variant, unit.seed),
            threads=self._threads,
            device=str(self.device),
            state=state,
            threshold=record.threshold,
            fingerprint=self._fingerprints[mid],
            inputs=inputs,
            options=options,
        )

    def record(self, unit: Unit, result: TaskResult) -> None:
        """Merge a task's rows into the results folder (the driver is the only writer)."""
        if unit.kind == "sharpness":
            self._record_sharpness(unit, result.rows, result.landscape, result.seconds)
        elif unit.kind == "sparsity":
            self._record_sparsity(unit, result.rows)
        elif unit.kind == "campaigns":
            mid = self.scale.model_id(unit.variant, unit.seed)
            if len(result.rows):
                from ..core.results import write_schema_table

                self.begin()
                write_schema_table(
                    pd.concat([self.folder.table("campaign"), result.rows], ignore_index=True),
                    table_file(self.dir, "campaign"),
                    "campaign",
                )
                self.folder.changed("campaign")
                self.computed = True
                self.timings[f"campaign/{mid}/{unit.fault_model}"] = result.seconds
            self._campaigns_done.add((mid, unit.fault_model))
            self.stages.step("campaigns", f"{mid} {unit.fault_model}", resumed=not len(result.rows))
        else:
            raise ValueError(f"no record for unit kind {unit.kind!r}")
        self._done.add(unit)

    def run_unit(self, unit: Unit) -> None:
        """Compute (or resume) one work unit of :mod:`flatenn.repro.plan`, at most once per run."""
        if unit in self._done:
            return
        if unit.kind == "models":
            self.model(unit.variant, unit.seed)
        elif unit.kind == "campaigns":
            self.campaign(unit.variant, unit.seed, unit.fault_model)
        elif unit.kind == "sharpness":
            self.sharpness(unit.variant, unit.seed)
        elif unit.kind == "sparsity":
            self.sparsity(unit.variant, unit.seed)
        else:
            raise ValueError(f"unknown unit kind {unit.kind!r}")
        self._done.add(unit)

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

    # ---- tables -----------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every recorded raw table of this scale (empty frames where none yet)."""
        return self.folder.tables()

    def write_summary(self) -> None:
        """campaign_summary.csv from campaign.csv."""
        camp = self.tables()["campaign"]
        if len(camp):
            write_table(campaign_summary(camp), self.dir / "campaign_summary.csv", SUMMARY_COLUMNS, sort=SUMMARY_KEY)

    def prune_models(self) -> None:
        """Delete model files of the folder that no row of training.csv refers to (replaced models)."""
        self.folder.prune_models()

    def _run_entry(self, status: str) -> dict:
        """This run's provenance entry: git state, command, versions, device, timings, status."""
        import flatenn

        return {
            "run_id": self.run_id,
            "git": self.git,
            "command": self.command,
            "status": status,
            "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "flatenn": getattr(flatenn, "__version__", "unknown"),
            },
            "device": {
                "type": self.device.type,
                "name": torch.cuda.get_device_name(self.device)
                if self.device.type == "cuda"
                else platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
            },
            "timings_s": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }

    def begin(self) -> None:
        """List this run in provenance.json (status ``running``) before it writes its first row.

        So a run killed at any point is still listed (with its git state, versions and device) beside the
        rows it wrote; the run that finishes the folder marks it ``interrupted``.
        """
        if self._begun:
            return
        self._begun = True
        self.write_provenance(status="running", keep_unused=True)

    def provenance_current(self) -> bool:
        """Whether provenance.json lists every run named in the tables, no unfinished run, and today's checksums."""
        return self.folder.provenance_current(self.run_id)

    def write_provenance(self, status: str = "finished", keep_unused: bool = False, derived: bool = False) -> None:
        """provenance.json with this run's entry (see :meth:`ResultsFolder.write_provenance`)."""
        self.folder.write_provenance(self._run_entry(status), self.scale, keep_unused, derived)

    # ---- claims -----------------------------------------------------------------------------
    def run(self, units) -> None:
        """Compute the given work units through the experiment's executor (only this driver writes)."""
        self.executor.run([u for u in units if u not in self._done], self)

    @property
    def sequential(self) -> bool:
        return is_sequential(self.scale)

    def reference_tables(self) -> dict[str, pd.DataFrame]:
        """The reference folder's raw tables (read once; empty frames where it has none)."""
        if not hasattr(self, "_reference_tables"):
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

    def limit_to(self, claim_ids: set[str]) -> None:
        """Plan (and count in the progress lines) only the units these claims need: a ``-k`` selection."""
        units: dict[Unit, None] = {}
        for cid in sorted(claim_ids):
            for u in self.reproduce_units(cid) if self.sequential else claim_units(self.scale, cid):
                units.setdefault(u, None)
        self.units = list(units)
        self.stages.totals = totals(self.units)

    def progress_counts(self) -> tuple[int, int]:
        """(units finished, units planned) of this run."""
        return sum(u in self._done for u in self.units), len(self.units)

    def ensure_for(self, claim_id: str) -> None:
        """Compute everything one claim needs at this scale (and nothing else)."""
        if self.sequential:
            self.run(self.reproduce_units(claim_id))
        else:
            self.run(claim_units(self.scale, claim_id))

    def ensure_all(self) -> None:
        """Everything every claim of the scale needs (a plan-v2 scale: look by look, see :meth:`run_looks`)."""
        if is_sequential(self.scale):
            self.run_looks()
        else:
            self.run(self.units)

    def run_looks(self) -> None:
        """Record a plan-v2 scale block by block: after each complete block the open primary cases are tested
        (flatenn.repro.decide.sequential) and the next block trains only what the still-open claims need,
        until every primary case is decided or the cap is reached. Resumes from whatever is recorded."""
        from .decide import PLAN, sequential

        looks = PLAN.scales[self.scale.name].looks
        while True:
            state = sequential(self.tables(), self.scale)
            self.units = sequential_units(self.scale, self.tables())
            self.stages.totals = totals(self.units)
            todo = [u for u in self.units if u not in self._done]
            if state.next_look < len(looks):
                self.stages.prefix = f"[{self.scale.name} look {state.next_look + 1}/{len(looks)}]"
                from ..core.progress import emit

                emit(
                    f"[{self.scale.name}] look {state.next_look + 1} of {len(looks)}: seeds up to {looks[state.next_look]}"
                    f", open primary cases: {', '.join(state.open) or 'none'}"
                )
            if not todo:
                return
            self.run(todo)

    def finish(self, interrupted: bool = False) -> None:
        """Write the derived tables, claims and provenance of what this run computed.

        Also when this run computed nothing but the folder's provenance is not current (an earlier run was
        killed after writing rows or claims but before its provenance): the folder is completed either way.
        ``interrupted``: the run stopped early (Ctrl-C); its finished rows stay, it is listed as ``interrupted``,
        and nothing is derived from the partial tables (the run that completes the folder derives them).
        """
        if interrupted:
            if self._begun:
                self.write_provenance(status="interrupted", keep_unused=True)
            return
        current = self.provenance_current()
        if self.computed or not current:
            if (self.dir / "training.csv").is_file():
                self.write_summary()
                self.record_claims()
                self.prune_models()
            self.write_provenance(derived=True)
        elif self._begun:
            self.write_provenance()  # drops this run's entry again if it wrote no row

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
        if is_sequential(self.scale) and self.all_seeds:
            self.record_verdicts()
        return claims

    def record_verdicts(self) -> pd.DataFrame:
        """Plan v2: (re)write verdicts.csv (every case) and sequential.csv (every look of every primary case)."""
        from .decide import SEQUENTIAL_COLUMNS, VERDICT_COLUMNS, evaluate_v2

        verdicts, seq = evaluate_v2(self.tables(), self.scale)
        write_table(verdicts, self.dir / "verdicts.csv", VERDICT_COLUMNS)
        write_table(seq, self.dir / "sequential.csv", SEQUENTIAL_COLUMNS, sort=["look", "case"])
        self.folder.changed("verdicts")
        self.folder.changed("sequential")
        return verdicts


def campaign_summary(camp: pd.DataFrame) -> pd.DataFrame:
    """campaign_summary.csv's rows from campaign rows (also used by verify to re-derive the file)."""
    from ..analysis.stats import summarize_campaign

    summ = summarize_campaign(camp)
    tags = camp.drop_duplicates("model_id").set_index("model_id")[["variant", "train_seed", "fingerprint"]]
    return summ.join(tags, on="model_id")[SUMMARY_COLUMNS]
