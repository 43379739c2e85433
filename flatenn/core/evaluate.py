"""Clean evaluation: top-1 accuracy (percent) and mean cross-entropy, BatchNorm in eval mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def as_batches(x, y: torch.Tensor | None, batch_size: int, device: torch.device) -> Batches:
    """(inputs, labels) batches on ``device``: slices of tensors, or a data loader's batches as it gives them."""
    if y is None:
        out = []
        for batch in x:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError("a data loader for evaluation must yield (inputs, labels) batches")
            out.append((batch[0].to(device), batch[1].to(device)))
        if not out:
            raise ValueError("the data loader yielded no batches")
        return out
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluation batch_size must be a whole number >= 1, got {batch_size!r}")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need a non-empty evaluation set with one label per example, got {len(x)} and {len(y)}")
    x, y = x.to(device), y.to(device)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """(accuracy in percent, mean cross-entropy) over prepared batches; BatchNorm in eval mode."""
    correct, loss_sum, n = 0, 0.0, 0
    with eval_mode(model):
        for xb, yb in batches:
            out = model(xb)
            loss_sum += float(F.cross_entropy(out, yb, reduction="sum").double())
            correct += int((out.argmax(1) == yb).sum())
            n += len(yb)
    return 100.0 * correct / n, loss_sum / n


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """Return (accuracy in percent, mean cross-entropy loss) on (x, y); restores train/eval mode.

    ``x`` and ``y`` should already be on the model's device for speed (they are moved if not).
    The batch size is part of what makes results reproducible: pin it per scale.
    """
    return evaluate_batches(model, as_batches(x, y, batch_size, model_device(model)))
