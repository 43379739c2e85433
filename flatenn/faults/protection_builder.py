"""Build a data-fitted inference-time protection (Ranger's bounds, FT-ClipAct's thresholds) for one model.

One place for what both the experiment pipeline and the command line do: the bounds and thresholds come from
the first training images (never the test images), and FT-ClipAct's search runs on fault maps of
:func:`selection_seed` of the campaign seed, so no map that scores the model chose its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core.clipping import profile_bounds
from ..core.quant import frozen
from .ft_clipact import select_thresholds
from .protection import Protection, Ranger

SELECTION_SEED_OFFSET = 10**9  # beyond every campaign seed a scale uses (campaign_seed * 1000 + train seed)


def selection_seed(campaign_seed: int) -> int:
    """Fault-map seed of the search that chooses a protection's setting for models scored with ``campaign_seed``."""
    return SELECTION_SEED_OFFSET + campaign_seed


def build_protection(
    name: str,
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    campaign_seed: int,
    rates: Sequence[float],
    ranger_examples: int = 2048,
    clipact_examples: int = 512,
    clipact_trials: int = 10,
    batch_size: int = 512,
) -> str | Protection:
    """The protection ``name`` for ``model``: Ranger with bounds profiled on the first ``ranger_examples``
    training images, FT-ClipAct with thresholds chosen on the first ``clipact_examples`` under bit flips at
    ``rates``; any other name is returned as it is (``run_campaign`` resolves it)."""
    if name == "ranger":
        with frozen(model):
            return Ranger(profile_bounds(model, x_train[:ranger_examples]))
    if name == "ft-clipact":
        n = clipact_examples
        return select_thresholds(
            model,
            x_train[:n],
            y_train[:n],
            "bitflip",
            rates=rates,
            trials=clipact_trials,
            seed=selection_seed(campaign_seed),
            batch_size=batch_size,
        )
    return name
