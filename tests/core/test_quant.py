import pytest
import torch

from flatenn.core.quant import (
    ActQuant,
    QConv2d,
    QLinear,
    calibrate_activations,
    dequantize,
    fake_quant_weight,
    frozen,
    load_codes,
    load_model_codes,
    model_codes,
    quantize_weight,
    quantized_layers,
    weight_codes,
)
from tests.helpers import calibrated


def test_hand_computed_weight_quantization():
    w = torch.tensor([[1.0, -0.6, 0.25], [0.1, 0.3, -0.4]])
    codes, scale = quantize_weight(w, 4)  # qmax = 7
    assert torch.allclose(scale, torch.tensor([1.0 / 7, 0.4 / 7]))
    assert codes.tolist() == [[7, -4, 2], [2, 5, -7]]  # -4.2 -> -4, 1.75 -> 2; 1.75 -> 2, 5.25 -> 5
    assert codes.dtype == torch.int32


def test_codes_within_symmetric_range_and_roundtrip_exact():
    torch.manual_seed(0)
    layer = QConv2d(3, 5, 3, w_bits=6)
    codes, scale = weight_codes(layer)
    assert int(codes.abs().max()) <= 31
    x = torch.randn(2, 3, 8, 8)
    y_latent = layer(x)
    load_codes(layer, codes, scale)
    assert torch.equal(layer(x), y_latent)  # same values through both paths
    c2, s2 = weight_codes(layer)
    assert torch.equal(c2, codes) and torch.equal(s2, scale)


def test_loaded_codes_are_used_exactly():
    layer = QLinear(3, 2, bias=False, w_bits=8)
    codes = torch.tensor([[1, -128, 127], [0, 5, -5]], dtype=torch.int32)
    scale = torch.tensor([0.5, 0.25])
    load_codes(layer, codes, scale)
    out = layer(torch.eye(3))
    assert torch.equal(out.T, dequantize(codes, scale))
    assert out[1, 0].item() == -64.0


def test_load_codes_rejects_bad_input():
    layer = QLinear(3, 2, w_bits=4)
    with pytest.raises(ValueError, match="range"):
        load_codes(layer, torch.full((2, 3), 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="shape"):
        load_codes(layer, torch.zeros((3, 2), dtype=torch.int32))
    with pytest.raises(TypeError):
        load_codes(layer, torch.zeros((2, 3)))


@pytest.mark.parametrize("bits", [1, 17, 0, 8.0, True])
def test_bad_bit_width_is_a_clear_error(bits):
    with pytest.raises(ValueError, match="bit width must be an integer in 2..16"):
        QLinear(2, 2, w_bits=bits)


def test_weight_ste_passes_gradient():
    w = torch.tensor([[0.3, -0.7]], requires_grad=True)
    fake_quant_weight(w, 8).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_activation_ste_passes_inside_blocks_outside():
    q = ActQuant(bits=4).eval()
    q.clip.fill_(1.0)
    q.calibrated.fill_(True)
    x = torch.tensor([-0.5, 0.3, 0.9, 1.5], requires_grad=True)
    y = q(x)
    assert torch.allclose(y, torch.tensor([0.0, 4 / 15, 13 / 15, 1.0]))
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_activation_clip_calibrates_in_training_only():
    q = ActQuant(bits=8, momentum=0.5)
    q(torch.tensor([0.0, 2.0]))
    assert q.clip.item() == 2.0
    q(torch.tensor([0.0, 4.0]))
    assert q.clip.item() == 3.0
    q.eval()
    q(torch.tensor([10.0]))
    assert q.clip.item() == 3.0


def test_model_codes_roundtrip_and_frozen_context():
    from flatenn.core.models import ModelSpec, build_model

    torch.manual_seed(0)
    m = calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (16, 1, 8, 8))
    x = torch.randn(4, 1, 8, 8)
    before = m(x)
    codes = model_codes(m)
    assert set(codes) == set(quantized_layers(m))
    with frozen(m) as layers:
        assert all(layer.is_frozen for layer in layers.values())
        assert torch.equal(m(x), before)
    assert not any(layer.is_frozen for layer in quantized_layers(m).values())
    load_model_codes(m, codes)
    assert torch.equal(m(x), before)


def test_float_first_last_are_outside_the_weight_memory():
    from flatenn.core.models import ModelSpec, build_model

    m = build_model(ModelSpec("cnn_digits", width=4, quantize_first_last=False), 8)
    names = list(quantized_layers(m))
    assert "features.0" not in names and "classifier" not in names and len(names) == 2


