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

from .quant import InputQuant, QConv2d, QLinear, QuantizedWeightMixin, check_bits, load_codes, quantized_layers

UNSUPPORTED = (
    nn.Conv1d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
    nn.Bilinear,
    nn.MultiheadAttention,
    nn.LSTM,
    nn.GRU,
    nn.RNN,
)


class UnsupportedLayerError(ValueError):
    """The model has layers with weights that quantize_model cannot convert."""


def _twin(m: nn.Module, w_bits: int | None) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        q = QConv2d(
            m.in_channels,
            m.out_channels,
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            dilation=m.dilation,
            groups=m.groups,
            bias=m.bias is not None,
            padding_mode=m.padding_mode,
            w_bits=w_bits,
            device=m.weight.device,
            dtype=m.weight.dtype,
        )
    else:
        q = QLinear(
            m.in_features,
            m.out_features,
            bias=m.bias is not None,
            w_bits=w_bits,
            device=m.weight.device,
            dtype=m.weight.dtype,
        )
    with torch.no_grad():
        q.weight.copy_(m.weight)
        if m.bias is not None:
            q.bias.copy_(m.bias)
    q.weight.requires_grad_(m.weight.requires_grad)
    q.train(m.training)
    return q


def _convertible(m: nn.Module) -> bool:
    """A float Conv2d / Linear, or a subclass of one that keeps its forward (so the twin computes the same)."""
    return isinstance(m, (nn.Conv2d, nn.Linear)) and not isinstance(m, QuantizedWeightMixin) and not _custom_forward(m)


def _custom_forward(m: nn.Module) -> bool:
    """A Conv2d / Linear subclass with its own forward: converting it would drop what that forward adds."""
    if isinstance(m, QuantizedWeightMixin) or not isinstance(m, (nn.Conv2d, nn.Linear)):
        return False
    base = nn.Conv2d if isinstance(m, nn.Conv2d) else nn.Linear
    return type(m).forward is not base.forward or (
        base is nn.Conv2d and type(m)._conv_forward is not nn.Conv2d._conv_forward
    )


def quantize_model(
    model: nn.Module,
    w_bits: int | None = 8,
    a_bits: int | None = 8,
    quantize_first_last: bool = True,
    strict: bool = True,
) -> nn.Module:
    """Quantize ``model`` in place (and return it): b-bit per-channel weights, b-bit layer inputs.

    Every ``nn.Conv2d`` / ``nn.Linear`` (grouped, depthwise, bias-less, shared, inside custom blocks; a subclass
    that keeps the base class's forward) becomes its quantized twin (:class:`flatenn.core.quant.QConv2d`,
    :class:`flatenn.core.quant.QLinear`) with the same weights and ``state_dict`` names, its weights stored as
    symmetric per-output-channel two's-complement codes, and a b-bit quantizer at its input (signed where
    calibration sees negative values). Calibrate the input quantizers with :func:`calibrate` before use.

    :param model: any PyTorch model; float64, float16 and bfloat16 models are converted to float32 (with a
        warning).
    :param w_bits: weight bits, 2..16 (None: weights stay float).
    :param a_bits: layer-input bits, 2..16 (None: no input quantizers).
    :param quantize_first_last: False keeps the first and the last converted layer (in module order) in float,
        without an input quantizer. A layer object reused in several places stays one shared layer.
    :param strict: raise for a layer with weights that cannot be converted (False: leave it in float).
    :returns: the same model object, quantized.
    :raises ValueError: for bits out of range, non-finite weights, or (``strict``) layers that cannot be
        converted, named in the message.
    """
    w_bits = None if w_bits is None else check_bits(w_bits)
    a_bits = None if a_bits is None else check_bits(a_bits)
    other = sorted(
        {
            str(t.dtype)
            for t in (*model.parameters(), *model.buffers())
            if t.is_floating_point() and t.dtype != torch.float32
        }
    )
    if other:  # the weight memory is integer codes with float32 scales; the datapath around it is float32
        warnings.warn(
            f"quantize_model: the model's {', '.join(other)} parameters and buffers are converted to "
            "float32 (flatenn's quantized layers compute in float32)",
            stacklevel=2,
        )
        model.float()
    unsupported = [n for n, m in model.named_modules() if isinstance(m, UNSUPPORTED) or _custom_forward(m)]
    if unsupported:
        msg = (
            f"quantize_model cannot convert {len(unsupported)} layer(s) with weights: {unsupported[:10]} "
            "(only Conv2d and Linear are converted, and their subclasses that keep their forward)"
        )
        if strict:
            raise UnsupportedLayerError(msg + "; pass strict=False to leave them in float")
        warnings.warn(msg + "; they stay in float and outside the fault model", stacklevel=2)
    targets = [(n, m) for n, m in model.named_modules() if _convertible(m)]
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


