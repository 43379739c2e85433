"""Models and data shared by the speed benchmarks."""

from __future__ import annotations

import torch

from flatenn.core.models import ModelSpec, build_model


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
