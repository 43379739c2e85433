"""Helpers shared by the unit tests."""

from __future__ import annotations

import torch
from torch import nn

from flatenn.core.quant import calibrate_activations


def calibrated(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """``model`` in eval mode with its activation ranges calibrated on random inputs of ``shape``."""
    g = torch.Generator().manual_seed(seed)
    calibrate_activations(model, [torch.randn(shape, generator=g)])
    return model.eval()
