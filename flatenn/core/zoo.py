"""Content-addressed cache of trained models: train once, load everywhere.

Each entry is ``<cache>/<key>.pt`` (state dict + record) and ``<key>.json`` (record and the
SHA-256 of the ``.pt`` file), both written atomically (temp file + ``os.replace``). The key is the
hash of the full :class:`~flatenn.core.train.TrainConfig` plus the training code version, so a changed
config or training path never reuses a stale model. An entry that fails to load, whose checksum
or key does not match, is reported with a warning and retrained — never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_write_bytes
from .data import DataSplit, dataset_shape, load_dataset
from .determinism import resolve_device
from .fingerprint import model_fingerprint
from .locks import exclusive
from .train import TrainConfig, TrainRecord, build_for, fit

FORMAT = 2  # 2: record checksum and model fingerprint


def default_cache_dir() -> Path:
    """$FLATENN_CACHE, else ~/.cache/flatenn/zoo."""
    return Path(os.environ.get("FLATENN_CACHE", "~/.cache/flatenn/zoo")).expanduser()


def _record_digest(record: dict | None, fingerprint: str | None) -> str:
    """Checksum of an entry's record and fingerprint (so a hand edit of either is detected)."""
    blob = json.dumps({"record": record, "fingerprint": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class CorruptEntryError(RuntimeError):
    """A cache entry exists but cannot be trusted."""


def _check_record_digest(meta: dict, where: str = "") -> None:
    """Raise unless the entry's record and fingerprint still match the checksum written with them."""
    if _record_digest(meta.get("record"), meta.get("fingerprint")) != meta.get("record_sha256"):
        raise CorruptEntryError(f"{where}the record or fingerprint was changed after the entry was written")


def entry_record(meta_path: str | Path) -> dict:
    """The training record of a zoo entry's ``<key>.json``, checked against its checksum."""
    try:
        meta = json.loads(Path(meta_path).read_text())
    except (OSError, ValueError) as e:
        raise CorruptEntryError(f"{meta_path}: unreadable entry ({e})") from e
    _check_record_digest(meta, f"{meta_path}: ")
    return meta["record"]


class Zoo:
    """Trains or loads models by config; see the module docstring for the cache format."""

    def __init__(self, cache_dir: str | Path | None = None, device: str | None = None, progress: bool = True):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.device = device
        self.progress = progress
        self._data: dict[tuple, DataSplit] = {}

    def data_for(self, config: TrainConfig) -> DataSplit:
        k = (config.dataset, config.train_subset, config.test_subset)
        if k not in self._data:
            self._data[k] = load_dataset(
                config.dataset, train_subset=config.train_subset, test_subset=config.test_subset
            )
        return self._data[k]

    def paths(self, config: TrainConfig) -> tuple[Path, Path]:
        key = config.key()
        return self.cache_dir / f"{key}.pt", self.cache_dir / f"{key}.json"

    def has(self, config: TrainConfig) -> bool:
        return all(p.is_file() for p in self.paths(config))

    def _load_entry(self, config: TrainConfig) -> tuple[dict, TrainRecord, str | None]:
        pt, meta_path = self.paths(config)
        try:
            meta = json.loads(meta_path.read_text())
            blob = pt.read_bytes()
        except (OSError, ValueError) as e:
            raise CorruptEntryError(f"unreadable entry: {e}") from e
        if meta.get("format") != FORMAT or meta.get("key") != config.key():
            raise CorruptEntryError("format or key mismatch")
        if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            raise CorruptEntryError("checksum mismatch (file damaged or partly written)")
        _check_record_digest(meta)
        if meta["record"].get("config") != config.to_dict():
            raise CorruptEntryError("the record's config does not match the entry's key")
        try:
            payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means corrupt
            raise CorruptEntryError(f"cannot unpickle: {e}") from e
        record = TrainRecord(**meta["record"])
        return payload["state_dict"], record, meta.get("fingerprint")

    def _store(self, config: TrainConfig, model: nn.Module, record: TrainRecord) -> None:
        pt, meta_path = self.paths(config)
        buf = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state_dict": state}, buf)
        blob = buf.getvalue()
        fingerprint = model_fingerprint(model)
        meta = {
            "format": FORMAT,
            "key": config.key(),
            "sha256": hashlib.sha256(blob).hexdigest(),
            "fingerprint": fingerprint,
            "record": record.to_dict(),
            "record_sha256": _record_digest(record.to_dict(), fingerprint),
        }
        atomic_write_bytes(pt, blob)
        atomic_write_bytes(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        pt.with_suffix(".ckpt").unlink(missing_ok=True)  # the finished entry replaces the training checkpoint

    def open_entry(self, config: TrainConfig) -> tuple[nn.Module, TrainRecord, str]:
        """(model on the CPU, record, fingerprint recomputed from the stored weights) of a stored entry,
        rebuilt without its data set.

        Raises :class:`CorruptEntryError` when the entry is missing, damaged (checksum), edited (record
        checksum), stored under another config's key, or when its weights do not give the recorded fingerprint.
        """
        if not self.has(config):
            raise CorruptEntryError(f"no entry {config.key()} in {self.cache_dir}")
        state, record, fingerprint = self._load_entry(config)
        model = build_for(config, dataset_shape(config.dataset), threshold=record.threshold)
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError) as e:
            raise CorruptEntryError(
                f"the stored weights do not fit the config's model ({str(e).splitlines()[0]})"
            ) from None
        fp = model_fingerprint(model)
        if fingerprint != fp:
            raise CorruptEntryError(f"the stored weights give fingerprint {fp}, the entry records {fingerprint}")
        return model.eval(), record, fp

    def load(self, config: TrainConfig, warn: bool = True) -> tuple[nn.Module, TrainRecord] | None:
        """The stored model and record (eval mode, on the zoo's device), or None when absent or untrusted.

        An entry that carries a fingerprint must reproduce it after loading (else it is untrusted).
        """
        if not self.has(config):
            return None
        try:
            state, record, fingerprint = self._load_entry(config)
            model = build_for(config, self.data_for(config), threshold=record.threshold)
            model.load_state_dict(state)
            if fingerprint is not None and model_fingerprint(model) != fingerprint:
                raise CorruptEntryError("the loaded model does not have the recorded fingerprint")
            return model.to(resolve_device(self.device)).eval(), record
        except (CorruptEntryError, RuntimeError, KeyError, TypeError, ValueError) as e:
            if warn:
                warnings.warn(
                    f"model entry {config.key()} in {self.cache_dir} is corrupt or stale ({e}); not used", stacklevel=2
                )
            return None

    def store(self, config: TrainConfig, model: nn.Module, record: TrainRecord) -> None:
        """Write an entry (weights, record, fingerprint) atomically."""
        self._store(config, model, record)

    def get(self, config: TrainConfig) -> tuple[nn.Module, TrainRecord]:
        """The trained model (eval mode, on the zoo's device) and its record; trains on a miss."""
        data = self.data_for(config)
        loaded = self.load(config)
        if loaded is not None:
            return loaded
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(
                f"cannot create the model cache {self.cache_dir}: {e.strerror}; set FLATENN_CACHE "
                "or --cache-dir to a writable folder"
            ) from None
        if not os.access(self.cache_dir, os.W_OK):
            raise ValueError(
                f"model cache {self.cache_dir} is not writable and {config.key()} is not in it; set "
                "FLATENN_CACHE or --cache-dir to a writable folder"
            )
        with exclusive(self.cache_dir / f"{config.key()}.lock"):
            for stale in self.cache_dir.glob(f"{config.key()}.*.tmp"):  # left by a writer killed before its rename
                stale.unlink(missing_ok=True)
            loaded = self.load(config, warn=False)  # another process may have trained it meanwhile
            if loaded is not None:
                return loaded
            return self._train(config, data)

    def _train(self, config: TrainConfig, data: DataSplit) -> tuple[nn.Module, TrainRecord]:
        init_state = None
        if config.parent is not None:
            parent, _ = self.get(config.parent)
            init_state = {k: v.detach().clone() for k, v in parent.state_dict().items()}
        model, record = fit(
            config,
            data,
            device=self.device,
            progress=self.progress,
            init_state=init_state,
            checkpoint=self.cache_dir / f"{config.key()}.ckpt",
        )
        self._store(config, model, record)
        return model, record
