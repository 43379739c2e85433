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


class torch_state:  # noqa: N801 - used like a function: ``with torch_state(seed=0): ...``
    """Inside the block: optionally seeded RNGs, deterministic kernels and a thread count; afterwards every
    one of these global settings is as it was (a library call leaves torch as it found it).

    Saved and restored: the Python, NumPy, torch CPU (and CUDA, where initialized) RNG states, the
    deterministic-algorithms flag and its warn-only mode, ``cudnn.benchmark`` and torch's thread count.
    """

    def __init__(self, seed: int | None = None, deterministic: bool = False, threads: int | None = None) -> None:
        self.seed, self.deterministic, self.threads = seed, deterministic, threads
        self._saved: tuple | None = None

    def __enter__(self) -> torch_state:
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        self._saved = (
            random.getstate(),
            np.random.get_state(),
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if cuda else None,
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark,
            torch.get_num_threads(),
        )
        if self.deterministic:
            deterministic_kernels()
        if self.seed is not None:
            random.seed(self.seed)
            np.random.seed(self.seed % 2**32)
            torch.manual_seed(self.seed)
        if self.threads:
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is None:
            return
        py, npy, cpu, cuda, det, warn_only, bench, threads = self._saved
        self._saved = None
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark = bench
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


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


def model_dtype(model: torch.nn.Module) -> torch.dtype | None:
    """The dtype of a model's first floating-point parameter or buffer (None for a model with none)."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None
