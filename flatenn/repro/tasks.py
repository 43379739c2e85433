"""Work units as self-contained tasks: what a worker computes, with everything it needs, writing nothing.

A :class:`Task` carries a unit's inputs (training config, model weights, evaluation data, scale options,
the run id); :func:`execute` computes the unit's rows and returns them. Nothing here touches the
results folder or the model cache: the driver (:class:`~flatenn.repro.experiment.Experiment`) records
what comes back. So a task can run in this process or on any machine of a cluster, and its rows equal
the ones the experiment computes itself (same functions, seeds and thread count).

A model travels as its state dict (the zoo entry's payload, a few MB at most) with the fingerprint the
driver computed; a worker that rebuilds another fingerprint refuses the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from ..core.data import dataset_shape
from ..core.determinism import torch_state
from ..core.fingerprint import model_fingerprint
from ..core.train import TrainConfig, TrainRecord, build_for, fit


class FingerprintMismatch(RuntimeError):
    """The model a worker rebuilt is not the model the driver recorded."""


@dataclass
class Task:
    """One unit's inputs. ``kind``: ``train``, ``campaign``, ``sharpness`` or ``sparsity``."""

    kind: str
    label: str
    config: TrainConfig
    threads: int | None = None
    device: str = "cpu"  # the driver's device, so rows equal the driver's own
    state: dict[str, torch.Tensor] | None = None  # the model (measurements) or the parent's weights (training)
    threshold: float = 0.0
    fingerprint: str = ""
    inputs: tuple[torch.Tensor, torch.Tensor] | None = None  # evaluation or sharpness data
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    label: str
    kind: str
    rows: pd.DataFrame | None = None
    landscape: pd.DataFrame | None = None
    state: dict[str, torch.Tensor] | None = None  # a trained model
    record: TrainRecord | None = None
    seconds: float = 0.0


def rebuild(task: Task) -> torch.nn.Module:
    """The task's model from its config and state; refuses one whose fingerprint is not the driver's."""
    model = build_for(task.config, dataset_shape(task.config.dataset), threshold=task.threshold)
    model.load_state_dict(task.state)
    fp = model_fingerprint(model)
    model = model.to(task.device)
    if task.fingerprint and fp != task.fingerprint:
        raise FingerprintMismatch(
            f"{task.label}: the model rebuilt here has fingerprint {fp}, the driver recorded "
            f"{task.fingerprint}; refusing to measure another model"
        )
    return model.eval()


def execute(task: Task) -> TaskResult:
    """Compute one task's rows (or trained model) in this process; writes nothing."""
    import time

    t0 = time.perf_counter()
    with torch_state(deterministic=True, threads=task.threads):
        out = _KINDS[task.kind](task)
    out.seconds = time.perf_counter() - t0
    return out


def execute_with(task: Task, state: dict | None = None, inputs: tuple | None = None) -> TaskResult:
    """:func:`execute` with the model weights and the data passed separately (as a cluster sends them)."""
    import dataclasses

    return execute(
        dataclasses.replace(
            task, state=task.state if state is None else state, inputs=task.inputs if inputs is None else inputs
        )
    )


def _train(task: Task) -> TaskResult:
    model, record = fit(task.config, device=task.device, progress=False, init_state=task.state)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return TaskResult(task.label, task.kind, state=state, record=record)


def _campaign(task: Task) -> TaskResult:
    from ..faults.campaign import run_campaign

    o = task.options
    x, y = task.inputs
    df = run_campaign(
        rebuild(task),
        x,
        y,
        o["fault_model"],
        rates=o["rates"],
        trials=o["trials"],
        seed=o["seed"],
        model_id=o["model_id"],
        batch_size=o["batch_size"],
        progress=False,
        extra=o["extra"],
        recorded=o.get("recorded"),
        protection=o.get("protection"),
    )
    new = df.iloc[len(df) - df.attrs.get("computed_rows", len(df)) :].reset_index(drop=True)
    return TaskResult(task.label, task.kind, rows=new)


def _sharpness(task: Task) -> TaskResult:
    from ..analysis.sharpness import measure

    o = task.options
    x, y = task.inputs
    rows, land = measure(
        rebuild(task),
        x,
        y,
        o["metrics"],
        model_id=o["model_id"],
        seed=o["seed"],
        batch_size=o["batch_size"],
        options=o["measure"],
    )
    return TaskResult(task.label, task.kind, rows=rows, landscape=land)


def _sparsity(task: Task) -> TaskResult:
    from ..core.activations import measure_sparsity

    x, _ = task.inputs
    rows = measure_sparsity(rebuild(task), x.to(task.device), task.options["batch_size"])
    return TaskResult(task.label, task.kind, rows=rows)


_KINDS = {"train": _train, "campaign": _campaign, "sharpness": _sharpness, "sparsity": _sparsity}
