"""What a scale measures on: its evaluation set, its sharpness set and its sharpness options.

Shared by the experiment (which measures) and ``verify --remeasure`` (which measures again), so both
see exactly the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.data import DataSplit
from .scales import ScaleConfig


def eval_inputs(scale: ScaleConfig, data: DataSplit, train_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation set of the models of one training seed.

    ``eval_examples`` test examples (all when None or at least the test split). With ``inputs_per_seed``
    each training seed draws its own (seeded by the campaign seed and the training seed, without
    replacement, in test-split order); otherwise the first ``eval_examples`` for every seed (plan v1).
    """
    n = len(data.x_test)
    k = min(scale.eval_examples or n, n)
    if k == n:
        return data.x_test, data.y_test
    if not scale.inputs_per_seed:
        return data.x_test[:k], data.y_test[:k]
    g = np.random.default_rng((scale.campaign_seed, 1, train_seed))
    idx = torch.from_numpy(np.sort(g.permutation(n)[:k]))
    return data.x_test[idx], data.y_test[idx]


def sharpness_inputs(scale: ScaleConfig, data: DataSplit, train_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sharpness set of the models of one training seed: a seeded subset of the training data."""
    g = np.random.default_rng(scale.sharpness_seed_for(train_seed))
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
