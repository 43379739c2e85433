"""Bring your own model: quantize any PyTorch module tree, import torch.ao int8 models, load by name.

:func:`quantize_model` replaces every ``nn.Conv2d`` / ``nn.Linear`` of an arbitrary module tree (torchvision
models included: grouped and depthwise convs, bias-less layers, custom blocks, a layer reused in several
places) by :class:`~flatenn.core.quant.QConv2d` / :class:`~flatenn.core.quant.QLinear` *in place*, keeping the
trained weights and the ``state_dict`` names of every float parameter. Activation quantization is added
where it is well defined for any graph: at the input of each quantized layer
(:class:`~flatenn.core.quant.InputQuant`, signed or unsigned as calibration finds), so the integer datapath of
every layer is b-bit x b-bit. Call :func:`flatenn.core.quant.calibrate_activations` (or train) before evaluating.

Other layers with weights that are not converted (``Conv1d``, ``Conv3d``, ``ConvTranspose2d``, ``Embedding``
…) are reported by name: an error by default, a warning with ``strict=False``.
"""

from __future__ import annotations

import importlib
import warnings

import torch
from torch import nn

from .quant import InputQuant, QConv2d, QLinear, check_bits, load_codes, quantized_layers

UNSUPPORTED = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Embedding,
               nn.Bilinear, nn.MultiheadAttention, nn.LSTM, nn.GRU, nn.RNN)  # fmt: skip


class UnsupportedLayerError(ValueError):
    """The model has layers with weights that quantize_model cannot convert."""


def _twin(m: nn.Module, w_bits: int | None) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        q = QConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                    dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode,
                    w_bits=w_bits, device=m.weight.device, dtype=m.weight.dtype)  # fmt: skip
    else:
        q = QLinear(m.in_features, m.out_features, bias=m.bias is not None, w_bits=w_bits, device=m.weight.device,
                    dtype=m.weight.dtype)  # fmt: skip
    with torch.no_grad():
        q.weight.copy_(m.weight)
        if m.bias is not None:
            q.bias.copy_(m.bias)
    q.weight.requires_grad_(m.weight.requires_grad)
    q.train(m.training)
    return q


def quantize_model(model: nn.Module, w_bits: int | None = 8, a_bits: int | None = 8,
                   quantize_first_last: bool = True, strict: bool = True) -> nn.Module:  # fmt: skip
    """Quantize ``model`` in place (and return it): b-bit per-channel weights, b-bit layer inputs.

    ``quantize_first_last=False`` keeps the first and the last converted layer (in module order) in float,
    without an input quantizer. A layer object reused in several places stays one shared layer.
    """
    w_bits = None if w_bits is None else check_bits(w_bits)
    a_bits = None if a_bits is None else check_bits(a_bits)
    unsupported = [n for n, m in model.named_modules() if isinstance(m, UNSUPPORTED)]
    if unsupported:
        msg = (f"quantize_model cannot convert {len(unsupported)} layer(s) with weights: {unsupported[:10]} "
               "(only Conv2d and Linear are converted)")  # fmt: skip
        if strict:
            raise UnsupportedLayerError(msg + "; pass strict=False to leave them in float")
        warnings.warn(msg + "; they stay in float and outside the fault model", stacklevel=2)
    targets = [(n, m) for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    if not targets:
        raise UnsupportedLayerError("the model has no nn.Conv2d or nn.Linear layer to quantize")
    order = list(dict.fromkeys(id(m) for _, m in targets))
    float_ids = {order[0], order[-1]} if not quantize_first_last else set()
    twins: dict[int, nn.Module] = {}
    for _, m in targets:
        if id(m) not in twins:
            keep_float = id(m) in float_ids
            q = _twin(m, None if keep_float else w_bits)
            if not keep_float and a_bits is not None:
                q.input_quant = InputQuant(a_bits)
            twins[id(m)] = q
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in twins:
                setattr(parent, name, twins[id(child)])
    return model


def import_torch_ao(float_model: nn.Module, ao_model: nn.Module) -> nn.Module:
    """Load the per-channel int8 weight codes of a ``torch.ao`` eager-mode converted model into flatenn.

    ``float_model`` is the same architecture in float (before ``prepare``/``convert``); it is quantized
    with :func:`quantize_model` (8-bit weights, no input quantizers) and every converted layer gets exactly
    the integer codes and per-channel scales the deployed int8 model stores, so faults hit the same
    integers. Only symmetric per-channel (zero point 0) weights are accepted.
    """
    ao_layers = {n: m for n, m in ao_model.named_modules() if hasattr(m, "weight") and callable(m.weight)}
    model = quantize_model(float_model, w_bits=8, a_bits=None)
    for name, layer in quantized_layers(model).items():
        if name not in ao_layers:
            raise KeyError(f"layer {name} has no quantized counterpart in the torch.ao model")
        w = ao_layers[name].weight()
        if w.qscheme() not in (torch.per_channel_symmetric, torch.per_channel_affine):
            raise ValueError(f"layer {name}: weights are {w.qscheme()}, flatenn needs per-channel int8 weights")
        zp = w.q_per_channel_zero_points()
        if bool((zp != 0).any()):
            raise ValueError(f"layer {name}: non-zero weight zero points; use a symmetric per-channel qconfig")
        codes = w.int_repr().to(torch.int32)
        if int(codes.min()) < -128 or int(codes.max()) > 127:
            raise ValueError(f"layer {name}: codes outside int8")
        load_codes(layer, codes, w.q_per_channel_scales().to(torch.float32))
        bias = ao_layers[name].bias()
        if bias is not None and layer.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(bias.detach().float())
    return model


def load_named_model(spec: str, weights: str | None = None, num_classes: int | None = None) -> nn.Module:
    """``torchvision:NAME`` (random weights, no download) or ``package.module:factory``; optional state dict."""
    if ":" not in spec:
        raise ValueError(f"--model {spec!r}: expected torchvision:NAME or package.module:factory")
    mod_name, attr = spec.split(":", 1)
    if mod_name == "torchvision":
        import torchvision

        if attr not in torchvision.models.list_models():
            raise ValueError(f"--model {spec}: torchvision has no model {attr!r}")
        kwargs = {"weights": None} | ({"num_classes": num_classes} if num_classes else {})
        model = torchvision.models.get_model(attr, **kwargs)
    else:
        try:
            factory = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--model {spec}: cannot import {attr} from {mod_name} ({e})") from None
        model = factory()
        if not isinstance(model, nn.Module):
            raise ValueError(f"--model {spec}: the factory returned {type(model).__name__}, not a torch module")
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except (OSError, RuntimeError, ValueError) as e:
            raise ValueError(f"--weights {weights}: cannot load a state dict for {spec} ({e})") from None
    return model.eval()