def _ao_counterpart(name: str, float_model: nn.Module, ao_layers: dict[str, nn.Module]) -> str:
    """The torch.ao module name of a converted layer: the same name, or the fused module that holds it.

    A float model fused with ``torch.ao.quantization.fuse_modules`` holds ``conv`` as ``conv.0`` inside a
    ``ConvReLU2d``; the converted model has one quantized module at ``conv``.
    """
    if name in ao_layers:
        return name
    parent = name.rsplit(".", 1)[0] if "." in name else ""
    fused = getattr(torch.ao.nn.intrinsic, "_FusedModule", ())
    if parent in ao_layers and isinstance(float_model.get_submodule(parent), fused):
        return parent
    raise ValueError(
        f"layer {name} has no quantized counterpart in the torch.ao model (quantized layers there: "
        f"{sorted(ao_layers)[:8]}); pass the float model that was prepared and converted"
    )


def import_torch_ao(float_model: nn.Module, ao_model: nn.Module) -> nn.Module:
    """Load the per-channel int8 weight codes of a ``torch.ao`` eager-mode converted model into flatenn.

    ``float_model`` is the same architecture in float (before ``prepare``/``convert``), unfused or fused with
    ``fuse_modules``; it is quantized with :func:`quantize_model` (8-bit weights, no input quantizers) and
    every converted layer gets exactly the integer codes, per-channel scales and bias the deployed int8
    model stores, so faults hit the same integers. Where the int8 model folded a BatchNorm into the layer
    before it (the standard conv+BN(+ReLU) fusion), the codes and bias already hold it, so that BatchNorm
    becomes an identity here (it must not be applied twice). Only symmetric per-channel (zero point 0)
    weights are accepted.
    """
    ao_modules = dict(ao_model.named_modules())
    ao_layers = {n: m for n, m in ao_modules.items() if hasattr(m, "weight") and callable(m.weight)}
    model = quantize_model(float_model, w_bits=8, a_bits=None)
    for name, layer in quantized_layers(model).items():
        ao_name = _ao_counterpart(name, model, ao_layers)
        w = ao_layers[ao_name].weight()
        if w.qscheme() not in (torch.per_channel_symmetric, torch.per_channel_affine):
            raise ValueError(f"layer {name}: weights are {w.qscheme()}, flatenn needs per-channel int8 weights")
        zp = w.q_per_channel_zero_points()
        if bool((zp != 0).any()):
            raise ValueError(f"layer {name}: non-zero weight zero points; use a symmetric per-channel qconfig")
        codes = w.int_repr().to(torch.int32)
        if int(codes.min()) < -128 or int(codes.max()) > 127:
            raise ValueError(f"layer {name}: codes outside int8")
        load_codes(layer, codes, w.q_per_channel_scales().to(torch.float32))
        bias = ao_layers[ao_name].bias()
        with torch.no_grad():
            if bias is not None and layer.bias is None:  # a bias the int8 layer gained by folding BatchNorm
                layer.bias = nn.Parameter(bias.detach().float().clone())
            elif bias is not None:
                layer.bias.copy_(bias.detach().float())
            elif layer.bias is not None:
                layer.bias.zero_()
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(
            ao_modules.get(name), nn.modules.batchnorm._BatchNorm
        ):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())  # folded into the codes
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
        load_weights(model, weights, spec)
    return model.eval()


def load_weights(model: nn.Module, weights: str, what: str) -> None:
    """Load a state dict file into ``model``; one line saying what the file is and what was expected."""
    import pickle
    from pathlib import Path

    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"--weights {weights}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(
            f"--weights {weights}: the file is empty; expected a state dict saved with "
            "torch.save(model.state_dict(), path)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        kind = (
            "a pickled object that is not plain tensors (a whole nn.Module?)"
            if "Unsupported global" in str(e) or "GLOBAL" in str(e)
            else "not a readable torch file"
        )
        raise ValueError(
            f"--weights {weights}: {kind}; expected a state dict saved with torch.save(model.state_dict(), path)"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise ValueError(
            f"--weights {weights}: not a readable torch file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'truncated'}); expected a state dict"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--weights {weights}: holds a {type(state).__name__}, not a state dict of tensors")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        parts = [
            f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
            f"{len(shape)} of another shape (e.g. {shape[0]}: {tuple(state[shape[0]].shape)} vs "
            f"{tuple(own[shape[0]].shape)})"
            if shape
            else "",
        ]
        raise ValueError(
            f"--weights {weights} is a state dict of another architecture than {what}: keys "
            + "; ".join(p for p in parts if p)
        )
    model.load_state_dict(state)
