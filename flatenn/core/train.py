"""One seeded training loop for quantized models; ``optimizer`` names a registered training method.

Every method uses SGD with momentum, weight decay and a per-step cosine learning-rate schedule as its
base optimizer; the method (:mod:`flatenn.core.methods`: ``sgd``, ``saq``, ``sam`` or your own registered
class) decides what one step does with it. An activation-sparse model is
trained from scratch with FATReLU (``activation="fatrelu"``) or fine-tuned from a trained
``parent`` config with every activation replaced by FATReLU(threshold) — the threshold given, or
calibrated on the training data to reach ``target_sparsity``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .activations import calibrate_threshold, measure_sparsity, set_threshold
from .atomic import atomic_write_bytes
from .data import DataShape, DataSplit, load_dataset, subset_split
from .determinism import resolve_device, torch_state
from .evaluate import evaluate
from .methods import METHODS, get_method
from .models import ModelSpec, build_model
from .progress import Progress

# TrainConfig fields added after 0.3.0: absent from its dict and key at their defaults (so those defaults are
# fixed for good; a new method adds its fields here)
LATER_FIELDS = ("eta", "w_max", "p_train")

# Bump when a change to the training path changes what a config trains to: it invalidates caches.
TRAIN_CODE_VERSION = "2"  # 2: SAQ pass 2 uses pass 1's activation ranges


@dataclass(frozen=True)
class TrainConfig:
    """The complete description of one trained model (hashed into its cache key)."""

    dataset: str = "digits"
    model: str = "cnn_digits"
    width: int = 16
    activation: str = "relu"
    threshold: float = 0.0
    target_sparsity: float | None = None
    w_bits: int | None = 8
    a_bits: int | None = 8
    quantize_first_last: bool = True
    optimizer: str = "sgd"
    rho: float = 0.05
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    parent: TrainConfig | None = None
    # fields added after 0.3.0 (the mitigation methods' hyper-parameters; LATER_FIELDS): left out of
    # to_dict() and the cache key at their defaults, so every key computed before they existed is unchanged
    eta: float = 0.01
    w_max: float | None = None
    p_train: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()
        if self.activation == "relu" and self.parent is None and self.threshold != 0:
            raise ValueError(
                f"threshold {self.threshold:g} applies only to activation='fatrelu' (FATReLU); a ReLU "
                "model has no threshold: leave it at 0"
            )
        if self.optimizer not in METHODS:
            raise ValueError(
                f"optimizer must be a registered training method {sorted(METHODS)} "
                f"(flatenn.core.methods), got {self.optimizer!r}"
            )
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")
        method = get_method(self.optimizer)
        stray = [f for f in LATER_FIELDS if getattr(self, f) != _LATER_DEFAULTS[f] and f not in method.hyper_parameters]
        if stray:
            reads = ", ".join(method.hyper_parameters) or "no hyper-parameter"
            raise ValueError(
                f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to training method "
                f"{self.optimizer!r} (it reads {reads}); leave {'it' if len(stray) == 1 else 'them'} at the default"
            )
        method.check(self)
        if self.parent is not None and self.activation != "fatrelu":
            raise ValueError("a parent config means fine-tuning to a sparse model: use activation='fatrelu'")

    def _check_types(self) -> None:
        """Every field has its declared type (a config read from JSON names the field that does not)."""
        kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "TrainConfig": (TrainConfig,)}
        for f in dataclasses.fields(self):
            parts = [p.strip() for p in str(f.type).split("|")]
            v = getattr(self, f.name)
            if v is None and "None" in parts:
                continue
            ok = tuple(t for p in parts if p != "None" for t in kinds[p])
            if not isinstance(v, ok) or (isinstance(v, bool) and bool not in ok):
                want = " or ".join(p if p != "None" else "null" for p in parts)
                raise ValueError(f"training config field {f.name!r} must be {want}, got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field, except fields added after 0.3.0 that are at their defaults (see LATER_FIELDS)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["parent"] = None if self.parent is None else self.parent.to_dict()
        for name in LATER_FIELDS:
            if d[name] == _LATER_DEFAULTS[name]:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown training config field(s) {unknown}; fields: {[f.name for f in dataclasses.fields(cls)]}"
            )
        if isinstance(d.get("parent"), dict):
            d["parent"] = cls.from_dict(d["parent"])
        return cls(**d)

    def key(self) -> str:
        """Content hash of the full config plus the training code version (cache key)."""
        blob = json.dumps({"config": self.to_dict(), "code": TRAIN_CODE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def model_spec(self, data: DataSplit | DataShape, threshold: float | None = None) -> ModelSpec:
        return ModelSpec(
            name=self.model,
            num_classes=data.num_classes,
            in_channels=data.in_channels,
            activation=self.activation if self.parent is None else "relu",
            threshold=self.threshold if threshold is None else threshold,
            w_bits=self.w_bits,
            a_bits=self.a_bits,
            width=self.width,
            quantize_first_last=self.quantize_first_last,
        )


_LATER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in LATER_FIELDS}


@dataclass
class TrainRecord:
    """What a training run did and reached."""

    config: dict[str, Any]
    key: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    clean_accuracy: float = float("nan")
    clean_loss: float = float("nan")
    sparsity: float = float("nan")
    threshold: float = 0.0
    wall_time_s: float = 0.0
    seconds_per_epoch: float = float("nan")
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        return (
            f"{self.key}: clean accuracy {self.clean_accuracy:.2f}%, loss {self.clean_loss:.4f}, "
            f"sparsity {100 * self.sparsity:.1f}%, threshold {self.threshold:g}, "
            f"{self.wall_time_s:.1f}s ({self.seconds_per_epoch:.2f}s/epoch) on {self.device}"
        )


def build_for(config: TrainConfig, data: DataSplit | DataShape, threshold: float | None = None) -> nn.Module:
    """An untrained model for ``config`` (activation as trained: FATReLU for fine-tuned ones).

    Built to be loaded with trained weights: the global RNG its initialization draws from is restored.
    """
    with torch_state():
        model = build_model(config.model_spec(data, threshold), data.input_size)
    if config.parent is not None:
        set_threshold(model, config.threshold if threshold is None else threshold)
    return model


def _data_for_config(config: TrainConfig, data: DataSplit) -> DataSplit:
    """A passed DataSplit, cut to the config's seeded subsets (the config must describe what trains)."""
    if data.name != config.dataset:
        raise ValueError(f"fit(config, data): data set {data.name!r} but the config says {config.dataset!r}")
    return subset_split(data, config.train_subset, config.test_subset)


