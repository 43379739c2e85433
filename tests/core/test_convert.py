"""Bring your own model: quantize_model, calibration, campaigns on converted layers, torch.ao import."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from flatenn.core.convert import UnsupportedLayerError, import_torch_ao, load_named_model, quantize_model
from flatenn.core.quant import UncalibratedError, calibrate_activations, frozen, quantized_layers
from flatenn.faults.injector import FaultInjector
from flatenn.faults.sampling import apply_fault_to_codes


class SharedGrouped(nn.Module):
    """A layer used twice, a bias-less grouped conv, a depthwise conv and a custom block."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.shared = nn.Conv2d(8, 8, 1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 10))

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = self.shared(torch.relu(self.grouped(h)))
        h = self.shared(torch.relu(self.depthwise(h)))  # the same weights again
        return self.head(h)


def _ready(model: nn.Module, shape) -> nn.Module:
    torch.manual_seed(0)
    quantize_model(model)
    calibrate_activations(model, [torch.randn(shape) for _ in range(2)])
    return model.eval()


@pytest.mark.parametrize("factory,shape", [
    (lambda: torchvision.models.resnet18(weights=None, num_classes=10), (4, 3, 32, 32)),
    (lambda: torchvision.models.mobilenet_v3_small(weights=None, num_classes=10), (4, 3, 32, 32)),
    (SharedGrouped, (4, 3, 8, 8)),
])  # fmt: skip
def test_quantize_calibrate_frozen_equals_fake_quant_and_names_kept(factory, shape):
    torch.manual_seed(0)
    model = factory().eval()
    float_names = set(model.state_dict())
    float_params = {k: v.clone() for k, v in model.state_dict().items()}
    model = _ready(model, shape)
    state = model.state_dict()
    assert float_names <= set(state)
    assert all(torch.equal(state[k], v) for k, v in float_params.items() if "running" not in k and "num_batches" not in k)
    x = torch.randn(shape)
    with torch.no_grad():
        fake = model(x)
        with frozen(model):
            assert torch.equal(model(x), fake)
    assert not any(type(m) in (nn.Conv2d, nn.Linear) for m in model.modules())


def test_shared_layer_stays_shared():
    m = quantize_model(SharedGrouped())
    assert len(quantized_layers(m)) == 5 and m.grouped.groups == 4 and m.grouped.bias is None


@pytest.mark.parametrize("channels_last", [False, True])
def test_faults_written_bit_exactly_into_every_converted_layer(channels_last):
    model = _ready(SharedGrouped(), (4, 3, 8, 8))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    with frozen(model) as layers:
        inj = FaultInjector(model)
        clean = {n: layer.codes.clone() for n, layer in layers.items()}
        maps = inj.sample(seed=1, trial=0, rate=0.05)
        with inj.applied(maps, "bitflip"):
            for n, layer in layers.items():
                fmap = maps[n]
                expect = clean[n].reshape(-1).numpy().astype(np.int64).copy()
                expect[fmap.weight_index] = apply_fault_to_codes(expect[fmap.weight_index], fmap.mask, "bitflip", 8)
                assert np.array_equal(layer.codes.reshape(-1).numpy(), expect), n
                assert fmap.faulty_bits > 0, n


def test_unconvertible_layer_and_uncalibrated_model_are_clear_errors():
    from collections import OrderedDict

    with pytest.raises(UnsupportedLayerError, match="conv1d"):
        quantize_model(nn.Sequential(OrderedDict(conv1d=nn.Conv1d(2, 2, 3), fc=nn.Linear(2, 2))))
    with pytest.warns(UserWarning, match="stay in float"):
        quantize_model(nn.Sequential(nn.Conv1d(2, 2, 1), nn.Flatten(), nn.Linear(2, 2)), strict=False)
    m = quantize_model(SharedGrouped()).eval()
    with pytest.raises(UncalibratedError, match="calibrate"):
        m(torch.randn(1, 3, 8, 8))


def test_torch_ao_import_reproduces_int8_codes_and_outputs():
    import torch.ao.quantization as tq

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv = nn.Conv2d(3, 6, 3)
            self.fc = nn.Linear(6 * 6 * 6, 5)

        def forward(self, x):
            x = torch.relu(self.conv(self.quant(x)))
            return self.dequant(self.fc(x.reshape(len(x), -1)))

    torch.manual_seed(0)
    float_model = Net().eval()
    ao = Net().eval()
    ao.load_state_dict(float_model.state_dict())
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
    ao.qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(dtype=torch.quint8),
                            weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                                         qscheme=torch.per_channel_symmetric))  # fmt: skip
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # torch.ao's quantized kernels have no deterministic variant
    try:
        tq.prepare(ao, inplace=True)
        x = torch.randn(16, 3, 8, 8)
        ao(x)
        tq.convert(ao, inplace=True)
        reference = ao(x)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    ours = import_torch_ao(float_model, ao)
    for name, layer in quantized_layers(ours).items():
        w = dict(ao.named_modules())[name].weight()
        assert torch.equal(layer.codes, w.int_repr().to(torch.int32)), name
    with torch.no_grad(), frozen(ours):
        diff = (ours(x) - reference).abs().max().item()
    scale = reference.abs().max().item()
    assert diff < 0.05 * scale  # flatenn keeps activations in float; torch.ao quantizes them to 8 bits


def test_load_named_model_errors_and_torchvision_without_download():
    m = load_named_model("torchvision:resnet18", num_classes=10)
    assert isinstance(m, nn.Module) and m.fc.out_features == 10
    with pytest.raises(ValueError, match="no model"):
        load_named_model("torchvision:nope")
    with pytest.raises(ValueError, match="cannot import"):
        load_named_model("no_such_pkg.mod:factory")


def test_example_script_runs_end_to_end():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "examples" / "own_model.py")], capture_output=True, text=True,
                       timeout=300, cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ms per trial" in r.stdout and "bitflip" in r.stdout and "lambda_max" in r.stdout
