import numpy as np
import pytest
import torch

from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import dequantize, frozen, model_codes
from flatenn.faults.injector import FaultInjector
from flatenn.faults.sampling import apply_fault_to_codes
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
