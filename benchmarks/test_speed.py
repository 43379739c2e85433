"""pytest-benchmark speed cases (run with `nox -s speed`); nothing here asserts a wall-clock time."""

from __future__ import annotations

import pytest
import torch

from flatenn.core.quant import frozen
from flatenn.faults.injector import FaultInjector

from .speed_setup import calibrated, eval_set, forward_all

pytestmark = pytest.mark.speed


@pytest.fixture(scope="module")
def digits_model():
    torch.set_num_threads(2)
    return calibrated("cnn_digits", 8, 1, 8), eval_set(1, 8, 360)[0]


def test_clean_forward_limit(benchmark, digits_model):
    model, x = digits_model
    with frozen(model):
        benchmark(forward_all, model, x)


@pytest.mark.parametrize("rate", [1e-4, 1e-3, 1e-2])
def test_campaign_trial(benchmark, digits_model, rate):
    model, x = digits_model
    with frozen(model):
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        counter = iter(range(10**9))

        def trial():
            with inj.applied(inj.sample(0, next(counter), rate=rate), "bitflip"):
                forward_all(model, x)

        benchmark(trial)


def test_pytorchfi_trial(benchmark, digits_model):
    """pytorchfi 0.6.0 applying flatenn's 1e-3 maps (deep copy + Python writes + forward) per trial."""
    pytest.importorskip("pytorchfi")
    from .pytorchfi_peer import float_twin, pytorchfi_faults, pytorchfi_injector, pytorchfi_layer_numbers

    model, x = digits_model
    with frozen(model):
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        twin = float_twin(model)
        fi, numbers = pytorchfi_injector(twin, list(x.shape[1:])), pytorchfi_layer_numbers(twin)
        lists = [pytorchfi_faults(inj, inj.sample(0, t, rate=1e-3), "bitflip", numbers) for t in range(200)]
    counter = iter(range(10**9))
    benchmark(lambda: forward_all(fi.declare_weight_fi(**lists[next(counter) % len(lists)]), x))


def test_sampling_and_application_11m_weights(benchmark):
    model = calibrated("resnet18", 64, 3, 32)
    with frozen(model):
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        counter = iter(range(10**9))

        def step():
            with inj.applied(inj.sample(0, next(counter), rate=1e-5), "bitflip"):
                pass

        benchmark(step)


@pytest.mark.parametrize("optimizer", ["sgd", "saq"])
def test_training_epoch(benchmark, optimizer):
    from flatenn.core.data import load_digits
    from flatenn.core.train import TrainConfig, fit

    data = load_digits()
    torch.set_num_threads(2)
    benchmark.pedantic(
        lambda: fit(TrainConfig(width=8, epochs=1, optimizer=optimizer), data, progress=False), rounds=3, iterations=1
    )
