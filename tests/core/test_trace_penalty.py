"""Hessian-trace regularization checked against its definitions: BatchNorm's function and running statistics,
the Hutchinson estimator against an explicit Hessian, the penalty's gradient against finite differences, the
bit-error weights from two's-complement arithmetic, and the method's step against a hand-computed one."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flatenn.core.methods import HessianTraceMethod, get_method, trace_seed
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import quantized_layers
from flatenn.core.trace_penalty import bit_error_weights, composite_batchnorm, hutchinson_penalty, rademacher
from flatenn.core.train import TrainConfig


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("bn_class, shape", [(nn.BatchNorm2d, (6, 3, 4, 4)), (nn.BatchNorm1d, (6, 3))])
def test_composite_batchnorm_is_batchnorm(bn_class, shape, momentum):
    torch.manual_seed(0)
    fused, comp = bn_class(3, momentum=momentum), bn_class(3, momentum=momentum)
    with torch.no_grad():
        for bn in (fused, comp):
            bn.weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    holder = nn.Sequential(comp)
    for i in range(3):  # training mode: batch statistics and the running update
        x = torch.randn(shape) * (i + 1) + i
        with composite_batchnorm(holder):
            got = holder(x)
        torch.testing.assert_close(got, fused(x), rtol=1e-5, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(comp, name), getattr(fused, name), rtol=1e-5, atol=1e-6)
    fused.eval(), comp.eval()
    x = torch.randn(shape)
    with composite_batchnorm(holder):
        torch.testing.assert_close(holder(x), fused(x), rtol=1e-5, atol=1e-5)
    assert "forward" not in comp.__dict__  # the layer's own forward is back


def _tiny(dtype=torch.float64):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).to(
        dtype
    )


def _data(dtype=torch.float64):
    g = torch.Generator().manual_seed(2)
    return torch.randn(5, 1, 6, 6, generator=g, dtype=dtype), torch.randint(0, 3, (5,), generator=g)


def test_third_derivatives_need_the_composite_batchnorm():
    model, (x, y) = _tiny(), _data()
    params = [model[0].weight]
    z = [[torch.ones_like(params[0])]]
    with pytest.raises(RuntimeError, match="3rd"):
        torch.autograd.grad(hutchinson_penalty(F.cross_entropy(model(x), y), params, z), params)
    with composite_batchnorm(model):
        (g,) = torch.autograd.grad(hutchinson_penalty(F.cross_entropy(model(x), y), params, z), params)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def _explicit_hessian(model, x, y, param):
    """The Hessian of the loss w.r.t. ``param`` (flattened), entry by entry from autograd.functional."""

    def loss_of(flat):
        saved = param.data.clone()
        w = flat.reshape(param.shape)
        out = torch.func.functional_call(
            model, {name: (w if p is param else p) for name, p in model.named_parameters()}, (x,)
        )
        param.data.copy_(saved)
        return F.cross_entropy(out, y)

    return torch.autograd.functional.hessian(loss_of, param.detach().reshape(-1).clone())


def test_hutchinson_penalty_is_the_weighted_quadratic_form_and_averages_to_the_weighted_trace():
    model, (x, y) = _tiny(), _data()
    model.train()
    param = model[4].bias  # 3 entries: every sign vector can be enumerated
    with composite_batchnorm(model):
        hess = _explicit_hessian(model, x, y, param)
        c = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
        values = []
        for signs in itertools.product([-1.0, 1.0], repeat=3):
            z = torch.tensor(signs, dtype=torch.float64)
            loss = F.cross_entropy(model(x), y)
            pen = hutchinson_penalty(loss, [param], [[z]], [c])
            v = z * c.sqrt()
            torch.testing.assert_close(pen, v @ hess @ v)  # (Dz)^T H (Dz)
            values.append(float(pen.detach()))
    # the mean over all Rademacher probes is exactly sum_i c_i H_ii
    assert sum(values) / len(values) == pytest.approx(float((c * hess.diagonal()).sum()), rel=1e-10)
    assert float((hess - hess.diagonal().diag()).abs().sum()) > 1e-6  # off-diagonal terms exist and cancel


def test_penalty_gradient_matches_finite_differences():
    model, (x, y) = _tiny(), _data()
    model.train()
    param = model[0].weight
    z = rademacher([param], torch.Generator().manual_seed(3))
    c = [torch.rand(param.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 0.5]

    def penalty() -> torch.Tensor:
        with composite_batchnorm(model):
            return hutchinson_penalty(F.cross_entropy(model(x), y), [param], [z], c)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    (grad,) = torch.autograd.grad(penalty(), [param])
    eps = 1e-5
    for idx in [(0, 0, 0, 0), (1, 0, 2, 1), (0, 0, 1, 2)]:
        with torch.no_grad():
            param[idx] += eps
        up = float(penalty().detach())
        with torch.no_grad():
            param[idx] -= 2 * eps
        down = float(penalty().detach())
        with torch.no_grad():
            param[idx] += eps
        assert grad[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)
    model.load_state_dict(state)


def test_bit_error_weights_are_half_the_error_variance_of_bit_flips():
    w = torch.tensor([[0.5, -0.25], [0.1, 0.05]])
    got = bit_error_weights([w], [8], 0.01)[0]
    for row, top in ((0, 0.5), (1, 0.1)):
        step = top / 127  # per-output-channel step: max |w| / (2^(b-1) - 1)
        # bit k of a two's-complement code flips with p and moves the value by ±2^k step: variance p step^2 sum 4^k
        var = 0.01 * step**2 * sum(4**k for k in range(8))
        torch.testing.assert_close(got[row], torch.full((2,), var / 2))


def _setup(**fields):
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn_digits", width=4), 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    config = TrainConfig(width=4, optimizer="hessian", p_train=0.01, **fields)
    return model, opt, get_method("hessian")(model, opt, config, F.cross_entropy)


def _batch():
    g = torch.Generator().manual_seed(5)
    return torch.randn(16, 1, 8, 8, generator=g) * 3, torch.randint(0, 10, (16,), generator=g)


def test_hessian_step_descends_the_loss_plus_the_weighted_trace_estimate():
    model, opt, method = _setup()
    model.train()
    x, y = _batch()
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    # the hand step: the probe the method will draw, the penalty of that probe, plain SGD on the sum
    probe_gen = torch.Generator().manual_seed(trace_seed(0))
    layers = list(quantized_layers(model).values())
    params = [layer.weight for layer in layers]
    z = rademacher(params, probe_gen)
    with composite_batchnorm(model):
        loss = F.cross_entropy(model(x), y)
        c = bit_error_weights(params, [layer.w_bits for layer in layers], 0.01)
        pen = hutchinson_penalty(loss, params, [z], c)
        grads = torch.autograd.grad(loss + pen, list(model.parameters()), allow_unused=True)
    expected = [p.detach() - 0.1 * (g if g is not None else 0) for p, g in zip(model.parameters(), grads, strict=True)]
    assert float(pen.detach()) != 0.0
    model.load_state_dict(ref)  # undo the running-statistics update of the hand step
    method.step(x, y)
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    # the penalty moved the stored weights: the step differs from SGD's
    sgd_model, _, sgd = _setup_sgd()
    sgd_model.train()
    sgd.step(x, y)
    assert any(not torch.allclose(a, b) for a, b in zip(model.parameters(), sgd_model.parameters(), strict=True))


def _setup_sgd():
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn_digits", width=4), 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, get_method("sgd")(model, opt, TrainConfig(width=4), F.cross_entropy)


def test_hessian_probes_resume_from_the_checkpointed_state():
    _, _, a = _setup()
    _, _, b = _setup()
    rademacher([torch.zeros(7)], a.generator)
    b.load_state_dict(a.state_dict())
    assert torch.equal(rademacher([torch.zeros(50)], a.generator)[0], rademacher([torch.zeros(50)], b.generator)[0])


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(optimizer="hessian"), "p_train"),
        (dict(optimizer="hessian", p_train=2.0), "p_train"),
        (dict(optimizer="hessian", p_train=0.01, w_bits=None), "quantized weights"),
    ],
)
def test_bad_hessian_configs_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_hessian_is_registered_with_its_declared_cost():
    assert get_method("hessian") is HessianTraceMethod and HessianTraceMethod.passes_per_step == 4
    assert TrainConfig(optimizer="hessian", p_train=0.01).key() != TrainConfig(optimizer="hessian", p_train=0.02).key()
