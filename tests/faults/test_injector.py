import numpy as np
import pytest
import torch

from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import dequantize, frozen, model_codes
from flatenn.faults.injector import FaultInjector
from flatenn.faults.sampling import FaultMap, apply_fault_to_codes
from tests.helpers import calibrated


@pytest.fixture
def model():
    torch.manual_seed(0)
    return calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (32, 1, 8, 8))


@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_apply_writes_expected_codes_and_restore_is_exact(model, fault_model):
    clean = model_codes(model)
    with frozen(model) as layers:
        before = {n: (m.codes.clone(), m.frozen_weight.clone()) for n, m in layers.items()}
        inj = FaultInjector(model)
        maps = inj.sample(seed=0, trial=0, rate=0.05)
        with inj.applied(maps, fault_model) as (nbits, changed):
            assert nbits == sum(m.faulty_bits for m in maps.values()) and 0 < changed <= nbits
            for name, m in layers.items():
                fm = maps[name]
                flat = m.codes.view(-1).numpy()
                expect = apply_fault_to_codes(clean[name][0].view(-1).numpy()[fm.weight_index], fm.mask, fault_model, 8)
                assert np.array_equal(flat[fm.weight_index], expect)
                assert torch.equal(m.frozen_weight, dequantize(m.codes, m.code_scale))
        for name, m in layers.items():
            assert torch.equal(m.codes, before[name][0]) and torch.equal(m.frozen_weight, before[name][1])


def test_exception_mid_campaign_leaves_model_clean(model):
    x = torch.randn(8, 1, 8, 8)
    with frozen(model):
        ref = model(x)
        inj = FaultInjector(model)
        with pytest.raises(RuntimeError, match="boom"):
            with inj.applied(inj.sample(0, 0, rate=0.1), "bitflip"):
                assert not torch.equal(model(x), ref)
                raise RuntimeError("boom")
        assert torch.equal(model(x), ref)


def test_layer_filter_and_errors(model):
    with frozen(model):
        inj = FaultInjector(model, layer_filter="classifier")
        assert list(inj.layers) == ["classifier"]
        with pytest.raises(ValueError, match="no quantized layers"):
            FaultInjector(model, layer_filter="nothing-matches")
    with pytest.raises(RuntimeError, match="freeze"):
        FaultInjector(model)
    fp = build_model(ModelSpec("cnn_digits", width=4, w_bits=None), 8)
    with frozen(fp), pytest.raises(ValueError, match="no quantized layers"):
        FaultInjector(fp)


@pytest.mark.parametrize("dense", [0.0, 1.0])  # restore copies whole layers back / scatters only what changed
@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_trials_prepared_together_write_what_maps_write_one_by_one(model, fault_model, dense, monkeypatch):
    import flatenn.faults.injector as injector

    monkeypatch.setattr(injector, "DENSE_RESTORE", dense)
    x = torch.randn(16, 1, 8, 8)
    with frozen(model) as layers:
        clean = {n: (m.codes.clone(), m.frozen_weight.clone()) for n, m in layers.items()}
        inj = FaultInjector(model)
        trials = [0, 5, 2]
        maps = inj.sample_trials(3, trials, rate=0.02)
        assert all(
            np.array_equal(a[n].weight_index, inj.sample(3, t, rate=0.02)[n].weight_index)
            for a, t in zip(maps, trials, strict=True)
            for n in a
        )
        for m, prepared in zip(maps, inj.prepare_trials(maps, fault_model), strict=True):
            with inj.applied(m, fault_model) as counts:
                expect = {n: (l.codes.clone(), l.frozen_weight.clone()) for n, l in layers.items()}
                logits = model(x)
            with inj.applied(prepared) as prepared_counts:
                assert prepared_counts == counts
                assert all(torch.equal(l.codes, expect[n][0]) for n, l in layers.items())
                assert all(torch.equal(l.frozen_weight, expect[n][1]) for n, l in layers.items())
                assert torch.equal(model(x), logits)
            assert all(torch.equal(l.codes, clean[n][0]) for n, l in layers.items())
            assert all(torch.equal(l.frozen_weight, clean[n][1]) for n, l in layers.items())


def test_apply_needs_a_fault_model_for_raw_maps(model):
    with frozen(model):
        inj = FaultInjector(model)
        with pytest.raises(ValueError, match="fault model"):
            inj.apply(inj.sample(0, 0, rate=0.1))


