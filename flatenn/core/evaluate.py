"""Clean evaluation: top-1 accuracy (percent) and mean cross-entropy, BatchNorm in eval mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .determinism import model_device


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block; afterwards every module gets back its *own* train/eval flag.

    ``model.train(was_training)`` would not do: a BatchNorm frozen in eval inside a training model
    would come back in training mode.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes.items():
            m.training = t


Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _tensor(v, what: str) -> torch.Tensor:
    """A tensor from a tensor or a NumPy array (or anything ``torch.as_tensor`` takes); a clear error otherwise."""
    if isinstance(v, torch.Tensor):
        return v
    try:
        return torch.as_tensor(np.asarray(v))
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"evaluation {what} must be a tensor or a NumPy array, got {type(v).__name__} ({e})") from None


def as_batches(x, y, batch_size: int, device: torch.device, dtype: torch.dtype | None = None) -> Batches:
    """(inputs, labels) batches on ``device``: slices of tensors (or NumPy arrays), or a data loader's batches
    as it gives them. Floating inputs are cast to ``dtype`` (the model's), labels to int64."""

    def place(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = xb.to(device)
        if dtype is not None and xb.is_floating_point() and xb.dtype != dtype:
            xb = xb.to(dtype)
        return xb, yb.to(device).long()

    if y is None:
        out = []
        for batch in x:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError("a data loader for evaluation must yield (inputs, labels) batches")
            out.append(place(_tensor(batch[0], "inputs"), _tensor(batch[1], "labels")))
        if not out:
            raise ValueError("the data loader yielded no batches")
        return out
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluation batch_size must be a whole number >= 1, got {batch_size!r}")
    x, y = _tensor(x, "inputs"), _tensor(y, "labels")
    if y.is_floating_point() and bool((y != y.round()).any()):
        raise ValueError("evaluation labels must be class indices (whole numbers), not floats")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need a non-empty evaluation set with one label per example, got {len(x)} and {len(y)}")
    x, y = place(x, y)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def batches_fingerprint(batches: Batches) -> str:
    """16 hex digits identifying the evaluation data *and its batching* (results depend on both)."""
    import hashlib

    h = hashlib.sha256()
    for xb, yb in batches:
        for t in (xb, yb):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """(accuracy in percent, mean cross-entropy) over prepared batches; BatchNorm in eval mode."""
    with eval_mode(model):
        return score_batches(model, batches)


@torch.no_grad()
def score_batches(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """:func:`evaluate_batches` for a model the caller already holds in eval mode (a campaign scores every
    trial this way: walking the modules to switch modes would cost as much as a small trial's faults)."""
    return score_outputs((model(xb), yb) for xb, yb in batches)


def score_outputs(pairs) -> tuple[float, float]:
    """(accuracy in percent, mean cross-entropy) of (logits, labels) pairs, summed batch by batch in float64."""
    correct, loss_sum, n = 0, 0.0, 0
    for out, yb in pairs:
        loss_sum += float(F.cross_entropy(out, yb, reduction="sum").double())
        correct += int((out.argmax(1) == yb).sum())
        n += len(yb)
    return 100.0 * correct / n, loss_sum / n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """Return (accuracy in percent, mean cross-entropy loss) on (x, y); restores train/eval mode.

    ``x`` and ``y`` should already be on the model's device for speed (they are moved if not).
    The batch size is part of what makes results reproducible: pin it per scale.
    """
    return evaluate_batches(model, as_batches(x, y, batch_size, model_device(model)))
