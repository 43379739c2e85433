"""Hessian-trace regularization (Pranto et al., arXiv 2504.01933 / TMLR 2026): a Hutchinson trace penalty.

The penalty is ``z^T D H D z`` for a Rademacher probe ``z``: an unbiased estimate of ``sum_i c_i H_ii``, the
Hessian of the loss with respect to the stored (latent, straight-through quantized) weights, weighted by
``c_i = D_ii^2``. Training minimizes ``loss + penalty``, so the penalty's own gradient is needed: a third
derivative of the loss. Two things make that exact here:

* PyTorch's fused BatchNorm has no third derivative ("batch_norm does not support 3rd+ order derivatives");
  inside :func:`composite_batchnorm` every BatchNorm layer computes the same function, and updates its running
  statistics the same way, from composite operations (mean, biased variance, square root) that autograd
  differentiates to any order;
* the gradient graph of the loss is kept (``create_graph``) through the Hessian-vector product.

The weights ``c`` (:func:`bit_error_weights`) make the penalty the second-order expected loss increase of
random bit flips at rate ``p`` in b-bit two's-complement codes: an error in bit k of a code with step
``delta`` moves its weight by ``±2^k delta``, so a weight's error variance is ``p delta^2 sum_k 4^k`` and
``E[L(w + e)] - L(w) ≈ 1/2 sum_i E[e_i^2] H_ii`` (the same weights as
:func:`flatenn.analysis.sharpness.bit_error_sensitivity`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .quant import quantize_weight


def _composite_forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)`` from composite operations, with nn.BatchNorm's running-statistics update in training mode."""
    use_batch = bn.training or not bn.track_running_stats
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if use_batch:
        dims = [0, *range(2, x.ndim)]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                f = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                n = x.numel() // x.shape[1]
                bn.running_mean.mul_(1 - f).add_(mean.detach(), alpha=f)
                bn.running_var.mul_(1 - f).add_(var.detach() * (n / max(n - 1, 1)), alpha=f)
    else:
        mean, var = bn.running_mean, bn.running_var
    y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
    return y


@contextlib.contextmanager
def composite_batchnorm(model: nn.Module) -> Iterator[None]:
    """Every BatchNorm layer of ``model`` computes through :func:`_composite_forward` inside the context (same
    outputs and running statistics, derivatives of any order); the layers' own forward is back on exit."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.forward = (lambda bn: lambda x: _composite_forward(bn, x))(m)  # instance attribute shadows the class's
    try:
        yield
    finally:
        for m in layers:
            del m.forward


def bit_error_weights(weights: Sequence[torch.Tensor], bits: Sequence[int], rate: float) -> list[torch.Tensor]:
    """Per weight, half the error variance of random bit flips at ``rate`` in its b-bit code:
    ``rate/2 * delta^2 * (4^b - 1)/3``, ``delta`` the per-output-channel quantization step (held fixed)."""
    out = []
    for w, b in zip(weights, bits, strict=True):
        _, scale = quantize_weight(w.detach(), b)
        step = scale.reshape(-1, *([1] * (w.ndim - 1))).expand_as(w)
        out.append(0.5 * rate * step.pow(2) * ((4**b - 1) / 3))
    return out


def rademacher(like: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """One ±1 probe per tensor, drawn on the CPU from ``generator`` (the same probes on every device)."""
    return [
        (torch.randint(0, 2, t.shape, generator=generator) * 2 - 1).to(device=t.device, dtype=t.dtype) for t in like
    ]


def hutchinson_penalty(
    loss: torch.Tensor,
    params: Sequence[torch.Tensor],
    probes: Sequence[Sequence[torch.Tensor]],
    weights: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean over ``probes`` of ``(D z)^T H (D z)``, H the Hessian of ``loss`` w.r.t. ``params`` and D the square
    root of ``weights`` (None: identity, the plain Hutchinson trace); differentiable w.r.t. ``params``.

    ``loss`` must come from a graph that is differentiable three times (see :func:`composite_batchnorm`).
    """
    if not probes:
        raise ValueError("hutchinson_penalty needs at least one probe")
    grads = torch.autograd.grad(loss, params, create_graph=True)
    roots = [w.sqrt() for w in weights] if weights is not None else None
    total = loss.new_zeros(())
    for z in probes:
        v = list(z) if roots is None else [zi * ri for zi, ri in zip(z, roots, strict=True)]
        gv = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True))
        hv = torch.autograd.grad(gv, params, create_graph=True)
        total = total + sum((h * vi).sum() for h, vi in zip(hv, v, strict=True))
    return total / len(probes)
