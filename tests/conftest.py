"""Shared fixtures: tiny models and data that keep every unit test fast on a CPU."""

from __future__ import annotations

import pytest
import torch

from flatenn.core.data import load_digits
from flatenn.core.train import TrainConfig


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(width=4, epochs=1, batch_size=64, train_subset=256, seed=0)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
