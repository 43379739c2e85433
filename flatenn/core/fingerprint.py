"""A model's fingerprint: which exact model a measurement was made on.

SHA-256 over, in name order, every quantized layer's integer weight codes and scales (the weight
memory that faults hit) and every other parameter and buffer (biases, BatchNorm, activation clips,
float layers' weights), each with its name, dtype and shape. Latent float weights of quantized
layers are left out: two models with the same codes compute the same thing. Frozen-state buffers
(``codes``, ``code_scale``, ``frozen_weight``) are left out too, so freezing does not change it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from .quant import quantized_layers, weight_codes

_FREEZE_BUFFERS = ("codes", "code_scale", "frozen_weight")
LENGTH = 16  # hex digits kept


def model_fingerprint(model: nn.Module) -> str:
    """16 hex digits identifying what ``model`` computes (see the module docstring)."""
    qlayers = quantized_layers(model)
    items: dict[str, torch.Tensor] = {}
    for name, layer in qlayers.items():
        codes, scale = weight_codes(layer)
        items[f"{name}.weight#codes"] = codes
        items[f"{name}.weight#scale"] = scale
    layer_ids = {id(m) for m in qlayers.values()}
    # every name of a quantized layer (a shared layer appears under several in the state dict)
    latent = {f"{n}.weight" for n, m in model.named_modules(remove_duplicate=False) if id(m) in layer_ids}
    for name, t in model.state_dict().items():
        if name in latent or name.rsplit(".", 1)[-1] in _FREEZE_BUFFERS:
            continue
        items[name] = t
    h = hashlib.sha256()
    for name in sorted(items):
        t = items[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_raw_bytes(t) if t.numel() else b"")
    return h.hexdigest()[:LENGTH]


def _raw_bytes(t: torch.Tensor) -> bytes:
    """The tensor's memory as bytes (bfloat16 too, which NumPy cannot hold); equal to ``t.numpy().tobytes()``."""
    if t.dtype == torch.bfloat16:
        return t.reshape(-1).view(torch.int16).numpy().tobytes()
    return np.ascontiguousarray(t.numpy()).tobytes()
