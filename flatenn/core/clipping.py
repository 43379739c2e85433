"""Activation clipping as an inference-time transform (Ranger, Chen et al., DSN 2021; FT-ClipAct, Hoang et al., DATE 2020).

A weight fault can turn an activation into a huge value that then propagates; bounding every activation
at the largest value seen on clean data cuts that off without retraining. :func:`profile_bounds` records,
per activation module (ReLU, FATReLU), the largest output on clean inputs (the training data, never the
test images); :func:`clipped` applies ``min(output, bound)`` to those outputs inside a ``with`` block
(forward hooks, removed on exit, so the model is left as it was). With ``mode="zero"`` an output above its
bound is set to 0 instead (FT-ClipAct's clipped ReLU: x for x <= T, else 0), on the reasoning that a value
that large is a fault's, not the signal's.

In flatenn's quantized models every layer input also passes an unsigned activation quantizer that
saturates at its calibrated range, so part of this protection is already there; the clipping here acts
on the activation outputs themselves (and on float layers, which have no quantizer).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from .activations import activation_modules
from .evaluate import eval_mode


@torch.no_grad()
def profile_bounds(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    """Per activation module (by name): the largest output over ``x``, in eval mode (Ranger's bounds)."""
    modules = activation_modules(model)
    if not modules:
        raise ValueError("the model has no activation modules (ReLU/FATReLU) to profile")
    if len(x) == 0:
        raise ValueError("profile the bounds on at least one input")
    bounds = dict.fromkeys(modules, -math.inf)

    def hook(name):
        def record(_module, _inputs, output):
            bounds[name] = max(bounds[name], float(output.max()))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with eval_mode(model):
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return bounds


CLIP_MODES = ("saturate", "zero")


@contextlib.contextmanager
def clipped(model: nn.Module, bounds: Mapping[str, float], mode: str = "saturate") -> Iterator[nn.Module]:
    """Inside the block every named activation's output is ``min(output, bound)`` (``mode="saturate"``, Ranger)
    or, with ``mode="zero"`` (FT-ClipAct), 0 where it exceeds the bound; a bound of ``inf`` leaves it unchanged."""
    if mode not in CLIP_MODES:
        raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {mode!r}")
    modules = activation_modules(model)
    unknown = sorted(set(bounds) - set(modules))
    if unknown:
        raise ValueError(f"no activation module named {unknown[:5]}; the model's: {list(modules)[:8]}")
    if any(math.isnan(b) for b in bounds.values()):
        raise ValueError("an activation bound is NaN")

    def hook(bound: float):
        if math.isinf(bound) and bound > 0:
            return lambda _module, _inputs, output: output
        if mode == "zero":
            return lambda _module, _inputs, output: output.masked_fill(output > bound, 0.0)
        return lambda _module, _inputs, output: output.clamp(max=bound)

    handles = [modules[n].register_forward_hook(hook(float(b))) for n, b in bounds.items()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
