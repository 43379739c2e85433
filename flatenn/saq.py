"""Sharpness-aware quantization (SAQ) step: Liu et al., arXiv 2111.12273, "case 3".

Pass 1 computes the gradient g of the loss w.r.t. the *quantized* weights Q(w) of every
QConv2d/QLinear. The perturbation eps = rho * g / ||g|| (one global L2 norm) is added *after*
quantization, Q(w) + eps; the latent weights are untouched. Pass 2's gradient flows through the
straight-through estimator to the latent weights and is what the optimizer applies. Buffers
(BatchNorm running statistics, activation clip ranges) are restored after pass 2, so they are
exactly as pass 1 left them. BatchNorm affine parameters and biases are not perturbed.
A step costs about two conventional steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .quant import weight_layers


def perturbation_from_gradients(grads: list[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """eps_l = rho * g_l / ||g|| with one global norm over all layers."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).to(grads[0].dtype)
    return [rho * g / (norm + 1e-12) for g in grads]


def saq_step(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    rho: float,
) -> tuple[float, torch.Tensor]:
    """One SAQ update. Returns (pass-1 loss, pass-1 logits) for logging."""
    if rho < 0:
        raise ValueError(f"SAQ rho must be >= 0, got {rho}")
    layers = list(weight_layers(model).values())
    optimizer.zero_grad(set_to_none=True)
    for layer in layers:
        layer.capture_weight = True
    try:
        logits = model(x)
        loss1 = loss_fn(logits, y)
        quantized = [layer.last_weight for layer in layers]
        grads = torch.autograd.grad(loss1, quantized)
    finally:
        for layer in layers:
            layer.capture_weight = False
            layer.last_weight = None
    eps = perturbation_from_gradients([g.detach() for g in grads], rho)
    saved = {n: b.detach().clone() for n, b in model.named_buffers()}
    try:
        for layer, e in zip(layers, eps, strict=True):
            layer.perturbation = e
        loss2 = loss_fn(model(x), y)
        loss2.backward()
    finally:
        for layer in layers:
            layer.perturbation = None
        with torch.no_grad():
            for n, b in model.named_buffers():
                if n in saved:
                    b.copy_(saved[n])
    optimizer.step()
    return float(loss1.detach()), logits.detach()
