"""Model registry: small CNN for 8x8 digits, CIFAR-style ResNet-8/20 and ResNet-18.

Every model is built from :class:`~flatenn.core.quant.QConv2d`/:class:`~flatenn.core.quant.QLinear`
(b-bit weights), BatchNorm, and an activation block ``Sequential(ReLU|FATReLU, ActQuant)``
(unsigned b-bit activations). The network input is not quantized (it is the data). With
``quantize_first_last=False`` the first conv and the classifier stay in floating point and are
not part of the fault-prone weight memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .activations import make_activation
from .quant import ActQuant, QConv2d, QLinear


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model; part of the training config hash."""

    name: str
    num_classes: int = 10
    in_channels: int = 1
    activation: str = "relu"
    threshold: float = 0.0
    w_bits: int | None = 8
    a_bits: int | None = 8
    width: int = 16
    quantize_first_last: bool = True


class _Builder:
    """Helpers that apply one spec's bit widths and activation to every layer."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def conv(self, cin: int, cout: int, k: int = 3, stride: int = 1, edge: bool = False) -> QConv2d:
        bits = self.spec.w_bits if (self.spec.quantize_first_last or not edge) else None
        return QConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False, w_bits=bits)

    def linear(self, cin: int, cout: int, edge: bool = True) -> QLinear:
        bits = self.spec.w_bits if (self.spec.quantize_first_last or not edge) else None
        return QLinear(cin, cout, w_bits=bits)

    def act(self) -> nn.Sequential:
        return nn.Sequential(make_activation(self.spec.activation, self.spec.threshold), ActQuant(self.spec.a_bits))


class DigitsCNN(nn.Module):
    """Three 3x3 conv layers (w, 2w, 2w channels) with BN, two 2x2 max-pools, one classifier."""

    def __init__(self, spec: ModelSpec, input_size: int = 8) -> None:
        super().__init__()
        b, w = _Builder(spec), spec.width
        self.features = nn.Sequential(
            b.conv(spec.in_channels, w, edge=True),
            nn.BatchNorm2d(w),
            b.act(),
            b.conv(w, 2 * w),
            nn.BatchNorm2d(2 * w),
            b.act(),
            nn.MaxPool2d(2),
            b.conv(2 * w, 2 * w),
            nn.BatchNorm2d(2 * w),
            b.act(),
            nn.MaxPool2d(2),
        )
        side = input_size // 4
        self.classifier = b.linear(2 * w * side * side, spec.num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """conv-BN-act-conv-BN plus shortcut (1x1 conv-BN when the shape changes), then act."""

    def __init__(self, b: _Builder, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = b.conv(cin, cout, stride=stride), nn.BatchNorm2d(cout), b.act()
        self.conv2, self.bn2 = b.conv(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(b.conv(cin, cout, k=1, stride=stride), nn.BatchNorm2d(cout))
        self.act2 = b.act()

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stem (no max-pool), stages of BasicBlocks, global average pool."""

    def __init__(self, spec: ModelSpec, blocks: list[int], widths: list[int], strides: list[int]) -> None:
        super().__init__()
        b = _Builder(spec)
        self.stem = nn.Sequential(b.conv(spec.in_channels, widths[0], edge=True), nn.BatchNorm2d(widths[0]), b.act())
        layers, cin = [], widths[0]
        for n, cout, stride in zip(blocks, widths, strides, strict=True):
            for i in range(n):
                layers.append(BasicBlock(b, cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = b.linear(cin, spec.num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def _cifar_resnet(depth: int) -> Callable[[ModelSpec, int], nn.Module]:
    n = (depth - 2) // 6

    def build(spec: ModelSpec, input_size: int) -> nn.Module:
        w = spec.width
        return ResNet(spec, [n, n, n], [w, 2 * w, 4 * w], [1, 2, 2])

    return build


def _resnet18(spec: ModelSpec, input_size: int) -> nn.Module:
    w = spec.width
    return ResNet(spec, [2, 2, 2, 2], [w, 2 * w, 4 * w, 8 * w], [1, 2, 2, 2])


MODELS: dict[str, Callable[[ModelSpec, int], nn.Module]] = {
    "cnn_digits": lambda spec, size: DigitsCNN(spec, size),
    "resnet8": _cifar_resnet(8),
    "resnet20": _cifar_resnet(20),
    "resnet18": _resnet18,
}


def build_model(spec: ModelSpec, input_size: int) -> nn.Module:
    """Build a registered model (``cnn_digits``, ``resnet8``, ``resnet20``, ``resnet18``).

    ``spec.width`` is the first stage's channel count (16 for ResNet-20, 64 for ResNet-18 as in
    the papers). ``input_size`` is the image side (8 for digits, 28 Fashion-MNIST, 32 CIFAR-10).
    """
    if spec.name not in MODELS:
        raise ValueError(f"unknown model {spec.name!r}; registered: {sorted(MODELS)}")
    if spec.name == "cnn_digits" and input_size % 4:
        raise ValueError(f"cnn_digits needs an input side divisible by 4, got {input_size}")
    return MODELS[spec.name](spec, input_size)
