"""flatenn's fault injection against pytorchfi 0.6.0 applying the same faults (the speed suite's peer).

pytorchfi is an optional benchmark dependency (`nox` installs it with --no-deps); without it these
tests skip.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.pytorchfi_peer import float_twin, pytorchfi_faults, pytorchfi_injector, pytorchfi_layer_numbers
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import frozen, quantized_layers
from flatenn.faults.injector import FaultInjector

from ..helpers import calibrated

pytest.importorskip("pytorchfi")


@pytest.fixture(scope="module")
def resnet8():
    torch.manual_seed(0)
    return calibrated(build_model(ModelSpec("resnet8", width=4, in_channels=1), 28), (16, 1, 28, 28))


def test_twin_equals_frozen_model(resnet8):
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with frozen(resnet8), torch.no_grad():
        twin = float_twin(resnet8)
        assert torch.equal(twin(x), resnet8(x))
        assert not any(layer.is_frozen for layer in quantized_layers(twin).values())


def test_twin_requires_frozen_model(resnet8):
    with pytest.raises(RuntimeError, match="not frozen"):
        float_twin(resnet8)


@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_pytorchfi_applies_identical_faults(resnet8, fault_model):
    """Every layer (convs and the final Linear) gets faults; logits agree bit for bit, weights too."""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with frozen(resnet8), torch.no_grad():
        twin = float_twin(resnet8)
        fi = pytorchfi_injector(twin, [1, 28, 28])
        inj = FaultInjector(resnet8)
        numbers = pytorchfi_layer_numbers(twin)
        for trial in range(3):
            maps = inj.sample(7, trial, rate=2e-2)
            assert all(m.weight_index.size for m in maps.values())  # every layer, Linear included, is hit
            kw = pytorchfi_faults(inj, maps, fault_model, numbers)
            corrupted = fi.declare_weight_fi(**kw)
            with inj.applied(maps, fault_model) as (_, changed):
                assert changed == len(kw["value"]) > 0
                assert torch.equal(corrupted(x), resnet8(x))
                for name, layer in quantized_layers(resnet8).items():
                    assert torch.equal(dict(corrupted.named_modules())[name].weight, layer.frozen_weight)
            assert torch.equal(twin(x), resnet8(x))  # pytorchfi left the twin clean, flatenn restored
