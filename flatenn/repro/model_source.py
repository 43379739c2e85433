"""Where a run's models come from: the results folder's own ``models/``, the shipped models of the reference
folder, or the zoo cache (which trains on a miss), and which models an executor must train elsewhere, in waves.

The folder's models are what was measured there; the shipped models (``results/<scale>/models``, the tracked
runs' models) make a reproduction re-measure exactly the recorded models on any machine; ``retrain`` skips
them. Every model used is stored in the folder's ``models/`` and listed in ``training.csv``, and rows of the
same model id measured on another model (another fingerprint) are dropped, to be measured again.
"""

from __future__ import annotations

import time

import pandas as pd

from ..core.fingerprint import model_fingerprint
from ..core.progress import Stages
from ..core.zoo import Zoo
from .folder import ResultsFolder
from .plan import Unit
from .run_record import RunRecord
from .tasks import Task, TaskResult


class ModelSource:
    """The models of one run, each obtained once; see the module docstring."""

    def __init__(
        self,
        scale,
        folder: ResultsFolder,
        zoo: Zoo,
        shipped: Zoo,
        run: RunRecord,
        stages: Stages,
        retrain: bool,
        device,
        progress: bool,
    ) -> None:
        self.scale, self.folder, self.zoo, self.shipped, self.run, self.stages = (
            scale,
            folder,
            zoo,
            shipped,
            run,
            stages,
        )
        self.retrain, self.device = retrain, device
        self.local = Zoo(folder.path / "models", device=str(device), progress=progress)
        self.fingerprints: dict[str, str] = {}
        self._models: dict[str, tuple] = {}
        self._trained_elsewhere: set[str] = set()  # keys of models an executor trained off this process
        self._failed: set[str] = set()  # keys of models whose training failed elsewhere

    def _obtain(self, cfg) -> tuple[object, object, str]:
        """(model, record, source) from the folder's models, the shipped models, or the zoo."""
        candidates = [(self.local, "folder")]
        if not self.retrain and self.shipped.cache_dir != self.local.cache_dir:
            candidates.append((self.shipped, "shipped"))
        for zoo, source in candidates:
            loaded = zoo.load(cfg)
            # with --retrain a model already in the folder counts only if this folder trained it
            if loaded is not None and (not self.retrain or source == "shipped" or self._trained_here(cfg)):
                return (*loaded, source)
        trained_before = self.zoo.has(cfg) and cfg.key() not in self._trained_elsewhere
        model, record = self.zoo.get(cfg)
        self.run.computed = True
        return model, record, "cache" if trained_before else "trained"

    def _trained_here(self, cfg) -> bool:
        """With --retrain, a model in the folder counts only if this folder's training.csv says it was trained."""
        t = self.folder.table("training")
        return len(t) > 0 and bool(((t["key"] == cfg.key()) & t["source"].isin(["trained", "cache"])).any())

    def model(self, variant: str, seed: int):
        """(model, record) of a variant and training seed, obtained once per run and listed in training.csv."""
        mid = self.scale.model_id(variant, seed)
        if mid not in self._models:
            cfg = self.scale.train_config(variant, seed)
            t0 = time.perf_counter()
            model, record, source = self._obtain(cfg)
            if source == "trained":
                self.run.timings[f"train/{mid}"] = record.wall_time_s
            self.run.timings.setdefault(f"load/{mid}", time.perf_counter() - t0)
            if source != "folder":
                self.run.begin()
                self.local.store(cfg, model, record)
            self.stages.step(
                "models", mid, f"{source}, clean accuracy {record.clean_accuracy:.2f}%", resumed=source != "trained"
            )
            fp = model_fingerprint(model)
            self._models[mid] = (model, record)
            self.fingerprints[mid] = fp
            self.folder.drop_model_rows(mid, fp)
            if not self.folder.has_rows("training", mid, fp):
                self.run.begin()
                self.folder.merge(
                    "training", pd.DataFrame([self._training_row(mid, variant, seed, cfg, record, fp, source)])
                )
        return self._models[mid]

    def _training_row(self, mid: str, variant: str, seed: int, cfg, record, fp: str, source: str) -> dict:
        return {
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
            "run_id": self.run.run_id,
        }

    # ---- training elsewhere (an executor's training waves) --------------------------------------
    def model_ready(self, unit: Unit) -> bool:
        """Whether the unit's model exists (its training, or its parent's, did not fail elsewhere)."""
        cfg = self.scale.train_config(unit.variant, unit.seed)
        return not (cfg.key() in self._failed or (cfg.parent is not None and cfg.parent.key() in self._failed))

    def _needs_training(self, cfg) -> bool:
        if self.local.has(cfg) and (not self.retrain or self._trained_here(cfg)):
            return False
        if not self.retrain and self.shipped.cache_dir != self.local.cache_dir and self.shipped.has(cfg):
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

    def train_task(self, cfg, threads: int | None) -> Task:
        parent = None
        if cfg.parent is not None:
            pm, _ = self.zoo.get(cfg.parent)
            parent = {k: v.detach().cpu().clone() for k, v in pm.state_dict().items()}
        return Task("train", cfg.key(), cfg, threads=threads, device=str(self.device), state=parent)

    def failed_training(self, cfg) -> bool:
        return cfg.key() in self._failed

    def training_failed(self, cfg) -> None:
        """A model could not be trained elsewhere: its units (and its fine-tuned children's) are skipped."""
        self._failed.add(cfg.key())

    def adopt_trained(self, cfg, result: TaskResult) -> None:
        """Store a model trained elsewhere in the zoo (the driver writes the cache); it counts as trained here."""
        from ..core.data import dataset_shape
        from ..core.train import build_for

        model = build_for(cfg, dataset_shape(cfg.dataset), threshold=result.record.threshold)
        model.load_state_dict(result.state)
        self.zoo.store(cfg, model, result.record)
        self._trained_elsewhere.add(cfg.key())