def _save_checkpoint(path, config, model, opt, sched, gen, record, spent: float, method=None) -> None:
    import io

    buf = io.BytesIO()
    torch.save(
        {
            "key": config.key(),
            "epochs": record.epochs,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "generator": gen.get_state(),
            "method": method.state_dict() if method is not None else {},
            "spent": spent,
        },
        buf,
    )
    atomic_write_bytes(Path(path), buf.getvalue())


def _resume(path, config, model, opt, sched, gen, record, method=None) -> tuple[int, float]:
    """Load a training checkpoint of this config if one exists; returns (first epoch to run, seconds spent)."""
    if path is None or not Path(path).is_file():
        return 0, 0.0
    try:
        # weights_only: a checkpoint is named by a public config hash, so a planted file must not run code
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("key") != config.key():
            return 0, 0.0
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        if method is not None:
            method.load_state_dict(state.get("method", {}))
    except Exception as e:  # noqa: BLE001 - a damaged checkpoint means: start over
        import warnings

        warnings.warn(f"training checkpoint {path} is unreadable ({e}); training from epoch 0", stacklevel=3)
        return 0, 0.0
    record.epochs = list(state["epochs"])
    return len(record.epochs), float(state.get("spent", 0.0))


def _cosine(total_steps: int):
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def fit(
    config: TrainConfig,
    data: DataSplit | None = None,
    device: str | None = None,
    progress: bool = True,
    init_state: dict[str, torch.Tensor] | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[nn.Module, TrainRecord]:
    """Train ``config`` and return (model in eval mode, record).

    For a fine-tuned sparse config pass the trained parent's ``init_state`` (the zoo does this).
    Same config, seed and device give bit-identical weights. With ``checkpoint`` the full training
    state (weights, buffers, optimizer, schedule, shuffling generator) is written after every epoch
    and a killed run resumes from it, bit-identical to an uninterrupted one. Seeding and deterministic
    kernels hold for the call only: torch's global settings and RNGs are restored afterwards.
    """
    with torch_state(seed=config.seed, deterministic=True):
        return _fit(config, data, device, progress, init_state, checkpoint)


def _fit(
    config: TrainConfig,
    data: DataSplit | None,
    device: str | None,
    progress: bool,
    init_state: dict[str, torch.Tensor] | None,
    checkpoint: str | Path | None,
) -> tuple[nn.Module, TrainRecord]:
    dev = resolve_device(device)
    if data is None:
        data = load_dataset(config.dataset, train_subset=config.train_subset, test_subset=config.test_subset)
    else:
        data = _data_for_config(config, data)
    model = build_model(config.model_spec(data), data.input_size).to(dev)
    threshold = config.threshold
    if config.parent is not None:
        if init_state is None:
            raise ValueError("fine-tuning needs the parent's trained weights: pass init_state (or use the zoo)")
        model.load_state_dict(init_state)
        if config.target_sparsity is not None:
            threshold = calibrate_threshold(model, data.x_train[:1024].to(dev), config.target_sparsity)
        else:
            set_threshold(model, threshold)
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(config.epochs * steps_per_epoch))
    method = get_method(config.optimizer)(model, opt, config, F.cross_entropy)
    gen = torch.Generator().manual_seed(config.seed)
    record = TrainRecord(config=config.to_dict(), key=config.key(), threshold=threshold, device=str(dev))
    first_epoch, spent = _resume(checkpoint, config, model, opt, sched, gen, record, method)
    bar = Progress(config.epochs, f"train {config.key()} ({config.optimizer}, {config.activation})", progress)
    bar.done = first_epoch
    start = time.perf_counter() - spent
    for epoch in range(first_epoch, config.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            loss, logits = method.step(xb, yb)
            sched.step()
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        record.epochs.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": 100.0 * correct / n})
        bar.update(1, f"loss {loss_sum / n:.4f}")
        if checkpoint is not None and epoch + 1 < config.epochs:
            _save_checkpoint(checkpoint, config, model, opt, sched, gen, record, time.perf_counter() - start, method)
    record.wall_time_s = time.perf_counter() - start
    record.seconds_per_epoch = record.wall_time_s / max(config.epochs, 1)
    model.eval()
    record.clean_accuracy, record.clean_loss = evaluate(model, data.x_test.to(dev), data.y_test.to(dev))
    record.sparsity = float(measure_sparsity(model, data.x_test.to(dev))["sparsity"].iloc[-1])
    return model, record
