import pytest
import torch
from torch import nn

from flatenn.core.activations import (
    FATReLU,
    calibrate_threshold,
    measure_sparsity,
    set_threshold,
    swap_activations,
)


def test_fatrelu_values_and_gradient():
    f = FATReLU(0.5)
    x = torch.tensor([-1.0, 0.0, 0.5, 0.6, 2.0], requires_grad=True)
    y = f(x)
    assert y.tolist() == [0.0, 0.0, 0.0, pytest.approx(0.6), 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_fatrelu_zero_threshold_equals_relu():
    x = torch.randn(1000)
    assert torch.equal(FATReLU(0.0)(x), torch.relu(x))


def test_negative_threshold_rejected():
    with pytest.raises(ValueError, match=">= 0"):
        FATReLU(-0.1)


def test_sparsity_on_hand_made_tensor():
    model = nn.Sequential(nn.Identity(), FATReLU(1.0))
    x = torch.tensor([[0.5, 1.5, -2.0, 3.0]])  # zeros: 0.5, -2.0 -> 2 of 4
    df = measure_sparsity(model, x)
    assert df.set_index("layer").loc["1", "sparsity"] == 0.5
    assert df.set_index("layer").loc["overall", "zeros"] == 2


def test_swap_and_set_threshold():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Sequential(nn.ReLU()))
    assert swap_activations(model, lambda: FATReLU(0.3)) == 2
    assert all(isinstance(m, FATReLU) and m.threshold == 0.3 for m in (model[1], model[2][0]))
    assert set_threshold(model, 0.7) == 2 and model[1].threshold == 0.7


def test_calibrate_threshold_reaches_target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.randn(20000, 1)
    t = calibrate_threshold(model, x, 0.8)
    s = float(measure_sparsity(model, x)["sparsity"].iloc[-1])
    assert abs(s - 0.8) < 0.01 and t == pytest.approx(0.8416, abs=0.03)  # N(0,1) 80% quantile


def test_fatrelu_propagates_nan_like_relu():
    x = torch.tensor([float("nan"), -1.0, 0.2, 2.0])
    out = FATReLU(0.5)(x)
    assert torch.isnan(out[0]) and out[1:].tolist() == [0.0, 0.0, 2.0]
    assert torch.isnan(torch.relu(x)[0])
