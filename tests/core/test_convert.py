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


@pytest.mark.parametrize(
    "factory,shape",
    [
        (lambda: torchvision.models.resnet18(weights=None, num_classes=10), (4, 3, 32, 32)),
        (lambda: torchvision.models.mobilenet_v3_small(weights=None, num_classes=10), (4, 3, 32, 32)),
        (SharedGrouped, (4, 3, 8, 8)),
    ],
)
def test_quantize_calibrate_frozen_equals_fake_quant_and_names_kept(factory, shape):
    torch.manual_seed(0)
    model = factory().eval()
    float_names = set(model.state_dict())
    float_params = {k: v.clone() for k, v in model.state_dict().items()}
    model = _ready(model, shape)
    state = model.state_dict()
    assert float_names <= set(state)
    assert all(
        torch.equal(state[k], v) for k, v in float_params.items() if "running" not in k and "num_batches" not in k
    )
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


def _to_int8(ao: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eager-mode torch.ao flow in place (symmetric per-channel int8 weights, calibrated on ``x``); its output on x."""
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
    ao.qconfig = tq.QConfig(
        activation=tq.MinMaxObserver.with_args(dtype=torch.quint8),
        weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
    )
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # torch.ao's quantized kernels have no deterministic variant
    try:
        tq.prepare(ao, inplace=True)
        ao(x)
        tq.convert(ao, inplace=True)
        return ao(x)
    finally:
        torch.use_deterministic_algorithms(deterministic)


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
    x = torch.randn(16, 3, 8, 8)
    reference = _to_int8(ao, x)
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


@pytest.mark.slow
def test_example_script_runs_end_to_end():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, str(root / "examples" / "own_model.py")],
        capture_output=True,
        text=True,
        timeout=3600,  # a hang guard only (it takes seconds on an idle machine), never a speed check
        cwd=root,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ms per trial" in r.stdout and "bitflip" in r.stdout and "lambda_max" in r.stdout
    assert "converged: True" in r.stdout or "lower bound" in r.stdout  # an unconverged estimate says what it is


class _ConvBnNet(nn.Module):
    """The standard eager-mode layout: conv (no bias) + BatchNorm + ReLU, fused before prepare."""

    def __init__(self):
        import torch.ao.quantization as tq

        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU()
        self.fc = nn.Linear(6 * 6 * 6, 5)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(self.quant(x))))
        return self.dequant(self.fc(x.reshape(len(x), -1)))


@pytest.mark.parametrize("float_flow", ["unfused", "fused"])
def test_torch_ao_import_of_a_fused_conv_bn_relu_model_matches_the_int8_model(float_flow):
    import copy

    import torch.ao.quantization as tq

    torch.manual_seed(0)
    float_model = _ConvBnNet().eval()
    with torch.no_grad():  # a BatchNorm that is far from the identity, so applying it twice shows
        float_model.bn.running_mean.uniform_(-1, 1)
        float_model.bn.running_var.uniform_(0.5, 2)
        float_model.bn.weight.uniform_(0.5, 2)
        float_model.bn.bias.uniform_(-1, 1)
    ao = tq.fuse_modules(copy.deepcopy(float_model), [["conv", "bn", "relu"]])
    given = (
        float_model
        if float_flow == "unfused"
        else tq.fuse_modules(copy.deepcopy(float_model), [["conv", "bn", "relu"]])
    )
    x = torch.randn(32, 3, 8, 8)
    reference = _to_int8(ao, x)
    ours = import_torch_ao(copy.deepcopy(given), ao)
    assert torch.equal(
        quantized_layers(ours)[next(iter(quantized_layers(ours)))].codes, ao.conv.weight().int_repr().to(torch.int32)
    )
    with torch.no_grad(), frozen(ours):
        rel = float((ours(x) - reference).norm() / reference.norm())
    float_rel = float((float_model(x) - reference).norm() / reference.norm())
    assert rel < max(2 * float_rel, 0.02)  # as close to the int8 model as float is (was ~2.2: BN applied twice)


def test_conv_and_linear_subclasses_are_converted_or_named():
    class MyLinear(nn.Linear):
        pass

    class Doubled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    m = quantize_model(nn.Sequential(nn.Linear(3, 4), MyLinear(4, 2)), a_bits=None)
    assert set(quantized_layers(m)) == {"0", "1"}
    with pytest.raises(UnsupportedLayerError, match=r"\['1'\]"):
        quantize_model(nn.Sequential(nn.Linear(3, 4), Doubled(4, 2)))


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"not a torch file", "not a readable torch file"),
        ("module", "nn.Module"),
        ("other", "another architecture"),
    ],
)
def test_bad_weights_files_are_one_clear_line(tmp_path, content, match):
    from flatenn.core.convert import load_weights

    path = tmp_path / "w.pt"
    if content == "module":
        torch.save(nn.Linear(2, 2), path)
    elif content == "other":
        torch.save(nn.Sequential(nn.Linear(3, 7)).state_dict(), path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as e:
        load_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), str(path), "tests:model")
    assert len(str(e.value).splitlines()) == 1 and len(str(e.value)) < 400


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_models_of_other_float_types_are_converted_and_run_a_campaign(dtype):
    from flatenn.faults.campaign import run_campaign

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).to(dtype)
    with pytest.warns(UserWarning, match="converted to float32"):
        quantize_model(m)
    x, y = np.random.default_rng(0).standard_normal((20, 1, 8, 8)), np.arange(20) % 10  # NumPy inputs
    calibrate_activations(m, torch.as_tensor(x))  # one tensor is one batch
    df = run_campaign(m, x, y, "bitflip", rates=0.05, trials=2, progress=False)  # a scalar rate
    assert len(df) == 2 and (df["faulty_bits"] > 0).all()
    with pytest.raises(ValueError, match="model.float"):
        run_campaign(m.double(), x, y, "bitflip", rates=0.05, trials=1, progress=False)
