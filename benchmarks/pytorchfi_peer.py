"""The same weight faults applied the pytorchfi 0.6.0 way, for a side-by-side check and timing.

pytorchfi writes float values into ``layer.weight`` of a deep copy of the model. flatenn's frozen
layers compute with a separate buffer (``frozen_weight`` = code x scale), so pytorchfi cannot see them.
:func:`float_twin` therefore builds a float copy whose ``weight`` *is* the dequantized frozen weight
(``w_bits=None``, same modules, same ops). :func:`pytorchfi_faults` turns flatenn fault maps into
pytorchfi's location lists with the faulty values (``FaultInjector.faulty_weights``: ``faulty_code * scale`` in
float32, exactly what the injector writes), so both tools apply identical faults and their logits must be bit-identical.

pytorchfi is an optional benchmark peer (``pip install --no-deps pytorchfi==0.6.0``), never a runtime
dependency of flatenn.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from flatenn.core.quant import quantized_layers
from flatenn.faults.injector import FaultInjector
from flatenn.faults.sampling import FaultMap

LAYER_TYPES = (nn.Conv2d, nn.Linear)


def float_twin(model: nn.Module) -> nn.Module:
    """A deep copy of a *frozen* flatenn model whose float ``weight`` holds the frozen weights."""
    twin = copy.deepcopy(model)
    for name, layer in quantized_layers(twin).items():
        if not layer.is_frozen:
            raise RuntimeError(f"layer {name} is not frozen: build the twin inside `with frozen(model):`")
        with torch.no_grad():
            layer.weight.data = layer.frozen_weight.detach().clone().contiguous()
        layer.codes = layer.code_scale = layer.frozen_weight = None
        layer.w_bits = None
    return twin


def pytorchfi_layer_numbers(model: nn.Module) -> dict[str, int]:
    """pytorchfi's layer number of each Conv2d/Linear (its count over ``model.modules()``) by name."""
    names = [n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    return {n: i for i, n in enumerate(names)}


def pytorchfi_faults(
    injector: FaultInjector, maps: Mapping[str, FaultMap], fault_model: str, numbers: Mapping[str, int]
) -> dict[str, list]:
    """``declare_weight_fi`` keyword lists (layer_num, k, dim1..3, value) for the weights the maps change.

    Linear weights are 2-D: their dim2/dim3 are ``None``, which pytorchfi's index tuple turns into
    new unit axes, so the write still hits exactly one weight.
    """
    out: dict[str, list] = {"layer_num": [], "k": [], "dim1": [], "dim2": [], "dim3": [], "value": []}
    for name, fmap in maps.items():
        idx, _, values = injector.faulty_weights(name, fmap, fault_model)  # what flatenn writes
        shape = tuple(injector.memory[name].layer.weight.shape)
        for flat, v in zip(idx.tolist(), values.tolist(), strict=True):
            pos = np.unravel_index(flat, shape)
            out["layer_num"].append(numbers[name])
            out["k"].append(int(pos[0]))
            out["dim1"].append(int(pos[1]))
            out["dim2"].append(int(pos[2]) if len(pos) > 2 else None)
            out["dim3"].append(int(pos[3]) if len(pos) > 3 else None)
            out["value"].append(v)
    return out


def pytorchfi_injector(twin: nn.Module, input_shape: list[int], batch_size: int = 1):
    """A ``pytorchfi.core.fault_injection`` over the twin's Conv2d and Linear layers."""
    from pytorchfi.core import fault_injection

    return fault_injection(
        twin, batch_size, input_shape=list(input_shape), layer_types=list(LAYER_TYPES), use_cuda=False
    )