@pytest.mark.parametrize("w_bits", [4, 8, 12])  # int8 / int8 / int16 copies of the clean codes
@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_values_only_writes_the_same_weights_and_leaves_codes_clean(fault_model, w_bits):
    torch.manual_seed(1)
    m = calibrated(build_model(ModelSpec("cnn_digits", width=4, w_bits=w_bits), 8), (32, 1, 8, 8))
    x = torch.randn(16, 1, 8, 8)
    with frozen(m) as layers:
        clean = {n: (l.codes.clone(), l.frozen_weight.clone()) for n, l in layers.items()}
        both, values_only = FaultInjector(m), FaultInjector(m, write_codes=False)
        maps = both.sample(seed=4, trial=1, rate=0.05)
        with both.applied(maps, fault_model) as counts:
            expect = {n: (l.codes.clone(), l.frozen_weight.clone()) for n, l in layers.items()}
            logits = m(x)
        assert any(not torch.equal(expect[n][0], clean[n][0]) for n in layers)  # the faults did change codes
        with values_only.applied(maps, fault_model) as values_counts:
            assert values_counts == counts
            assert all(torch.equal(l.codes, clean[n][0]) for n, l in layers.items())
            assert all(torch.equal(l.frozen_weight, expect[n][1]) for n, l in layers.items())
            assert torch.equal(m(x), logits)
        assert all(torch.equal(l.frozen_weight, clean[n][1]) for n, l in layers.items())


def test_channel_scales_of_concatenated_trials_equal_scale_by_division():
    from flatenn.faults.injector import _channel_scales

    rng = np.random.default_rng(0)
    scale, per_channel = rng.random(7).astype(np.float32), 9
    segments = [np.unique(rng.integers(0, 63, size)) for size in (0, 1, 40, 63, 5)]
    segments.append(np.array([0, 8, 9, 62]))  # channel edges
    idx = np.concatenate(segments).astype(np.int64)
    sizes = np.array([s.size for s in segments])
    assert np.array_equal(_channel_scales(scale, per_channel, idx, sizes), scale[idx // per_channel])
    for seg in segments:  # one trial's sorted indices: the binary-search path
        assert np.array_equal(_channel_scales(scale, per_channel, seg, np.array([seg.size])), scale[seg // per_channel])


def _one_layer(model):
    inj = FaultInjector(model)
    return inj, next(iter(inj.memory))


@pytest.mark.parametrize(
    "weight_index,mask,faulty_bits,match",
    [
        ([0, 1], [1 << 8, 1 << 9], 2, "masks in 1..255"),  # bits at and above the 8-bit code width
        ([0], [0], 0, "masks in 1..255"),  # a mask that names no bit
        ([3, 1], [1, 1], 2, "sorted, unique"),
        ([1, 1], [1, 2], 2, "sorted, unique"),
        ([10**7], [1], 1, "sorted, unique"),
        ([1], [3], 1, "faulty_bits is 1, its masks set 2"),
        ([], [], 3, "no weight index"),
    ],
)
def test_a_map_the_memory_cannot_hold_is_refused(model, weight_index, mask, faulty_bits, match):
    """A mask bit beyond the code would be counted as a faulty bit and a changed weight though nothing changed."""
    with frozen(model):
        inj, name = _one_layer(model)
        fmap = FaultMap(np.array(weight_index, dtype=np.int64), np.array(mask, dtype=np.int64), faulty_bits)
        with pytest.raises(ValueError, match=match):
            inj.apply({name: fmap}, "bitflip")
        assert not inj._touched  # nothing was written


def test_a_map_of_a_layer_the_injector_does_not_hold_is_refused(model):
    with frozen(model):
        inj = FaultInjector(model, layer_filter="classifier")
        fmap = FaultMap(np.array([0]), np.array([1]), 1)
        with pytest.raises(ValueError, match="not one of the injector's quantized layers"):
            inj.apply({"features.0": fmap}, "bitflip")


def test_four_bit_codes_refuse_bits_four_and_nine_but_take_bit_three():
    torch.manual_seed(0)
    m = calibrated(build_model(ModelSpec("cnn_digits", width=4, w_bits=4), 8), (32, 1, 8, 8))
    with frozen(m):
        inj, name = _one_layer(m)
        with pytest.raises(ValueError, match="masks in 1..15"):
            inj.apply({name: FaultMap(np.array([0, 1]), np.array([1 << 4, 1 << 9]), 2)}, "bitflip")
        assert inj.apply({name: FaultMap(np.array([0]), np.array([1 << 3]), 1)}, "bitflip") == (1, 1)
        inj.restore()
