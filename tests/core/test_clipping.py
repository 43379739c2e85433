"""Ranger-style activation clipping: bounds profiled on clean data, applied by hooks that leave the model as it was."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from flatenn.core.activations import activation_modules
from flatenn.core.clipping import clipped, profile_bounds
from flatenn.core.models import ModelSpec, build_model
from tests.helpers import calibrated


@pytest.fixture
def model():
    torch.manual_seed(0)
    return calibrated(
        build_model(ModelSpec("cnn_digits", width=4, activation="fatrelu", threshold=0.1), 8), (32, 1, 8, 8)
    )


def _x(seed: int = 0, n: int = 64):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2


@torch.no_grad()
def test_infinite_bounds_give_the_unclipped_model_exactly(model):
    model.eval()
    x = _x()
    ref = model(x)
    with clipped(model, dict.fromkeys(activation_modules(model), math.inf)):
        assert torch.equal(model(x), ref)


@torch.no_grad()
def test_bounds_profiled_on_data_leave_that_data_unchanged_and_cut_larger_activations(model):
    x = _x()
    bounds = profile_bounds(model, x, batch_size=20)
    assert set(bounds) == set(activation_modules(model)) and all(b > 0 for b in bounds.values())
    model.eval()
    ref = model(x)
    with clipped(model, bounds):
        assert torch.equal(model(x), ref)  # nothing on the profiling data exceeds its own maximum
    first = next(iter(bounds))
    module, bound = activation_modules(model)[first], bounds[first] / 4
    with clipped(model, {first: bound}):
        seen = []
        handle = module.register_forward_hook(lambda m, i, o: seen.append(float(o.max())))  # runs after the clip
        changed = model(_x(1) * 5)
        handle.remove()
    assert seen and max(seen) <= bound
    unclipped = []
    handle = module.register_forward_hook(lambda m, i, o: unclipped.append(float(o.max())))
    assert not torch.equal(model(_x(1) * 5), changed)
    handle.remove()
    assert max(unclipped) > bound
    assert torch.equal(model(x), ref)  # hooks removed on exit


def test_bad_bounds_and_inputs(model):
    with pytest.raises(ValueError, match="no activation module"):
        with clipped(model, {"nope": 1.0}):
            pass
    with pytest.raises(ValueError, match="NaN"):
        with clipped(model, {next(iter(activation_modules(model))): math.nan}):
            pass
    with pytest.raises(ValueError, match="at least one"):
        profile_bounds(model, _x()[:0])
    with pytest.raises(ValueError, match="no activation"):
        profile_bounds(nn.Linear(3, 2), torch.randn(2, 3))


@torch.no_grad()
def test_zero_mode_sets_outputs_above_the_bound_to_zero_and_keeps_the_others(model):
    """FT-ClipAct's clipped activation: x where x <= bound, 0 where x > bound (Ranger's mode saturates at the bound)."""
    name, module = next(iter(activation_modules(model).items()))
    x = _x(2) * 3
    model.eval()
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o.clone()))
    model(x)
    handle.remove()
    raw = seen.pop()
    bound = float(raw.max()) / 3
    for mode, expect in (
        ("zero", torch.where(raw > bound, torch.zeros_like(raw), raw)),
        ("saturate", raw.clamp(max=bound)),
    ):
        with clipped(model, {name: bound}, mode=mode):
            handle = module.register_forward_hook(lambda m, i, o: seen.append(o.clone()))  # after the clip's hook
            model(x)
            handle.remove()
        assert torch.equal(seen.pop(), expect), mode
    ref = model(x)
    with clipped(model, dict.fromkeys(activation_modules(model), math.inf), mode="zero"):
        assert torch.equal(model(x), ref)
    with pytest.raises(ValueError, match="clip mode"):
        with clipped(model, {name: 1.0}, mode="clamp"):
            pass
