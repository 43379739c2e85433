"""FATReLU (forced activation-threshold ReLU), activation swapping, and sparsity measurement.

FATReLU (Kurtz et al., ICML 2020): f(x) = x if x > T else 0. With T = 0 it equals ReLU.
Sparsity is the fraction of exact zeros in the post-activation maps (outputs of ReLU/FATReLU
modules), per layer and overall, measured with forward hooks in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from .determinism import model_device


class FATReLU(nn.Module):
    """f(x) = x if x > threshold else 0; gradient 1 above the threshold, 0 below."""

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__()
        if not threshold >= 0:
            raise ValueError(f"FATReLU threshold must be >= 0, got {threshold!r}")
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NaN passes through (as with ReLU): a NaN activation must not be hidden as a zero
        return torch.where((x > self.threshold) | torch.isnan(x), x, torch.zeros_like(x))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


ACTIVATIONS = ("relu", "fatrelu")


def make_activation(kind: str, threshold: float = 0.0) -> nn.Module:
    """Build an activation by name: ``relu`` or ``fatrelu`` (with ``threshold``)."""
    if kind == "relu":
        return nn.ReLU()
    if kind == "fatrelu":
        return FATReLU(threshold)
    raise ValueError(f"unknown activation {kind!r}; choose one of {ACTIVATIONS}")


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, (nn.ReLU, FATReLU))


def activation_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every ReLU/FATReLU module of the model by name (model order)."""
    return {n: m for n, m in model.named_modules() if is_activation(m)}


def swap_activations(model: nn.Module, factory: Callable[[], nn.Module]) -> int:
    """Replace every ReLU/FATReLU in place by ``factory()``; returns how many were replaced."""
    count = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if is_activation(child):
                setattr(parent, name, factory())
                count += 1
    return count


def set_threshold(model: nn.Module, threshold: float) -> int:
    """Turn every activation into ``FATReLU(threshold)``; returns how many were set."""
    return swap_activations(model, lambda: FATReLU(threshold))


class SparsityMonitor:
    """Counts exact zeros in the outputs of every activation module while attached."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.zeros: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self._handles: list = []

    def __enter__(self) -> SparsityMonitor:
        for name, module in activation_modules(self.model).items():
            self.zeros[name] = 0
            self.total[name] = 0
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            self.zeros[name] += int((output == 0).sum())
            self.total[name] += output.numel()

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def per_layer(self) -> dict[str, float]:
        return {n: self.zeros[n] / self.total[n] for n in self.zeros if self.total[n]}

    def overall(self) -> float:
        total = sum(self.total.values())
        return sum(self.zeros.values()) / total if total else float("nan")


@torch.no_grad()
def measure_sparsity(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> pd.DataFrame:
    """Activation sparsity on inputs ``x`` (eval mode): one row per layer plus ``overall``.

    Columns: layer, zeros, total, sparsity. The model's train/eval mode is restored.
    """
    from .evaluate import eval_mode

    device = model_device(model)
    with eval_mode(model), SparsityMonitor(model) as mon:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(device))
    rows = [
        {"layer": n, "zeros": mon.zeros[n], "total": mon.total[n], "sparsity": mon.zeros[n] / mon.total[n]}
        for n in mon.zeros
        if mon.total[n]
    ]
    z, t = sum(mon.zeros.values()), sum(mon.total.values())
    rows.append({"layer": "overall", "zeros": z, "total": t, "sparsity": z / t if t else float("nan")})
    return pd.DataFrame(rows, columns=["layer", "zeros", "total", "sparsity"])


def calibrate_threshold(
    model: nn.Module,
    x: torch.Tensor,
    target_sparsity: float,
    lo: float = 0.0,
    hi: float = 8.0,
    iters: int = 30,
) -> float:
    """Bisection for the common FATReLU threshold that reaches ``target_sparsity`` on ``x``.

    Sets the found threshold on the model (all activations become FATReLU) and returns it.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target sparsity must be in [0, 1), got {target_sparsity}")
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        set_threshold(model, mid)
        s = float(measure_sparsity(model, x)["sparsity"].iloc[-1])
        if s < target_sparsity:
            lo = mid
        else:
            hi = mid
    set_threshold(model, hi)
    return hi
