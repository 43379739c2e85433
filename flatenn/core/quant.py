"""Fake quantization with a straight-through estimator, and the integer weight memory.

Weights are quantized symmetrically per output channel to b-bit two's-complement codes in
[-(2^(b-1)-1), 2^(b-1)-1] with scale = max|w_channel| / (2^(b-1)-1). Activations are quantized
to unsigned b-bit codes on [0, clip], where ``clip`` is *calibrated*: an exponential moving
average of the per-batch maximum during training, frozen in eval mode (documented choice; it
needs no extra learnable parameter and is deterministic).

The integer weight codes are first-class: :func:`weight_codes` returns them with their scales
and :func:`load_codes` writes codes back; a layer holding loaded codes computes its forward
with exactly ``codes * scale``. That is the "weight memory" that :mod:`flatenn.faults.sampling` hits.
The normal (training) forward produces bit-identical values, because both paths share
:func:`dequantize`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

MIN_BITS, MAX_BITS = 2, 16


def check_bits(bits: int) -> int:
    """Validate a bit width (an integer in 2..16) and return it."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"bit width must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}; "
            "use e.g. w_bits=8 (or None to leave a layer in floating point)"
        )
    return bits


def qmax(bits: int) -> int:
    """Largest symmetric code magnitude for ``bits``: 2^(bits-1) - 1."""
    return 2 ** (check_bits(bits) - 1) - 1


def _channel_view(scale: torch.Tensor, ndim: int) -> torch.Tensor:
    return scale.reshape(-1, *([1] * (ndim - 1)))


class NonFiniteWeightError(ValueError):
    """A weight tensor holds NaN or infinity: it has no integer codes (training diverged?)."""


def quantize_weight(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (int32 codes, float scale per output channel) of a weight tensor.

    Non-finite weights raise :class:`NonFiniteWeightError` (on the training path and when freezing
    alike: a NaN has no code). A channel whose scale would be 0 (all zeros, or a max |w| so small
    that max/q underflows) gets scale 1, so its codes are 0 and valid.
    """
    q = qmax(bits)
    w = weight.detach()
    amax = w.reshape(w.shape[0], -1).abs().amax(dim=1)
    if not bool(torch.isfinite(amax).all()):
        bad = torch.nonzero(~torch.isfinite(amax)).flatten().tolist()
        raise NonFiniteWeightError(
            f"weights of output channel(s) {bad[:8]} are NaN or infinite, so they have no {bits}-bit codes; "
            "training diverged (lower the learning rate) or the checkpoint is damaged"
        )
    scale = amax / q
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round(w / _channel_view(scale, w.ndim)), -q, q)
    return codes.to(torch.int32).contiguous(), scale


def dequantize(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``codes * scale`` per output channel, in float32 (the one place this is computed)."""
    return codes.to(torch.float32) * _channel_view(scale.to(torch.float32), codes.ndim)


class _FakeQuantWeight(torch.autograd.Function):
    """Forward: dequantize(quantize(w)); backward: identity (straight-through)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, bits: int) -> torch.Tensor:  # type: ignore[override]
        codes, scale = quantize_weight(weight, bits)
        return dequantize(codes, scale).to(weight.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


def fake_quant_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Fake-quantize a weight tensor with a straight-through gradient."""
    return _FakeQuantWeight.apply(weight, bits)


class _FakeQuantAct(torch.autograd.Function):
    """Unsigned fake quantization on [0, clip]; gradient passes inside, blocked outside."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: torch.Tensor, bits: int) -> torch.Tensor:  # type: ignore[override]
        levels = 2**bits - 1
        c = torch.clamp(clip, min=1e-8).to(x.dtype)
        step = c / levels
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((x >= 0) & (x <= c))
        y = torch.clamp(x, torch.zeros_like(c), c)
        return torch.round_(y.div_(step)).mul_(step)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None


class UncalibratedError(RuntimeError):
    """An activation quantizer was asked to quantize before it ever saw data."""


class ActQuant(nn.Module):
    """Unsigned b-bit activation quantizer with an EMA-calibrated clip (``bits=None``: identity).

    In training mode each forward updates the clip (EMA of the batch maximum) unless
    ``update_range`` is False (SAQ's second pass uses pass 1's ranges that way). In eval
    mode an uncalibrated quantizer raises :class:`UncalibratedError` instead of clipping everything
    to zero.
    """

    def __init__(self, bits: int | None = 8, momentum: float = 0.1) -> None:
        super().__init__()
        self.bits = None if bits is None else check_bits(bits)
        self.momentum = momentum
        self.update_range = True
        self._seen_calibrated = False  # Python-side cache of ``calibrated`` (no device sync per forward)
        self.register_buffer("clip", torch.zeros(()))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def _load_from_state_dict(self, *args, **kwargs):  # a loaded state may be uncalibrated
        self._seen_calibrated = False
        super()._load_from_state_dict(*args, **kwargs)

    def _check_calibrated(self) -> None:
        if self._seen_calibrated:
            return
        if bool(self.calibrated):
            self._seen_calibrated = True
            return
        raise UncalibratedError(
            "activation quantizer has never seen data, so its range is unknown: train the model, or "
            "calibrate it first with flatenn.core.quant.calibrate_activations(model, batches)"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return x
        if not (self.training and self.update_range):
            self._check_calibrated()
        if self.training and self.update_range:
            with torch.no_grad():
                batch_max = x.detach().max().clamp(min=0).to(self.clip.dtype)
                if bool(self.calibrated):
                    self.clip.mul_(1 - self.momentum).add_(self.momentum * batch_max)
                else:
                    self.clip.copy_(batch_max)
                    self.calibrated.fill_(True)
        return _FakeQuantAct.apply(x, self.clip, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class _FakeQuantSigned(torch.autograd.Function):
    """Symmetric signed fake quantization on [-clip, clip] with 2^(b-1)-1 levels a side; STE inside."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: torch.Tensor, bits: int) -> torch.Tensor:  # type: ignore[override]
        levels = 2 ** (bits - 1) - 1
        c = torch.clamp(clip, min=1e-8).to(x.dtype)
        step = c / levels
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x.abs() <= c)
        return torch.round(torch.clamp(x, -c, c) / step) * step

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None


