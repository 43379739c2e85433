import numpy as np
import pytest
import torch
from torch import nn

from flatenn.analysis.sharpness import (
    average_sharpness,
    bit_error_sensitivity,
    hessian_lambda_max,
    hessian_trace,
    landscape_1d,
    landscape_2d,
    measure,
    weight_space,
    worst_case_sharpness,
)
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import QLinear, frozen
from flatenn.faults.injector import FaultInjector
from tests.helpers import calibrated


def mse(out, y):
    return ((out - y) ** 2).mean()


@pytest.fixture
def lstsq():
    """Linear least squares: loss = mean((Xw - y)^2), Hessian H = (2/N) X^T X (float layer)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.3, 0.1])
    y = torch.randn(200, 1, generator=g)
    model = nn.Sequential(QLinear(6, 1, bias=False, w_bits=None))
    with torch.no_grad():
        w = torch.linalg.lstsq(x, y).solution
        model[0].weight.copy_(w.T)
    H = (2 / len(x)) * (x.T.double() @ x.double())
    return model, x, y, H


def test_lambda_max_matches_eigvalsh(lstsq):
    model, x, y, H = lstsq
    with weight_space(model, x, y, loss_fn=mse) as ws:
        top = hessian_lambda_max(ws, iters=500, tol=1e-7, top_k=2)
    eig = torch.linalg.eigvalsh(H).flip(0)
    assert top[0]["value"] == pytest.approx(float(eig[0]), rel=1e-4) and top[0]["converged"]
    assert top[1]["value"] == pytest.approx(float(eig[1]), rel=1e-3)


def test_hutchinson_trace_within_three_standard_errors(lstsq):
    model, x, y, H = lstsq
    with weight_space(model, x, y, loss_fn=mse) as ws:
        r = hessian_trace(ws, probes=200, seed=1)
    assert abs(r["value"] - float(torch.trace(H))) < 3 * r["stderr"] and r["stderr"] > 0


def test_quadratic_average_and_worst_case(lstsq):
    model, x, y, H = lstsq
    sigma, rho = 0.01, 0.01
    with weight_space(model, x, y, loss_fn=mse) as ws:
        avg = average_sharpness(ws, sigma=sigma, directions=400, seed=0, normalize=None)
        worst = worst_case_sharpness(ws, radius=rho, norm="l2", steps=100, seed=0)
    tr, lam = float(torch.trace(H)), float(torch.linalg.eigvalsh(H)[-1])
    assert avg["value"] == pytest.approx(0.5 * sigma**2 * tr, rel=0.15)
    assert worst["value"] == pytest.approx(0.5 * rho**2 * lam, rel=0.02)


def _bn_model():
    torch.manual_seed(0)
    m = nn.Sequential(QLinear(5, 8, w_bits=None), nn.BatchNorm1d(8), nn.ReLU(), QLinear(8, 3, w_bits=None))
    m.train()
    for _ in range(20):
        m(torch.randn(64, 5) * 2)
    return m.eval()


def test_landscape_origin_seed_and_filter_rescaling_invariance():
    m = _bn_model()
    x, y = torch.randn(100, 5), torch.randint(0, 3, (100,))
    alphas = [-1.0, -0.5, 0.0, 0.5, 1.0]
    with weight_space(m, x, y) as ws:
        a = landscape_1d(ws, alphas, seed=3)
        clean = ws.loss()
        b = landscape_1d(ws, alphas, seed=3)
    assert a.loc[a.alpha == 0.0, "loss"].item() == pytest.approx(clean, rel=1e-6)
    assert a["loss"].tolist() == b["loss"].tolist()
    with torch.no_grad():  # rescale filter 2 by 3 and compensate in the BN statistics
        m[0].weight[2] *= 3.0
        m[0].bias[2] *= 3.0
        m[1].running_mean[2] *= 3.0
        m[1].running_var[2] *= 9.0
    with weight_space(m, x, y) as ws:
        c = landscape_1d(ws, alphas, seed=3)
    assert np.allclose(a["loss"], c["loss"], rtol=1e-4)


def test_landscape_2d_origin_and_axes_are_the_1d_landscapes():
    m = _bn_model()
    x, y = torch.randn(60, 5), torch.randint(0, 3, (60,))
    with weight_space(m, x, y) as ws:
        grid = landscape_2d(ws, [-0.5, 0.0, 0.5], [-0.5, 0.0, 0.5], seed=3)
        line = landscape_1d(ws, [-0.5, 0.0, 0.5], seed=3)  # the first direction has the same seed
        clean = ws.loss()
    assert len(grid) == 9 and grid.loc[(grid.alpha == 0) & (grid.beta == 0), "loss"].item() == pytest.approx(clean)
    on_axis = grid[grid.beta == 0].sort_values("alpha")["loss"].to_numpy()
    assert np.allclose(on_axis, line.sort_values("alpha")["loss"], rtol=1e-6)


def test_same_direction_for_models_of_one_architecture():
    from flatenn.analysis.sharpness import filter_normalized_direction

    x, y = torch.randn(10, 1, 8, 8), torch.randint(0, 10, (10,))
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (16, 1, 8, 8))
        with weight_space(m, x, y) as ws:
            d = filter_normalized_direction(ws, seed=5)
            dirs.append([t / ws.filter_norms()[i] for i, t in enumerate(d)])
    # after removing each model's filter norms the raw directions agree up to per-filter scale
    for a, b in zip(*dirs, strict=True):
        ra, rb = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        assert torch.allclose(ra / ra.norm(dim=1, keepdim=True), rb / rb.norm(dim=1, keepdim=True), atol=1e-5)


def test_bit_error_sensitivity_predicts_monte_carlo():
    """Quantized linear model, MSE loss (exactly quadratic), flips on bits 0..6 at p=1e-3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g)
    w_true = torch.randn(4, 64, generator=g) * 0.2
    y = x @ w_true.T + 0.01 * torch.randn(256, 4, generator=g)
    model = nn.Sequential(QLinear(64, 4, bias=False, w_bits=8))
    with torch.no_grad():
        model[0].weight.copy_(w_true)
    p, bits = 1e-3, list(range(7))
    with weight_space(model, x, y, loss_fn=mse) as ws:
        pred = bit_error_sensitivity(ws, p, "bitflip", bit_positions=bits, probes=400, seed=0)
    with frozen(model):
        inj = FaultInjector(model)
        base = mse(model(x), y).item()
        incs = []
        for t in range(6000):
            with inj.applied(inj.sample(seed=0, trial=t, rate=p, bit_positions=bits), "bitflip"):
                incs.append(mse(model(x), y).item() - base)
    mc = float(np.mean(incs))
    assert pred["value"] == pytest.approx(mc, rel=0.2)


