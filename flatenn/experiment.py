"""Runs what a scale's claims need — trainings, campaigns, sharpness, sparsity — and records it.

Every product is written under ``results/<scale>/`` as soon as it exists and is reused on the next
run (resume): trained models live in the zoo cache; campaign rows, sharpness rows and sparsity rows
are merged into their CSVs keyed by model id. Only what a caller asks for is computed, so
``pytest benchmarks -k saq`` trains just the models the SAQ claims need.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .activations import measure_sparsity
from .campaign import run_campaign
from .data import DataSplit
from .determinism import deterministic_kernels, resolve_device
from .results import read_result, read_results, read_table, write_table
from .scales import ScaleConfig
from .sharpness import measure
from .zoo import Zoo

TRAINING_COLUMNS = ["model_id", "variant", "seed", "key", "dataset", "model", "width", "activation",
                    "threshold", "optimizer", "rho", "epochs", "clean_accuracy", "clean_loss", "sparsity"]  # fmt: skip
SHARPNESS_COLUMNS = ["model_id", "variant", "train_seed", "metric", "value", "stderr", "iterations",
                     "n_examples", "seed"]  # fmt: skip
SPARSITY_COLUMNS = ["model_id", "variant", "train_seed", "layer", "zeros", "total", "sparsity"]
LANDSCAPE_COLUMNS = ["model_id", "variant", "train_seed", "alpha", "loss", "accuracy"]


def _merge(path: Path, new: pd.DataFrame, key: list[str], columns: list[str]) -> pd.DataFrame:
    """Merge rows into a CSV (new rows replace old ones with the same key) and write it."""
    if path.is_file():
        old = read_table(path)
        new = pd.concat([old, new], ignore_index=True).drop_duplicates(key, keep="last")
    write_table(new, path, columns, sort=key)
    return new


def git_state(root: Path | None = None) -> dict:
    """Git commit and dirty flag of the working tree (``unknown`` outside git)."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "flatenn", "benchmarks"], cwd=root,
                               capture_output=True, text=True, check=True)  # fmt: skip
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


