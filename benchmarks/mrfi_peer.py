"""The same kind of weight faults injected the MRFI 2.1.0 way, for the speed report.

MRFI (multi-resolution fault injection) hooks every module; before each forward it copies a layer's
weight back from a clean copy, quantizes the whole tensor, flips one random bit in each of a Poisson
number of positions drawn *with replacement*, and dequantizes the whole tensor again. It keeps no
integer codes, so the model here is flatenn's :func:`~pytorchfi_peer.float_twin` (float weights equal to
``code x scale``) and MRFI's quantizer is a per-channel one that divides by *flatenn's* scales: it
recovers exactly flatenn's codes, and MRFI flips the same b-bit two's-complement codes flatenn does.

MRFI's selector rate is per *value*; one flipped bit per selected value, so a bit error rate p is a value
rate p x b. :func:`flipped_bits` counts the bits that actually differ after a trial (repeats and
coinciding picks make it fall short of p x bits at high rates).

MRFI is an optional benchmark peer (``pip install --no-deps mrfi==2.1.0``; it needs ``pyyaml``), never a
runtime dependency of flatenn.
"""

from __future__ import annotations

import torch
from torch import nn

from flatenn.core.quant import quantized_layers

QUANTIZER = "FlatennPerChannel"
_SCALES: dict[int, torch.Tensor] = {}  # weight storage address -> flatenn's per-channel scale, shaped to broadcast


class FlatennPerChannel:
    """MRFI quantization (in place, as MRFI requires) with flatenn's per-output-channel scales."""

    @staticmethod
    def quantize(x: torch.Tensor, bit_width: int) -> None:
        lim = (1 << (bit_width - 1)) - 1
        x.div_(_SCALES[x.data_ptr()]).round_().clamp_(-lim - 1, lim)

    @staticmethod
    def dequantize(x: torch.Tensor, bit_width: int) -> None:
        x.mul_(_SCALES[x.data_ptr()])


def mrfi_model(twin: nn.Module, frozen_model: nn.Module, bit_error_rate: float, bits: int = 8):
    """An MRFI wrapper of ``twin`` flipping random bits of every Conv2d/Linear weight at ``bit_error_rate``.

    ``frozen_model`` is the flatenn model the twin was made from (inside ``frozen``): its scales are the
    quantizer's.
    """
    import mrfi

    mrfi.add_function(QUANTIZER, FlatennPerChannel)
    layers = quantized_layers(frozen_model)
    modules = dict(twin.named_modules())
    for name, layer in layers.items():
        w = modules[name].weight
        _SCALES[w.data_ptr()] = layer.code_scale.detach().reshape(-1, *([1] * (w.dim() - 1))).clone()
    config = {
        "faultinject": [
            {
                "type": "weight",
                "name": ["weight"],
                "quantization": {"method": QUANTIZER, "bit_width": bits},
                "enabled": True,
                "selector": {"method": "RandomPositionByRate", "poisson": True, "rate": bit_error_rate * bits},
                "error_mode": {"method": "IntRandomBitFlip", "bit_width": bits},
                "module_fullname": list(layers),
            }
        ]
    }
    return mrfi.MRFI(twin, mrfi.EasyConfig(config))


def flipped_bits(twin: nn.Module, frozen_model: nn.Module, bits: int = 8) -> int:
    """Bits that differ between the twin's weights now (after an MRFI forward) and flatenn's clean codes."""
    modules = dict(twin.named_modules())
    total = 0
    for name, layer in quantized_layers(frozen_model).items():
        w = modules[name].weight.detach()
        scale = layer.code_scale.detach().reshape(-1, *([1] * (w.dim() - 1)))
        codes = torch.round(w / scale).to(torch.int64)
        diff = (codes ^ layer.codes.to(torch.int64)) & ((1 << bits) - 1)
        total += int(sum(((diff >> b) & 1).sum() for b in range(bits)))
    return total
