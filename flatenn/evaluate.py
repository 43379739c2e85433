"""Clean evaluation: top-1 accuracy (percent) and mean cross-entropy, BatchNorm in eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .determinism import model_device


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """Return (accuracy in percent, mean cross-entropy loss) on (x, y); restores train/eval mode.

    ``x`` and ``y`` should already be on the model's device for speed (they are moved if not).
    The batch size is part of what makes results reproducible: pin it per scale.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct, loss_sum = 0, 0.0
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            out = model(xb)
            loss_sum += float(F.cross_entropy(out, yb, reduction="sum", ).double())
            correct += int((out.argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    n = len(x)
    return 100.0 * correct / n, loss_sum / n
