import pytest
import torch

from flatenn.core.activations import FATReLU
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import QConv2d, quantized_layers
from tests.helpers import calibrated


@pytest.mark.parametrize(
    "name,width,size,channels,n_quant",
    [("cnn_digits", 4, 8, 1, 4), ("resnet8", 4, 28, 1, 10), ("resnet20", 16, 32, 3, 22), ("resnet18", 8, 32, 3, 21)],
)
def test_registry_shapes_and_quantized_layers(name, width, size, channels, n_quant):
    m = calibrated(build_model(ModelSpec(name, width=width, in_channels=channels), size), (4, channels, size, size))
    out = m(torch.randn(2, channels, size, size))
    assert out.shape == (2, 10)
    assert len(quantized_layers(m)) == n_quant


def test_resnet20_stage_widths():
    m = build_model(ModelSpec("resnet20", width=16, in_channels=3), 32)
    widths = sorted({mod.out_channels for mod in m.modules() if isinstance(mod, QConv2d)})
    assert widths == [16, 32, 64]


def test_fatrelu_models_use_threshold():
    m = build_model(ModelSpec("cnn_digits", width=4, activation="fatrelu", threshold=0.7), 8)
    acts = [mod for mod in m.modules() if isinstance(mod, FATReLU)]
    assert len(acts) == 3 and all(a.threshold == 0.7 for a in acts)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="registered"):
        build_model(ModelSpec("vgg"), 32)
