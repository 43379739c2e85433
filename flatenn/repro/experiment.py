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
import json
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
from ..core.locks import FolderLock, clean_stale_temp_files
from ..core.progress import Stages
from ..core.results import (
    KEYED_TABLES,
    SUMMARY_COLUMNS,
    SUMMARY_KEY,
    read_result,
    read_results,
    read_table,
    write_table,
)
from ..core.zoo import Zoo
from ..faults.campaign import run_campaign
from .integrity import measure_options
from .plan import Unit, claim_units, plan, totals
from .scales import ScaleConfig

MEASURED_TABLES = ("campaign", "sharpness", "sparsity", "landscape")
REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "results"


def _merge(folder: Path, table: str, new: pd.DataFrame) -> pd.DataFrame:
    """Merge rows into ``<folder>/<table>.csv`` (new rows replace old ones with the same key) and write it."""
    columns, key = KEYED_TABLES[table]
    path = folder / f"{table}.csv"
    if path.is_file():
        old = read_table(path)
        new = pd.concat([old, new], ignore_index=True).drop_duplicates(key, keep="last")
    write_table(new, path, columns, sort=key)
    return new


def eval_inputs(scale: ScaleConfig, data: DataSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The scale's evaluation set: the first ``eval_examples`` test examples (all when None)."""
    n = scale.eval_examples or len(data.x_test)
    return data.x_test[:n], data.y_test[:n]


def sharpness_inputs(scale: ScaleConfig, data: DataSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The scale's sharpness set: a seeded subset of the training data."""
    g = np.random.default_rng(scale.sharpness_seed)
    idx = np.sort(g.permutation(len(data.x_train))[: scale.sharpness_examples])
    return data.x_train[idx], data.y_train[idx]


def git_state(root: Path | None = None) -> dict:
    """Git commit and dirty flag of the working tree (``unknown`` outside git)."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "flatenn", "benchmarks"], cwd=root,
                               capture_output=True, text=True, check=True)  # fmt: skip
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

    def __init__(self, scale: ScaleConfig, results_dir: str | Path, zoo: Zoo | None = None,
                 device: str | None = None, progress: bool = True, retrain: bool = False,
                 reference_dir: str | Path | None = None, command: str | None = None) -> None:  # fmt: skip
        self.scale = scale
        self.dir = Path(results_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the results folder {self.dir}: {e.strerror}") from None
        if not os.access(self.dir, os.W_OK):
            raise ValueError(f"results folder {self.dir} is not writable; choose another --results-dir")
        self.lock = FolderLock(self.dir)  # one writer per folder; released when the process ends
        clean_stale_temp_files(self.dir)
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
        threads = int(os.environ.get("FLATENN_THREADS", 0)) or scale.torch_threads
        # deterministic kernels (also when every model comes from the cache) and the scale's thread count
        # (recorded in provenance: results may depend on it) hold while the experiment is open; close() restores
        self._torch = torch_state(deterministic=True, threads=threads if self.device.type == "cpu" else None)
        self._torch.__enter__()
        self._models: dict[str, tuple] = {}
        self._fingerprints: dict[str, str] = {}
        self.units = plan(scale)  # everything the scale's claims need (progress totals)
        self.stages = Stages(f"[{scale.name}]", totals(self.units))
        self._done: set[Unit] = set()
        self._campaigns_done: set[tuple[str, str]] = set()

    def close(self) -> None:
        """Release the folder lock (also released when the process ends) and restore torch's global settings."""
        self.lock.release()
        self._torch.__exit__(None, None, None)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- data -------------------------------------------------------------------------------
    def data(self) -> DataSplit:
        return self.zoo.data_for(self.scale.train_config("standard-sgd", self.scale.seeds[0]))

    def eval_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return eval_inputs(self.scale, self.data())

    def sharpness_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return sharpness_inputs(self.scale, self.data())

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
        trained_before = self.zoo.has(cfg)
        model, record = self.zoo.get(cfg)
        self.computed = True
        return model, record, "cache" if trained_before else "trained"

    def _trained_here(self, cfg) -> bool:
        """With --retrain, a model in the folder counts only if this folder's training.csv says it was trained."""
        t = read_result(self.dir, "training")
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
            self.stages.step("models", mid, f"{source}, clean accuracy {record.clean_accuracy:.2f}%",
                             resumed=source != "trained")
            fp = model_fingerprint(model)
            self._models[mid] = (model, record)
            self._fingerprints[mid] = fp
            self._drop_stale_rows(mid, fp)
            row = {"model_id": mid, "variant": variant, "seed": seed, "key": cfg.key(), "fingerprint": fp,
                   "source": source, "dataset": cfg.dataset, "model": cfg.model, "width": cfg.width,
                   "activation": cfg.activation, "threshold": record.threshold, "optimizer": cfg.optimizer,
                   "rho": cfg.rho, "epochs": cfg.epochs, "clean_accuracy": record.clean_accuracy,
                   "clean_loss": record.clean_loss, "sparsity": record.sparsity, "run_id": self.run_id}  # fmt: skip
            old = read_result(self.dir, "training")
            same = len(old) and ((old["model_id"] == mid) & (old["fingerprint"] == fp)).any()
            if not same:
                self.begin()
                _merge(self.dir, "training", pd.DataFrame([row]))
        return self._models[mid]

    def _drop_stale_rows(self, mid: str, fingerprint: str) -> None:
        """Remove rows of ``mid`` measured on another model (another fingerprint) from every measured table."""
        for name in MEASURED_TABLES:
            path = self.dir / f"{name}.csv"
            if not path.is_file():
                continue
            t = read_result(self.dir, name)
            stale = (t["model_id"] == mid) & (t["fingerprint"] != fingerprint)
            if stale.any():
                print(f"{path}: {int(stale.sum())} rows of {mid} were measured on another model "
                      f"(fingerprint {t.loc[stale, 'fingerprint'].iloc[0]} != {fingerprint}); recomputing them",
                      file=sys.stderr)  # fmt: skip
                kept = t[~stale]
                if name == "campaign":
                    from ..core.results import write_schema_table

                    write_schema_table(kept, path, "campaign")
                else:
                    write_table(kept, path)

    # ---- measurements -----------------------------------------------------------------------
    def campaign(self, variant: str, seed: int, fault_model: str) -> None:
        """Run (or resume) the scale's campaign for one model and fault model into campaign.csv."""
        model, _ = self.model(variant, seed)
        x, y = self.eval_set()
        mid = self.scale.model_id(variant, seed)
        if (mid, fault_model) in self._campaigns_done:
            return
        t0 = time.perf_counter()
        self.begin()
        df = run_campaign(model, x, y, fault_model, rates=self.scale.rates, trials=self.scale.trials,
                          seed=self.scale.map_seed(seed), model_id=mid, batch_size=self.scale.eval_batch_size,
                          out=self.dir / "campaign.csv", progress=self.progress,
                          extra={"variant": variant, "train_seed": seed, "run_id": self.run_id})  # fmt: skip
        self._campaigns_done.add((mid, fault_model))
        self.stages.step("campaigns", f"{mid} {fault_model}", resumed=not df.attrs.get("computed_rows"))
        if df.attrs.get("computed_rows"):
            self.computed = True
            self.timings[f"campaign/{mid}/{fault_model}"] = time.perf_counter() - t0

    def _has_rows(self, name: str, mid: str) -> bool:
        t = read_result(self.dir, name)
        return len(t) > 0 and bool(((t["model_id"] == mid) & (t["fingerprint"] == self._fingerprints[mid])).any())

    def sharpness(self, variant: str, seed: int) -> None:
        """Measure the scale's sharpness metrics (and 1-D landscape) for one model, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.model(variant, seed)
        recorded = read_result(self.dir, "sharpness")
        if len(recorded):
            mine = (recorded["model_id"] == mid) & (recorded["fingerprint"] == self._fingerprints[mid])
            if set(self.scale.sharpness_metrics) <= set(recorded.loc[mine, "metric"]):
                self.stages.step("sharpness", mid, resumed=True)
                return
        x, y = self.sharpness_set()
        s = self.scale
        t0 = time.perf_counter()
        rows, land = measure(model, x, y, s.sharpness_metrics, model_id=mid, seed=s.sharpness_seed,
                             batch_size=s.eval_batch_size, options=measure_options(s))
        for m, sec in zip(rows["metric"], rows["seconds"], strict=True):
            self.timings[f"sharpness/{mid}/{m}"] = float(sec)
        self.timings[f"sharpness/{mid}"] = time.perf_counter() - t0
        self.stages.step("sharpness", mid, f"{time.perf_counter() - t0:.0f}s")
        tags = {"variant": variant, "train_seed": seed, "fingerprint": self._fingerprints[mid], "run_id": self.run_id}
        self.computed = True
        self.begin()
        _merge(self.dir, "sharpness", rows.assign(**tags))
        if len(land):
            _merge(self.dir, "landscape", land.assign(**tags))

    def sparsity(self, variant: str, seed: int) -> None:
        """Per-layer activation sparsity of one model on the evaluation set, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        model, _ = self.model(variant, seed)
        if self._has_rows("sparsity", mid):
            self.stages.step("sparsity", mid, resumed=True)
            return
        x, _ = self.eval_set()
        df = measure_sparsity(model, x.to(self.device), self.scale.eval_batch_size)
        self.computed = True
        tags = {"model_id": mid, "variant": variant, "train_seed": seed, "fingerprint": self._fingerprints[mid],
                "run_id": self.run_id}  # fmt: skip
        self.begin()
        _merge(self.dir, "sparsity", df.assign(**tags))
        self.stages.step("sparsity", mid)

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

    def ensure(self, variants: tuple[str, ...], campaign: tuple[str, ...] = (), sharpness: bool = False,
               sparsity: bool = False) -> None:  # fmt: skip
        """Compute whatever of the requested products is missing, for every seed of the scale."""
        for v in variants:
            for s in self.scale.seeds:
                self.run_unit(Unit("models", v, s))
                for fm in campaign:
                    self.run_unit(Unit("campaigns", v, s, fm))
                if sharpness:
                    self.run_unit(Unit("sharpness", v, s))
                if sparsity:
                    self.run_unit(Unit("sparsity", v, s))

    # ---- tables -----------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every recorded table of this scale (empty frames where none yet)."""
        return read_results(self.dir)

    def write_summary(self) -> None:
        """campaign_summary.csv from campaign.csv."""

        camp = self.tables()["campaign"]
        if len(camp):
            write_table(campaign_summary(camp), self.dir / "campaign_summary.csv", SUMMARY_COLUMNS,
                        sort=SUMMARY_KEY)  # fmt: skip

    def prune_models(self) -> None:
        """Delete model files of the folder that no row of training.csv refers to (replaced models)."""
        training = read_result(self.dir, "training")
        keep = set(training["key"]) if len(training) else set()
        for f in (self.dir / "models").glob("*"):
            if f.suffix in (".pt", ".json") and f.stem not in keep:
                f.unlink()

    def _run_entry(self, status: str) -> dict:
        """This run's provenance entry: git state, command, versions, device, timings, status."""
        import flatenn

        return {
            "run_id": self.run_id, "git": self.git, "command": self.command, "status": status,
            "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "pandas": pd.__version__, "flatenn": getattr(flatenn, "__version__", "unknown")},
            "device": {"type": self.device.type, "name": torch.cuda.get_device_name(self.device)
                       if self.device.type == "cuda" else platform.processor() or platform.machine(),
                       "torch_threads": torch.get_num_threads()},
            "timings_s": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }  # fmt: skip

    def _read_provenance(self) -> dict | None:
        path = self.dir / "provenance.json"
        try:
            prov = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return prov if isinstance(prov, dict) and isinstance(prov.get("runs"), list) else None

    def _used_runs(self, tables: dict[str, pd.DataFrame]) -> set[str]:
        used: set[str] = set()
        for t in tables.values():
            if len(t) and "run_id" in t.columns:
                used |= set(t["run_id"].astype(str))
        return used

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
        from ..core.results import table_checksums

        prov = self._read_provenance()
        sums = table_checksums(self.dir)
        if prov is None:
            return not sums
        listed = {r.get("run_id"): r for r in prov["runs"]}
        if not self._used_runs(self.tables()) <= set(listed):
            return False
        if any(r.get("status") == "running" for k, r in listed.items() if k != self.run_id):
            return False
        return prov.get("tables_sha256") == sums

    def write_provenance(self, status: str = "finished", keep_unused: bool = False) -> None:
        """provenance.json: every run that contributed rows, versions, device, scale config, models, checksums.

        A run listed as ``running`` that is not this one was killed before it finished: it becomes
        ``interrupted`` (its rows stay, it is still listed). ``keep_unused`` keeps runs that no row names yet.
        """
        import dataclasses

        from ..core.atomic import atomic_write_text
        from ..core.results import table_checksums

        old = self._read_provenance() or {}
        tables = self.tables()
        used = self._used_runs(tables)
        runs = {r["run_id"]: dict(r) for r in old.get("runs", []) if keep_unused or r.get("run_id") in used}
        for r in runs.values():
            if r.get("status") == "running":
                r["status"] = "interrupted"
        if keep_unused or self.run_id in used:
            runs[self.run_id] = self._run_entry(status)
        else:
            runs.pop(self.run_id, None)
        if not runs and not table_checksums(self.dir):
            (self.dir / "provenance.json").unlink(missing_ok=True)
            return
        training = tables["training"]
        prov = {
            "scale": self.scale.name,
            "runs": sorted(runs.values(), key=lambda r: r["run_id"]),
            "scale_config": json.loads(json.dumps(dataclasses.asdict(self.scale), default=list)),
            "models": {r.model_id: {"key": r.key, "fingerprint": r.fingerprint, "source": r.source}
                       for r in training.itertuples()} if len(training) else {},
            "tables_sha256": table_checksums(self.dir),
            "note": "each row of every table names the run that measured it (run_id); timings are wall-clock "
                    "seconds of that run and are not asserted; status 'interrupted': the run was killed and a "
                    "later run completed the folder",
        }  # fmt: skip
        atomic_write_text(self.dir / "provenance.json", json.dumps(prov, indent=1, sort_keys=True) + "\n")

    # ---- claims -----------------------------------------------------------------------------
    def ensure_for(self, claim_id: str) -> None:
        """Compute everything one claim needs at this scale (and nothing else)."""
        for u in claim_units(self.scale, claim_id):
            self.run_unit(u)

    def ensure_all(self) -> None:
        """Everything every claim of the scale needs."""
        for u in self.units:
            self.run_unit(u)

    def finish(self) -> None:
        """Write the derived tables, claims and provenance of what this run computed.

        Also when this run computed nothing but the folder's provenance is not current (an earlier run was
        killed after writing rows or claims but before its provenance): the folder is completed either way.
        """
        current = self.provenance_current()
        if self.computed or not current:
            if (self.dir / "training.csv").is_file():
                self.write_summary()
                self.record_claims()
                self.prune_models()
            self.write_provenance()
        elif self._begun:
            self.write_provenance()  # drops this run's entry again if it wrote no row

    def record_claims(self) -> pd.DataFrame:
        """Evaluate every case whose inputs are recorded; (re)write claims.csv and claims_detail.csv."""
        from .claims import CLAIM_COLUMNS, DETAIL_COLUMNS, evaluate_all

        claims, detail = evaluate_all(self.tables(), self.scale)
        write_table(claims, self.dir / "claims.csv", CLAIM_COLUMNS, sort=["case"])
        write_table(detail, self.dir / "claims_detail.csv", DETAIL_COLUMNS,
                    sort=["claim", "metric", "fault_model", "rate"])  # fmt: skip
        return claims


def campaign_summary(camp: pd.DataFrame) -> pd.DataFrame:
    """campaign_summary.csv's rows from campaign rows (also used by verify to re-derive the file)."""
    from ..analysis.stats import summarize_campaign

    summ = summarize_campaign(camp)
    tags = camp.drop_duplicates("model_id").set_index("model_id")[["variant", "train_seed", "fingerprint"]]
    return summ.join(tags, on="model_id")[SUMMARY_COLUMNS]