class Experiment:
    """One scale's experiment, backed by a results folder and a model zoo."""

    def __init__(self, scale: ScaleConfig, results_dir: str | Path, zoo: Zoo | None = None,
                 device: str | None = None, progress: bool = True) -> None:  # fmt: skip
        self.scale = scale
        self.dir = Path(results_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(device or scale.device)
        self.zoo = zoo or Zoo(device=str(self.device), progress=progress)
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.git = git_state()  # at start: the code that runs is the code recorded
        deterministic_kernels()  # also when every model comes from the cache
        self._models: dict[str, tuple] = {}
        self._campaigns_done: set[tuple[str, str]] = set()
        if scale.torch_threads and self.device.type == "cpu":
            torch.set_num_threads(scale.torch_threads)

    # ---- data -------------------------------------------------------------------------------
    def data(self) -> DataSplit:
        return self.zoo.data_for(self.scale.train_config("standard-sgd", self.scale.seeds[0]))

    def eval_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data()
        n = self.scale.eval_examples or len(d.x_test)
        return d.x_test[:n], d.y_test[:n]

    def sharpness_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data()
        g = np.random.default_rng(self.scale.sharpness_seed)
        idx = np.sort(g.permutation(len(d.x_train))[: self.scale.sharpness_examples])
        return d.x_train[idx], d.y_train[idx]

    # ---- models -----------------------------------------------------------------------------
    def model(self, variant: str, seed: int):
        """(model, record) for a variant and training seed; trains through the zoo on a miss."""
        mid = self.scale.model_id(variant, seed)
        if mid not in self._models:
            cfg = self.scale.train_config(variant, seed)
            t0 = time.perf_counter()
            trained_before = self.zoo.has(cfg)
            model, record = self.zoo.get(cfg)
            if not trained_before:
                self.timings[f"train/{mid}"] = record.wall_time_s
            self.timings.setdefault(f"load/{mid}", time.perf_counter() - t0)
            self._models[mid] = (model, record)
            row = {"model_id": mid, "variant": variant, "seed": seed, "key": cfg.key(), "dataset": cfg.dataset,
                   "model": cfg.model, "width": cfg.width, "activation": cfg.activation,
                   "threshold": record.threshold, "optimizer": cfg.optimizer, "rho": cfg.rho, "epochs": cfg.epochs,
                   "clean_accuracy": record.clean_accuracy, "clean_loss": record.clean_loss,
                   "sparsity": record.sparsity}  # fmt: skip
            _merge(self.dir / "training.csv", pd.DataFrame([row]), ["model_id"], TRAINING_COLUMNS)
        return self._models[mid]

    # ---- measurements -----------------------------------------------------------------------
    def campaign(self, variant: str, seed: int, fault_model: str) -> None:
        """Run (or resume) the scale's campaign for one model and fault model into campaign.csv."""
        model, _ = self.model(variant, seed)
        x, y = self.eval_set()
        mid = self.scale.model_id(variant, seed)
        if (mid, fault_model) in self._campaigns_done:
            return
        t0 = time.perf_counter()
        df = run_campaign(model, x, y, fault_model, rates=self.scale.rates, trials=self.scale.trials,
                     seed=self.scale.campaign_seed, model_id=mid, batch_size=self.scale.eval_batch_size,
                     out=self.dir / "campaign.csv", progress=self.progress,
                     extra={"variant": variant, "train_seed": seed})  # fmt: skip
        self._campaigns_done.add((mid, fault_model))
        if df.attrs.get("computed_rows"):
            self.timings[f"campaign/{mid}/{fault_model}"] = time.perf_counter() - t0

    def _has_rows(self, name: str, mid: str, col: str = "model_id") -> bool:
        p = self.dir / name
        return p.is_file() and (read_table(p)[col] == mid).any()

    def sharpness(self, variant: str, seed: int) -> None:
        """Measure the scale's sharpness metrics (and 1-D landscape) for one model, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        recorded = read_result(self.dir, "sharpness")
        if len(recorded):
            have = set(recorded.loc[recorded["model_id"] == mid, "metric"])
            if set(self.scale.sharpness_metrics) <= have:
                return
        model, _ = self.model(variant, seed)
        x, y = self.sharpness_set()
        s = self.scale
        t0 = time.perf_counter()
        rows, land = measure(model, x, y, s.sharpness_metrics, model_id=mid, seed=s.sharpness_seed,
                             batch_size=s.eval_batch_size,
                             options={"probes": s.sharpness_probes, "directions": s.sharpness_directions,
                                      "sigma": s.sharpness_sigma, "rate": s.sensitivity_rate,
                                      "fault_model": "bitflip"})  # fmt: skip
        for m, sec in zip(rows["metric"], rows["seconds"], strict=True):
            self.timings[f"sharpness/{mid}/{m}"] = float(sec)
        self.timings[f"sharpness/{mid}"] = time.perf_counter() - t0
        rows = rows.assign(variant=variant, train_seed=seed)
        _merge(self.dir / "sharpness.csv", rows, ["model_id", "metric"], SHARPNESS_COLUMNS)
        if len(land):
            _merge(self.dir / "landscape.csv", land.assign(variant=variant, train_seed=seed),
                   ["model_id", "alpha"], LANDSCAPE_COLUMNS)  # fmt: skip

    def sparsity(self, variant: str, seed: int) -> None:
        """Per-layer activation sparsity of one model on the evaluation set, unless recorded."""
        mid = self.scale.model_id(variant, seed)
        if self._has_rows("sparsity.csv", mid):
            return
        model, _ = self.model(variant, seed)
        x, _ = self.eval_set()
        df = measure_sparsity(model, x.to(self.device), self.scale.eval_batch_size)
        _merge(self.dir / "sparsity.csv", df.assign(model_id=mid, variant=variant, train_seed=seed),
               ["model_id", "layer"], SPARSITY_COLUMNS)  # fmt: skip

    def ensure(self, variants: tuple[str, ...], campaign: tuple[str, ...] = (), sharpness: bool = False,
               sparsity: bool = False) -> None:  # fmt: skip
        """Compute whatever of the requested products is missing, for every seed of the scale."""
        for v in variants:
            for s in self.scale.seeds:
                self.model(v, s)
                for fm in campaign:
                    self.campaign(v, s, fm)
                if sharpness:
                    self.sharpness(v, s)
                if sparsity:
                    self.sparsity(v, s)

    # ---- tables -----------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every recorded table of this scale (empty frames where none yet)."""
        return read_results(self.dir)

    def write_summary(self) -> None:
        """campaign_summary.csv from campaign.csv."""
        from .stats import summarize_campaign

        camp = self.tables()["campaign"]
        if len(camp):
            summ = summarize_campaign(camp)
            variants = camp.drop_duplicates("model_id").set_index("model_id")[["variant", "train_seed"]]
            summ = summ.join(variants, on="model_id")
            cols = ["model_id", "variant", "train_seed", "fault_model", "bits", "rate", "count", "trials",
                    "accuracy_mean", "accuracy_sd", "accuracy_ci_low", "accuracy_ci_high", "loss_mean",
                    "faulty_bits_mean", "clean_accuracy"]  # fmt: skip
            write_table(summ, self.dir / "campaign_summary.csv", cols,
                        sort=["model_id", "fault_model", "bits", "rate", "count"])  # fmt: skip

    def write_provenance(self) -> None:
        """provenance.json: git state, versions, device, seeds, scale config and model config hashes."""
        training = self.tables()["training"]
        old = {}
        path = self.dir / "provenance.json"
        if path.is_file():
            try:
                old = json.loads(path.read_text())
            except ValueError:
                old = {}
        timings = {**old.get("timings_s", {}), **{k: round(v, 3) for k, v in self.timings.items()}}
        import dataclasses

        import flatenn

        prov = {
            "scale": self.scale.name,
            "git": self.git,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__, "pandas": pd.__version__,
                         "flatenn": getattr(flatenn, "__version__", "unknown")},
            "device": {"type": self.device.type, "name": torch.cuda.get_device_name(self.device)
                       if self.device.type == "cuda" else platform.processor() or platform.machine(),
                       "torch_threads": torch.get_num_threads()},
            "command": f"nox -s reproduce -- --scale {self.scale.name}",
            "scale_config": json.loads(json.dumps(dataclasses.asdict(self.scale), default=list)),
            "models": {r.model_id: r.key for r in training.itertuples()} if len(training) else {},
            "timings_s": dict(sorted(timings.items())),
            "note": "timings are wall-clock seconds of the run(s) that produced the files; they are not asserted",
        }  # fmt: skip
        path.write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")

    # ---- claims -----------------------------------------------------------------------------
    def ensure_for(self, claim_id: str) -> None:
        """Compute everything one claim needs at this scale (and nothing else)."""
        from .claims import CLAIMS

        c = CLAIMS[claim_id]
        s = self.scale
        if c.variants:
            self.ensure(c.variants, campaign=s.fault_models if c.campaign else (), sharpness=c.sharpness,
                        sparsity=c.sparsity)  # fmt: skip
        if c.sweep:
            self.ensure(tuple(s.sweep_variants()), campaign=(s.sweep_fault_model,), sparsity=True)

    def record_claims(self, case_ids: list[str] | None = None) -> pd.DataFrame:
        """Evaluate cases from the recorded tables and merge them into claims.csv / claims_detail.csv."""
        from .claims import CLAIM_COLUMNS, DETAIL_COLUMNS, evaluate_all

        claims, detail = evaluate_all(self.tables(), self.scale, only=case_ids)
        _merge(self.dir / "claims.csv", claims, ["case"], CLAIM_COLUMNS)
        if len(detail):
            _merge(self.dir / "claims_detail.csv", detail, ["claim", "metric", "fault_model", "rate"], DETAIL_COLUMNS)
        return claims
