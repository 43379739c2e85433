"""MRFI 2.1.0 configured to flip the same codes flatenn holds (the speed report's peer).

MRFI is an optional benchmark dependency (`nox` installs it with --no-deps); without it these tests skip.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.pytorchfi_peer import float_twin
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import frozen, quantized_layers

from ..helpers import calibrated

pytest.importorskip("mrfi")
pytest.importorskip("yaml")

from benchmarks.mrfi_peer import flipped_bits, mrfi_model  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return calibrated(build_model(ModelSpec("resnet8", width=4, in_channels=1), 28), (16, 1, 28, 28))


def test_mrfi_quantizer_recovers_flatenns_codes_exactly(model):
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with frozen(model), torch.no_grad():
        wrapped = mrfi_model(float_twin(model), model, 0.0)  # MRFI quantizes and dequantizes, flips nothing
        assert torch.equal(wrapped(x), model(x))
        assert flipped_bits(wrapped.model, model) == 0


def test_mrfi_flips_about_the_bit_error_rate_of_the_codes(model):
    x = torch.randn(2, 1, 28, 28)
    with frozen(model), torch.no_grad():
        total = sum(layer.codes.numel() * 8 for layer in quantized_layers(model).values())
        wrapped = mrfi_model(float_twin(model), model, 0.01)
        counts = []
        for _ in range(20):
            wrapped(x)
            counts.append(flipped_bits(wrapped.model, model))
    expected = 0.01 * total
    mean = sum(counts) / len(counts)
    # Poisson(expected) per trial, a few percent lost to repeated picks: the mean of 20 within 5 sd and below +5 sd
    assert abs(mean - expected) < 5 * (expected / 20) ** 0.5 + 0.05 * expected
