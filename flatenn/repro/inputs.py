"""What a scale measures on: its evaluation set, its sharpness set and its sharpness options.

Shared by the experiment (which measures) and ``verify --remeasure`` (which measures again), so both
see exactly the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.data import DataSplit
from .scales import ScaleConfig


def eval_inputs(scale: ScaleConfig, data: DataSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The scale's evaluation set: the first ``eval_examples`` test examples (all when None)."""
    n = scale.eval_examples or len(data.x_test)
    return data.x_test[:n], data.y_test[:n]


def sharpness_inputs(scale: ScaleConfig, data: DataSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The scale's sharpness set: a seeded subset of the training data."""
    g = np.random.default_rng(scale.sharpness_seed)
    idx = np.sort(g.permutation(len(data.x_train))[: scale.sharpness_examples])
    return data.x_train[idx], data.y_train[idx]


def measure_options(scale: ScaleConfig) -> dict:
    """The sharpness options a scale measures with (shared by the experiment and :func:`remeasure`)."""
    return {
        "probes": scale.sharpness_probes,
        "directions": scale.sharpness_directions,
        "sigma": scale.sharpness_sigma,
        "rate": scale.sensitivity_rate,
        "iters": scale.sharpness_iters,
        "fault_model": "bitflip",
    }
