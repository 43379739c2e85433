"""FT-ClipAct's threshold search (Hoang et al., DATE 2020): per-layer activation thresholds chosen under faults.

FT-ClipAct replaces each unbounded activation with a clipped one that outputs 0 above a threshold
(:class:`~flatenn.faults.protection.FTClipAct`). The thresholds are chosen by fault injection: starting from
every layer's largest clean output, layer after layer (forward order) each candidate threshold — a fraction
of that layer's largest clean output — is scored by the mean accuracy of a seeded fault campaign with the
other layers at their current thresholds, and the best is kept (ties keep the larger threshold, which
changes the clean model least). The images are the caller's *selection* set, never the test images;
the campaign seed should be one the test campaigns do not use, so the maps that choose the thresholds are
not the maps that score them.

The paper scores a candidate by the area under its accuracy-vs-fault-rate curve; the mean accuracy over
the given rates (equal-weight points of that curve) is the same criterion on a grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..core.clipping import profile_bounds
from ..core.quant import frozen
from .campaign import run_campaign
from .protection import FTClipAct

DEFAULT_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)  # candidate thresholds, as fractions of a layer's largest clean output


def select_thresholds(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    fault_model: str = "bitflip",
    rates: Sequence[float] = (1e-3,),
    trials: int = 10,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    batch_size: int = 512,
) -> FTClipAct:
    """FT-ClipAct thresholds for ``model`` chosen on ``(x, y)`` under ``fault_model`` faults at ``rates``.

    Costs ``layers x len(fractions)`` campaigns of ``len(rates) x trials`` faulty evaluations of ``x``.
    """
    fractions = sorted({float(f) for f in fractions}, reverse=True)
    if not fractions or any(not (0.0 < f <= 1.0) or math.isnan(f) for f in fractions):
        raise ValueError(f"fractions must be non-empty, each in (0, 1], got {fractions}")
    if not rates:
        raise ValueError("give at least one fault rate to choose the thresholds at")
    with frozen(model):
        largest = profile_bounds(model, x, batch_size=batch_size)
    bounds = dict(largest)
    for name, top in largest.items():
        if not top > 0:  # a layer that is never active on clean data: nothing to choose
            continue
        best_accuracy, best = -math.inf, bounds[name]
        for f in fractions:
            candidate = {**bounds, name: f * top}
            rows = run_campaign(
                model,
                x,
                y,
                fault_model,
                rates=list(rates),
                trials=trials,
                seed=seed,
                batch_size=batch_size,
                progress=False,
                protection=FTClipAct(candidate),
            )
            accuracy = float(rows["accuracy"].mean())
            if accuracy > best_accuracy:
                best_accuracy, best = accuracy, candidate[name]
        bounds[name] = best
    return FTClipAct(bounds)
