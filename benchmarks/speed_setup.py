"""Models, data and the pytorchfi-style baseline shared by the speed benchmarks."""

from __future__ import annotations

import copy

import numpy as np
import torch

from flatenn.faults import apply_fault_to_codes
from flatenn.models import ModelSpec, build_model
from flatenn.quant import quantized_layers, weight_codes


def calibrated(name: str, width: int, channels: int, size: int, seed: int = 0) -> torch.nn.Module:
    """An untrained but calibrated model (throughput does not depend on training)."""
    torch.manual_seed(seed)
    m = build_model(ModelSpec(name, width=width, in_channels=channels), size)
    m.train()
    with torch.no_grad():
        m(torch.randn(64, channels, size, size))
    return m.eval()


def eval_set(channels: int, size: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


@torch.no_grad()
def forward_all(model, x, batch_size: int = 512) -> None:
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])


@torch.no_grad()
def baseline_trial(model, x, rate: float, seed: int, trial: int, batch_size: int = 512) -> None:
    """pytorchfi-style trial: deep-copy the model, write each fault in a Python loop, evaluate."""
    m = copy.deepcopy(model)
    rng = np.random.default_rng([seed, trial])
    for layer in quantized_layers(m).values():
        codes, scale = weight_codes(layer)
        flat = codes.view(-1)
        n_bits = flat.numel() * layer.w_bits
        k = rng.binomial(n_bits, rate)
        for pos in rng.choice(n_bits, size=k, replace=False) if k else []:
            w, b = divmod(int(pos), layer.w_bits)
            new = int(apply_fault_to_codes(np.array([int(flat[w])]), np.array([1 << b]), "bitflip", layer.w_bits)[0])
            flat[w] = new
            with torch.no_grad():
                layer.weight.view(-1)[w] = new * scale[w // (flat.numel() // codes.shape[0])]
    forward_all(m, x, batch_size)
