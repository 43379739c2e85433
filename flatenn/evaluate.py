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


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """Return (accuracy in percent, mean cross-entropy loss) on (x, y); restores train/eval mode.

    ``x`` and ``y`` should already be on the model's device for speed (they are moved if not).
    The batch size is part of what makes results reproducible: pin it per scale.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluation batch_size must be a whole number >= 1, got {batch_size!r}")
    device = model_device(model)
    correct, loss_sum = 0, 0.0
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            out = model(xb)
            loss_sum += float(F.cross_entropy(out, yb, reduction="sum").double())
            correct += int((out.argmax(1) == yb).sum())
    n = len(x)
    if n == 0:
        raise ValueError("evaluate got no examples")
    return 100.0 * correct / n, loss_sum / n