def test_uncalibrated_activation_quantizer_raises_in_eval_and_calibration_fixes_it():
    from flatenn.core.quant import UncalibratedError, calibrate_activations

    q = ActQuant(bits=8)
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(3), q).eval()
    with pytest.raises(UncalibratedError, match="calibrate"):
        model(torch.randn(4, 3))
    bn_before = model[0].running_mean.clone()
    calibrate_activations(model, [torch.randn(8, 3), torch.randn(8, 3)])
    assert bool(q.calibrated) and q.clip.item() > 0
    assert torch.equal(model[0].running_mean, bn_before) and not model.training  # BN untouched, modes kept
    assert model(torch.randn(4, 3)).unique().numel() > 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_raise_on_training_and_frozen_paths(bad):
    from flatenn.core.quant import NonFiniteWeightError, freeze_layer

    layer = QLinear(3, 2, w_bits=8)
    with torch.no_grad():
        layer.weight[1, 0] = bad
    with pytest.raises(NonFiniteWeightError, match="channel"):
        layer(torch.randn(1, 3))
    with pytest.raises(NonFiniteWeightError):
        freeze_layer(layer)


def test_underflowing_channel_scale_gives_valid_codes():
    w = torch.tensor([[1e-45, -1e-45], [0.5, -0.25], [0.0, 0.0]])
    codes, scale = quantize_weight(w, 8)
    assert torch.all(scale > 0) and codes.abs().max() <= 127
    assert codes[0].tolist() == [0, 0] and codes[1].tolist() == [127, -64] and codes[2].tolist() == [0, 0]


def test_codes_of_channels_last_weights_are_contiguous():
    conv = QConv2d(3, 4, 3, w_bits=8).to(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    with frozen(conv):
        assert conv.codes.is_contiguous() and conv.frozen_weight.is_contiguous()


def _one_quantizer_model():
    from torch import nn

    from flatenn.core.convert import quantize_model

    torch.manual_seed(0)
    return quantize_model(nn.Sequential(nn.Linear(4, 3)), w_bits=8, a_bits=8)


def test_observers_set_the_clip_as_defined():
    from flatenn.core.quant import act_quantizers

    batches = [torch.full((2, 4), 1.0), torch.full((2, 4), -3.0), torch.full((2, 4), 2.0)]
    m = _one_quantizer_model()
    calibrate_activations(m, batches)  # running min/max: max |x| over all batches, signed because x < 0 occurs
    q = act_quantizers(m)[0]
    assert float(q.clip) == 3.0 and bool(q.signed)
    m = _one_quantizer_model()
    calibrate_activations(m, batches, observer="ema")  # EMA of batch max |x|, momentum 0.1: 1 -> 1.2 -> 1.28
    assert float(act_quantizers(m)[0].clip) == pytest.approx(0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * 2)
    m = _one_quantizer_model()
    values = torch.arange(1, 1001, dtype=torch.float32).reshape(250, 4)
    calibrate_activations(m, values, observer="percentile", percentile=50.0)  # one tensor = one batch
    assert float(act_quantizers(m)[0].clip) == pytest.approx(500.5)
    m = _one_quantizer_model()
    assert calibrate_activations(m, batches, batches=2) == 2  # the limit is called `batches`
    assert float(act_quantizers(m)[0].clip) == 3.0


def test_minmax_calibration_does_not_clip_held_out_data_of_the_same_range():
    """The EMA of batch maxima sits below the largest values, so held-out data is clipped (issue 20.6)."""
    from torch import nn

    from flatenn.core.convert import quantize_model

    g = torch.Generator().manual_seed(0)
    calib = [torch.randn(64, 16, generator=g) * (1 + (i % 4)) for i in range(8)]
    held_out = (torch.randn(256, 16, generator=g) * 3).clamp(-10, 10)  # inside the calibration range (~13)
    torch.manual_seed(1)
    base = nn.Sequential(nn.Linear(16, 8))
    ref = base(held_out).detach()
    errs = {}
    for observer in ("ema", "minmax"):
        m = quantize_model(nn.Sequential(nn.Linear(16, 8)), w_bits=16, a_bits=16)
        m[0].weight.data.copy_(base[0].weight.data)
        m[0].bias.data.copy_(base[0].bias.data)
        calibrate_activations(m, calib, observer=observer)
        errs[observer] = float((m.eval()(held_out) - ref).norm() / ref.norm())
    assert errs["minmax"] < 1e-3 < errs["ema"]


@pytest.mark.parametrize("bad", [float("nan"), 1e39])
def test_non_finite_calibration_data_is_rejected(bad):
    x = torch.randn(4, 4, dtype=torch.float64)
    x[1, 2] = bad  # finite in float64, infinite in the model's float32
    with pytest.raises(ValueError, match="NaN or infinite"):
        calibrate_activations(_one_quantizer_model(), [x])
