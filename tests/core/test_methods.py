"""The registered training methods beyond SGD/SAQ/SAM: ASAM, weight clipping, and the config fields they add."""

from __future__ import annotations

import glob
import json

import pytest
import torch
import torch.nn.functional as F

from flatenn.core.methods import METHODS, get_method
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import quantized_layers
from flatenn.core.train import LATER_FIELDS, TrainConfig


def _setup(optimizer: str, **fields):
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn_digits", width=4), 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    config = TrainConfig(width=4, optimizer=optimizer, **fields)
    return model, opt, get_method(optimizer)(model, opt, config, F.cross_entropy)


def _batch(i: int = 0):
    g = torch.Generator().manual_seed(i)
    return torch.randn(32, 1, 8, 8, generator=g) * 3, torch.randint(0, 10, (32,), generator=g)


def test_new_config_fields_leave_every_shipped_key_unchanged():
    files = glob.glob("results/*/models/*.json")
    assert files
    for f in files:
        meta = json.load(open(f))
        config = TrainConfig.from_dict(meta["record"]["config"])
        assert config.key() == meta["key"]
        at_default = {f for f in LATER_FIELDS if getattr(config, f) == getattr(TrainConfig(), f)}
        assert not at_default & set(config.to_dict())  # a later field at its default is not in the key
    assert "w_max" in TrainConfig(optimizer="clip", w_max=0.1).to_dict()
    assert TrainConfig(optimizer="clip", w_max=0.1).key() != TrainConfig(optimizer="clip", w_max=0.2).key()


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(optimizer="sgd", w_max=0.1), "does not apply"),
        (dict(optimizer="saq", p_train=0.01), "does not apply"),
        (dict(optimizer="clip"), "needs w_max"),
        (dict(optimizer="clip", w_max=-1.0), "needs w_max|w_max must be > 0"),
        (dict(optimizer="asam", eta=-0.5), "eta"),
        (dict(optimizer="randbet"), "p_train"),
        (dict(optimizer="randbet", p_train=1.5), "rate"),
    ],
)
def test_bad_method_fields_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_registry_holds_the_mitigation_methods():
    assert {"sgd", "saq", "sam", "asam", "clip", "randbet"} <= set(METHODS)


def test_weight_clipping_keeps_every_quantized_weight_in_bounds_from_the_start():
    model, opt, method = _setup("clip", w_max=0.05)
    layers = quantized_layers(model)
    bound = torch.tensor(0.05)  # the float32 bound the clamp uses
    assert all(bool(layer.weight.abs().max() <= bound) for layer in layers.values())
    for i in range(5):
        method.step(*_batch(i))
        assert all(bool(layer.weight.abs().max() <= bound) for layer in layers.values())
    assert any(bool(layer.weight.abs().max() == bound) for layer in layers.values())  # the bound is reached


def test_weight_clipping_step_is_sgd_then_clamp():
    a, _, clip = _setup("clip", w_max=0.05)
    b, opt_b, sgd = _setup("sgd")
    b.load_state_dict(a.state_dict())
    x, y = _batch(3)
    clip.step(x, y)
    sgd.step(x, y)
    for name, layer in quantized_layers(b).items():
        assert torch.equal(quantized_layers(a)[name].weight, layer.weight.clamp(-0.05, 0.05))


def test_asam_method_uses_the_config_radius_and_offset():
    _, _, method = _setup("asam", rho=0.5, eta=0.02)
    assert method.wrapper.rho == 0.5 and method.wrapper.eta == 0.02