def test_every_metric_restores_model_exactly():
    torch.manual_seed(0)
    m = build_model(ModelSpec("cnn_digits", width=4, activation="fatrelu", threshold=0.3), 8)
    m.train()
    m(torch.randn(32, 1, 8, 8))
    m.train()
    next(m.parameters()).requires_grad_(False)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    flags = [p.requires_grad for p in m.parameters()]
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    rows, land = measure(
        m,
        x,
        y,
        [
            "lambda_max",
            "lambda_max_fn",
            "trace",
            "trace_fn",
            "avg_sharpness",
            "eps_sharpness",
            "landscape1d",
            "bit_sensitivity",
        ],
        options={"iters": 5, "probes": 3, "directions": 3},
    )
    assert len(rows) == 8 and rows["value"].notna().all() and len(land) == 21
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    assert [p.requires_grad for p in m.parameters()] == flags and m.training
    assert all(mod.perturbation is None for mod in m.modules() if hasattr(mod, "perturbation"))


def test_unknown_metric():
    m = nn.Sequential(QLinear(2, 2))
    with pytest.raises(ValueError, match="unknown metrics"):
        measure(m, torch.randn(2, 2), torch.tensor([0, 1]), ["flatness"])


def _quadratic(eigenvalues, seed=0):
    """Model + loss with loss(w) = ½ wᵀAw for A = Q diag(eigenvalues) Qᵀ (out = w for input I)."""
    n = len(eigenvalues)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = (q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T).float()
    model = nn.Sequential(QLinear(n, 1, bias=False, w_bits=None))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(1, n, generator=g))
    x, y = torch.eye(n), torch.zeros(n, 1)

    def loss_fn(out, _y):
        w = out[:, 0]
        return 0.5 * w @ a @ w

    return model, x, y, loss_fn


def test_lambda_max_is_the_largest_algebraic_eigenvalue_not_the_largest_magnitude():
    model, x, y, loss_fn = _quadratic([1.0, -3.0] + [0.2] * 8)
    with weight_space(model, x, y, loss_fn=loss_fn, batch_size=64) as ws:
        top = hessian_lambda_max(ws, iters=1000, tol=1e-6, top_k=2)
    assert top[0]["value"] == pytest.approx(1.0, rel=1e-4) and top[0]["converged"]
    assert top[1]["value"] == pytest.approx(0.2, rel=1e-3)


def test_lambda_max_converged_only_when_residual_is_small():
    model, x, y, loss_fn = _quadratic([1.0] + [0.97] * 39)
    with weight_space(model, x, y, loss_fn=loss_fn, batch_size=64) as ws:
        early = hessian_lambda_max(ws, iters=2, tol=1e-4)[0]
        late = hessian_lambda_max(ws, iters=3000, tol=1e-6)[0]
    assert not early["converged"]
    assert late["converged"] and late["value"] == pytest.approx(1.0, rel=1e-4)


def test_zero_hessian_gives_zero_not_nan():
    model, x, y, loss_fn = _quadratic([0.0] * 6)
    with weight_space(model, x, y, loss_fn=loss_fn, batch_size=64) as ws:
        r = hessian_lambda_max(ws, iters=10)[0]
    assert r["value"] == 0.0 and r["converged"]


def test_each_module_gets_back_its_own_mode():
    m = calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (16, 1, 8, 8)).train()
    bn = next(mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d))
    bn.eval()  # a frozen BatchNorm inside a training model
    x, y = torch.randn(10, 1, 8, 8), torch.randint(0, 10, (10,))
    measure(m, x, y, ["trace"], options={"probes": 2})
    assert m.training and not bn.training
    from flatenn.core.evaluate import evaluate

    evaluate(m, x, y)
    assert m.training and not bn.training


def test_sharpness_on_a_data_loader_equals_the_tensor_path():
    m = calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (16, 1, 8, 8))
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    a, _ = measure(m, x, y, ["trace", "avg_sharpness"], options={"probes": 3, "directions": 3})
    b, _ = measure(m, loader, None, ["trace", "avg_sharpness"], options={"probes": 3, "directions": 3})
    assert a["value"].tolist() == b["value"].tolist()