class InputQuant(ActQuant):
    """b-bit quantizer for a layer's *input* in an arbitrary graph (used by ``quantize_model``).

    Calibration tracks the EMA of max|x| and whether negative values occur: inputs that were never
    negative (e.g. after ReLU) use the unsigned [0, clip] grid of :class:`ActQuant`; others (images,
    residual sums, BatchNorm outputs) a symmetric signed grid on [-clip, clip].
    """

    def __init__(self, bits: int | None = 8, momentum: float = 0.1) -> None:
        super().__init__(bits, momentum)
        self.register_buffer("signed", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return x
        if not (self.training and self.update_range):
            self._check_calibrated()
        else:
            with torch.no_grad():
                amax = x.detach().abs().max().to(self.clip.dtype)
                if bool(x.detach().min() < 0):
                    self.signed.fill_(True)
                if bool(self.calibrated):
                    self.clip.mul_(1 - self.momentum).add_(self.momentum * amax)
                else:
                    self.clip.copy_(amax)
                    self.calibrated.fill_(True)
        if bool(self.signed):
            return _FakeQuantSigned.apply(x, self.clip, self.bits)
        return _FakeQuantAct.apply(x, self.clip, self.bits)


class QuantizedWeightMixin:
    """Shared weight handling of :class:`QConv2d` and :class:`QLinear`.

    Modes: *latent* (fake-quantize ``weight`` every forward) and *frozen* (use loaded codes).
    ``perturbation`` (or None) is added after quantization: SAQ and sharpness use it.
    """

    weight: nn.Parameter
    w_bits: int | None

    def _init_quant(self, w_bits: int | None) -> None:
        self.w_bits = None if w_bits is None else check_bits(w_bits)
        self.perturbation: torch.Tensor | None = None
        self.input_quant: nn.Module | None = None  # set by flatenn.core.convert.quantize_model
        self.register_buffer("codes", None)  # type: ignore[attr-defined]
        self.register_buffer("code_scale", None)  # type: ignore[attr-defined]
        self.register_buffer("frozen_weight", None)  # type: ignore[attr-defined]

    @property
    def is_frozen(self) -> bool:
        return self.frozen_weight is not None

    def effective_weight(self) -> torch.Tensor:
        if self.frozen_weight is not None:
            w = self.frozen_weight
        elif self.w_bits is None:
            w = self.weight
        else:
            w = fake_quant_weight(self.weight, self.w_bits)
        if self.perturbation is not None:
            w = w + self.perturbation
        return w


class QConv2d(QuantizedWeightMixin, nn.Conv2d):
    """Conv2d with b-bit per-output-channel fake-quantized weights (``w_bits=None``: float)."""

    def __init__(self, *args, w_bits: int | None = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(w_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quant is not None:
            x = self.input_quant(x)
        return self._conv_forward(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", w_bits={self.w_bits}"


class QLinear(QuantizedWeightMixin, nn.Linear):
    """Linear layer with b-bit per-output-channel fake-quantized weights (``w_bits=None``: float)."""

    def __init__(self, *args, w_bits: int | None = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(w_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quant is not None:
            x = self.input_quant(x)
        return F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", w_bits={self.w_bits}"


def weight_layers(model: nn.Module) -> dict[str, QuantizedWeightMixin]:
    """Every QConv2d/QLinear of ``model`` by name, quantized or not (model order)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantizedWeightMixin)}


def quantized_layers(model: nn.Module) -> dict[str, QuantizedWeightMixin]:
    """The layers whose weights live in b-bit integer memory (``w_bits`` set), in model order."""
    return {n: m for n, m in weight_layers(model).items() if m.w_bits is not None}


def weight_codes(layer: QuantizedWeightMixin) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's integer weight codes (int32) and per-output-channel scales."""
    if layer.w_bits is None:
        raise ValueError("this layer is not quantized (w_bits=None): it has no integer codes")
    if layer.codes is not None:
        return layer.codes.clone(), layer.code_scale.clone()
    return quantize_weight(layer.weight, layer.w_bits)


def load_codes(layer: QuantizedWeightMixin, codes: torch.Tensor, scale: torch.Tensor | None = None) -> None:
    """Load integer codes (and optionally scales) into a quantized layer; it then runs on them.

    Codes must fit the b-bit two's-complement range [-2^(b-1), 2^(b-1)-1] (a fault may produce
    -2^(b-1)). Without ``scale`` the current scale (loaded or computed from the weights) is kept.
    """
    if layer.w_bits is None:
        raise ValueError("this layer is not quantized (w_bits=None): it cannot hold codes")
    if tuple(codes.shape) != tuple(layer.weight.shape):
        raise ValueError(f"codes shape {tuple(codes.shape)} != weight shape {tuple(layer.weight.shape)}")
    if codes.dtype.is_floating_point:
        raise TypeError("codes must be an integer tensor")
    lo, hi = -(2 ** (layer.w_bits - 1)), 2 ** (layer.w_bits - 1) - 1
    if codes.numel() and (int(codes.min()) < lo or int(codes.max()) > hi):
        raise ValueError(f"codes outside the {layer.w_bits}-bit range [{lo}, {hi}]")
    if scale is None:
        scale = weight_codes(layer)[1]
    device = layer.weight.device
    # contiguous: the injector writes through flat views, which a channels_last copy would escape
    codes = codes.to(device=device, dtype=torch.int32).contiguous(memory_format=torch.contiguous_format).clone()
    scale = scale.to(device=device, dtype=torch.float32).clone()
    layer.codes = codes
    layer.code_scale = scale
    layer.frozen_weight = dequantize(codes, scale)


def freeze_layer(layer: QuantizedWeightMixin) -> None:
    """Freeze a layer at its current weights: codes (quantized) or a float copy (w_bits=None)."""
    if layer.w_bits is None:
        layer.frozen_weight = layer.weight.detach().clone()
    else:
        codes, scale = weight_codes(layer)
        load_codes(layer, codes, scale)


def unfreeze_layer(layer: QuantizedWeightMixin) -> None:
    """Return a layer to latent mode (fake-quantize ``weight``); the latent weights are untouched."""
    layer.codes = None
    layer.code_scale = None
    layer.frozen_weight = None


@contextlib.contextmanager
def frozen(model: nn.Module, include_float: bool = False) -> Iterator[dict[str, QuantizedWeightMixin]]:
    """Freeze every quantized layer (and float ones if asked) at its codes for the ``with`` block.

    Yields the frozen layers by name. On exit (also after an exception) every layer is returned to
    the mode it had; layers that were already frozen keep their codes.
    """
    layers = weight_layers(model) if include_float else quantized_layers(model)
    newly = {n: m for n, m in layers.items() if not m.is_frozen}
    try:
        for m in newly.values():
            freeze_layer(m)
        yield layers
    finally:
        for m in newly.values():
            unfreeze_layer(m)


def act_quantizers(model: nn.Module) -> list[ActQuant]:  # InputQuant included (a subclass)
    """Every activation quantizer of ``model`` (model order)."""
    return [m for m in model.modules() if isinstance(m, ActQuant)]


@contextlib.contextmanager
def frozen_ranges(model: nn.Module) -> Iterator[None]:
    """Activation quantizers keep their current clip inside the block (no EMA update in train mode)."""
    quantizers = act_quantizers(model)
    flags = [q.update_range for q in quantizers]
    try:
        for q in quantizers:
            q.update_range = False
        yield
    finally:
        for q, f in zip(quantizers, flags, strict=True):
            q.update_range = f


OBSERVERS = ("minmax", "ema", "percentile")


def _as_batch_list(data) -> list:
    """Calibration data as an iterable of batches: one tensor (or array) is one batch."""
    if isinstance(data, torch.Tensor):
        return [data]
    if type(data).__module__ == "numpy":
        return [torch.as_tensor(data)]
    return data


def _check_finite(x: torch.Tensor, i: int) -> None:
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"calibration batch {i} holds NaN or infinite values (a float32 overflow such as 1e39 is "
            "infinite): clean the data first, or the ranges would be meaningless"
        )


@torch.no_grad()
def calibrate_activations(
    model: nn.Module, data, batches: int | None = None, observer: str = "minmax", percentile: float = 99.99
) -> int:
    """Post-training calibration of every activation quantizer's clip from data; returns the batches used.

    ``observer`` sets each clip as users of ``torch.ao`` know it:

    * ``"minmax"`` (default; torch.ao's post-training default): the largest value seen over all batches
      (largest |x| for a signed layer input), the model running in float while it observes;
    * ``"percentile"``: the ``percentile`` of the observed values (|x| for signed inputs), which ignores
      rare outliers;
    * ``"ema"``: the moving average of batch maxima (momentum 0.1), as quantization-aware *training* does
      (every flatenn training uses this path): later batches see quantized earlier layers.

    BatchNorm stays in eval mode and no weight changes; every module's train/eval flag is restored.

    :param model: a model quantized by :func:`flatenn.quantize_model` (or built of flatenn's quantized layers).
    :param data: an iterable of input tensors or of (input, target) pairs (a DataLoader works), or one tensor.
    :param batches: use at most that many batches (None: all).
    :param observer: ``"minmax"``, ``"percentile"`` or ``"ema"``, as above.
    :param percentile: the percentile of the ``"percentile"`` observer, in (0, 100].
    :returns: the number of batches used.
    :raises ValueError: for an unknown observer, a bad ``batches`` or ``percentile``, non-finite inputs, or a
        model without activation quantizers.
    """
    from .determinism import model_device, model_dtype

    if observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches < 1):
        raise ValueError(f"batches must be a whole number >= 1 (or None for all), got {batches!r}")
    if observer == "percentile" and not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    quantizers = [q for q in act_quantizers(model) if q.bits is not None]
    modes = {m: m.training for m in model.modules()}
    device, dtype = model_device(model), model_dtype(model)
    stats: dict[ActQuant, list] = {q: [] for q in quantizers}
    hooks = []
    saved_bits = {q: q.bits for q in quantizers}

    def observe(q: ActQuant, args) -> None:
        x = args[0].detach()
        if observer == "minmax":
            stats[q].append(
                (float(x.abs().max() if isinstance(q, InputQuant) else x.max().clamp(min=0)), bool(x.min() < 0))
            )
        else:
            v = (x.abs() if isinstance(q, InputQuant) else x.clamp(min=0)).float().reshape(-1).cpu()
            stats[q].append((v[:: max(1, v.numel() // 1_000_000)], bool(x.min() < 0)))

    used = 0
    try:
        model.eval()
        if observer == "ema":
            for q in quantizers:
                q.train()
        else:
            for q in quantizers:
                hooks.append(q.register_forward_pre_hook(observe))
                q.bits = None  # pass-through while observing: the model runs in float
        for batch in _as_batch_list(data):
            if batches is not None and used >= batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = torch.as_tensor(x).to(device)
            if x.is_floating_point() and dtype is not None and x.dtype != dtype:
                x = x.to(dtype)  # as the model computes (a float64 1e39 becomes inf in float32)
            _check_finite(x, used)
            model(x)
            used += 1
    finally:
        for h in hooks:
            h.remove()
        for q, b in saved_bits.items():
            q.bits = b
        for m, t in modes.items():
            m.training = t
    if used == 0:
        raise ValueError("calibrate_activations got no batches: pass a non-empty data loader or list of inputs")
    if observer != "ema":
        for q, seen in stats.items():
            if not seen:
                continue  # a quantizer the data never reached keeps its state
            if observer == "minmax":
                clip = max(v for v, _ in seen)
            else:
                values = torch.cat([v for v, _ in seen])
                clip = float(torch.quantile(values[:: max(1, values.numel() // 16_000_000)], percentile / 100))
            q.clip.fill_(clip)
            q.calibrated.fill_(True)
            if isinstance(q, InputQuant):
                q.signed.fill_(any(neg for _, neg in seen))
    return used


def model_codes(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Codes and scales of every quantized layer, by layer name."""
    return {n: weight_codes(m) for n, m in quantized_layers(model).items()}


def load_model_codes(model: nn.Module, codes: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Load a :func:`model_codes` dictionary back into a model of the same architecture."""
    layers = quantized_layers(model)
    missing = set(layers) - set(codes)
    if missing:
        raise KeyError(f"no codes given for layers {sorted(missing)}")
    for name, (c, s) in codes.items():
        if name not in layers:
            raise KeyError(f"model has no quantized layer {name!r}")
        load_codes(layers[name], c, s)
