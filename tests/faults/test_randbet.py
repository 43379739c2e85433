"""Random bit error training (Stutz et al.): the injected errors are flatenn's sampled maps, removed before the
update, and the update averages the clean and the perturbed gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import dequantize, quantize_weight, quantized_layers
from flatenn.core.train import TrainConfig, fit
from flatenn.faults.randbet import RandBETMethod, bit_error_perturbations, randbet_seed
from flatenn.faults.sampling import apply_fault_to_codes, sample_rate_maps


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelSpec("cnn_digits", width=4), 8)


def _batch(i: int = 0):
    g = torch.Generator().manual_seed(i)
    return torch.randn(32, 1, 8, 8, generator=g) * 3, torch.randint(0, 10, (32,), generator=g)


def test_injected_errors_are_the_sampled_bit_flip_map_of_the_declared_rate():
    model = _model()
    eps = bit_error_perturbations(model, seed=5, step=3, rate=0.02)
    layers = quantized_layers(model)
    spec = [(n, l.weight.numel(), l.w_bits) for n, l in layers.items()]
    maps = sample_rate_maps(spec, 5, 3, 0.02)
    assert sum(m.faulty_bits for m in maps.values()) > 0
    for name, layer in layers.items():
        codes, scale = quantize_weight(layer.weight.detach(), layer.w_bits)
        fmap = maps[name]
        flat = codes.reshape(-1).numpy().astype(np.int64).copy()
        flat[fmap.weight_index] = apply_fault_to_codes(flat[fmap.weight_index], fmap.mask, "bitflip", layer.w_bits)
        faulty = dequantize(torch.from_numpy(flat.astype(np.int32)).reshape(codes.shape), scale)
        clean = dequantize(codes, scale)
        hit = torch.zeros(codes.numel(), dtype=torch.bool)
        hit[torch.from_numpy(fmap.weight_index)] = True
        assert torch.equal(eps[name].reshape(-1) != 0, hit)  # exactly the map's weights (flips always change)
        assert torch.allclose(clean + eps[name], faulty, rtol=0, atol=1e-6)  # up to float32 rounding of Q + (F - Q)


def _manual_step(model, x, y, eps, lr):
    """SGD (no momentum) on the average of the clean and the perturbed gradient, by hand: pass 2 runs with the
    activation ranges pass 1 left (frozen), the perturbation added to the quantized weights."""
    from flatenn.core.quant import frozen_ranges

    params = list(model.parameters())
    g_clean = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    layers = quantized_layers(model)
    for n, layer in layers.items():
        layer.perturbation = eps[n]
    with frozen_ranges(model):
        g_pert = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    for layer in layers.values():
        layer.perturbation = None
    return [p.detach() - lr * 0.5 * (a + b) for p, a, b in zip(params, g_clean, g_pert, strict=True)]


def test_errors_are_removed_and_the_update_averages_clean_and_perturbed_gradients():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    config = TrainConfig(width=4, optimizer="randbet", p_train=0.02, seed=4)
    method = RandBETMethod(model, opt, config, F.cross_entropy)
    x, y = _batch(1)
    twin = _model()
    twin.load_state_dict(model.state_dict())
    twin.train()
    model.train()
    eps = bit_error_perturbations(twin, randbet_seed(4), 0, 0.02)
    one_pass = _model()
    one_pass.load_state_dict(model.state_dict())
    one_pass.train()
    one_pass(x)  # the statistics after the clean pass alone
    expected = _manual_step(twin, x, y, eps, 0.1)
    method.step(x, y)
    for (name, b), c in zip(model.named_buffers(), one_pass.buffers(), strict=True):
        assert torch.equal(b, c), name  # the perturbed pass left no trace in BN statistics or clips
    assert all(layer.perturbation is None for layer in quantized_layers(model).values())
    for p, e in zip(model.parameters(), expected, strict=True):
        assert torch.allclose(p, e, atol=1e-5)
    assert method.step_index == 1 and method.state_dict() == {"step_index": 1}


def test_without_errors_a_randbet_step_is_an_sgd_step_bit_for_bit():
    a, b = _model(), _model()
    b.load_state_dict(a.state_dict())
    cfg = TrainConfig(width=4, optimizer="randbet", p_train=1e-9)
    rb = RandBETMethod(a, torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), cfg, F.cross_entropy)
    from flatenn.core.methods import SGDMethod

    sgd = SGDMethod(b, torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9), TrainConfig(width=4), F.cross_entropy)
    for i in range(3):
        x, y = _batch(i)
        rb.step(x, y)
        sgd.step(x, y)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_randbet_clips_and_its_seed_is_not_a_campaign_seed():
    model = _model()
    cfg = TrainConfig(width=4, optimizer="randbet", p_train=0.01, w_max=0.05)
    method = RandBETMethod(model, torch.optim.SGD(model.parameters(), lr=0.5), cfg, F.cross_entropy)
    method.step(*_batch(0))
    assert all(bool(layer.weight.abs().max() <= torch.tensor(0.05)) for layer in quantized_layers(model).values())
    assert randbet_seed(0) != 0 and randbet_seed(0) != randbet_seed(1) and randbet_seed(2023) != 2023


@pytest.mark.parametrize("epochs", [2])
def test_resumed_randbet_training_injects_the_same_errors(tmp_path, epochs):
    from flatenn.core.data import load_digits

    data = load_digits()
    cfg = TrainConfig(width=4, epochs=epochs, optimizer="randbet", p_train=0.01, w_max=0.1, train_subset=200)
    whole, _ = fit(cfg, data, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    import flatenn.core.train as train

    calls = []
    real = train._save_checkpoint

    def stop_after_first(*a, **k):
        real(*a, **k)
        calls.append(1)
        raise KeyboardInterrupt

    train._save_checkpoint = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, data, progress=False, checkpoint=ckpt)
    finally:
        train._save_checkpoint = real
    resumed, _ = fit(cfg, data, progress=False, checkpoint=ckpt)
    assert calls == [1]
    assert all(
        torch.equal(p, q) for p, q in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True)
    )
