"""Shared fixtures: tiny models and data that keep every unit test fast on a CPU; and the two test tiers.

The default run is the fast tier: the unit tests of every module. Tests marked ``slow`` (end-to-end
reproductions, subprocess runs of the command line, Ray, whole-folder re-derivations of the tracked results)
run with ``--slow`` (both tiers) or ``-m slow`` (the slow tier alone); CI runs both.
"""

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


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the slow tier (end-to-end, subprocess command lines, Ray, tracked-folder re-derivations)",
    )


def pytest_collection_modifyitems(config, items):
    """Leave out the slow tier unless ``--slow`` is given or ``-m`` names ``slow``."""
    if config.getoption("--slow") or "slow" in (config.getoption("-m") or ""):
        return
    slow = [i for i in items if i.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [i for i in items if not i.get_closest_marker("slow")]
