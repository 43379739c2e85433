"""Seeding and deterministic-kernel settings shared by training, campaigns and metrics."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def deterministic_kernels() -> None:
    """Demand deterministic kernels (CPU and CUDA) without touching any random state.

    ``CUBLAS_WORKSPACE_CONFIG`` must be set before the first CUDA call; it is set here if absent.
    ``warn_only`` is not used: it would hide nondeterminism.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def set_deterministic(seed: int) -> None:
    """Seed Python, NumPy and torch, and demand deterministic kernels (:func:`deterministic_kernels`)."""
    deterministic_kernels()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" -> CUDA when present, else CPU; otherwise the named device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a model with neither)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")
