"""SAQ and SAM wrappers, checked against hand-written two-pass steps (Liu et al. case 3; Foret et al.)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flatenn.core.quant import ActQuant, QLinear, fake_quant_weight
from flatenn.core.saq import SAM, SAQ, saq_step


def _tiny(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(QLinear(4, 6, w_bits=4), nn.BatchNorm1d(6), nn.ReLU(), ActQuant(8), QLinear(6, 3, w_bits=4))


def _calibrated_pair(steps: int = 3):
    """Two identical models whose BN statistics and clips have been through a few SGD steps."""
    a = _tiny()
    opt = torch.optim.SGD(a.parameters(), lr=0.1)
    for i in range(steps):
        g = torch.Generator().manual_seed(100 + i)
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        F.cross_entropy(a(x), y).backward()
        opt.step()
    b = _tiny(1)
    b.load_state_dict(a.state_dict())
    return a, b


def _manual_forward(model, x, q0, q1, clip):
    """The model by hand: BN with batch statistics (training), ReLU, 8-bit activations on [0, clip]."""
    h = F.linear(x, q0, model[0].bias)
    h = F.batch_norm(h, None, None, model[1].weight, model[1].bias, training=True, eps=model[1].eps)
    h = torch.relu(h)
    clip = clip.detach()
    step = clip / 255
    values = torch.round(torch.minimum(h.clamp(min=0), clip) / step) * step
    inside = ((h >= 0) & (h <= clip)).float()
    h = h * inside + (values - h * inside).detach()  # value: quantized; gradient: 1 inside [0, clip], else 0
    return F.linear(h, q1, model[4].bias)


def test_saq_step_matches_hand_computed_two_pass_from_a_calibrated_state():
    model, ref = _calibrated_pair()
    model.train(), ref.train()
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    rho, lr = 0.1, 0.5
    # pass 1 updates the clip once (EMA with momentum 0.1); pass 2 must use exactly that clip
    clip1 = (
        0.9 * ref[3].clip
        + 0.1
        * torch.relu(
            F.batch_norm(
                F.linear(x, fake_quant_weight(ref[0].weight, 4), ref[0].bias),
                None,
                None,
                ref[1].weight,
                ref[1].bias,
                training=True,
            )
        ).max()
    )
    ws = [ref[0].weight, ref[4].weight]
    qs = [fake_quant_weight(w, 4).detach().requires_grad_(True) for w in ws]
    grads = torch.autograd.grad(F.cross_entropy(_manual_forward(ref, x, *qs, clip1), y), qs)
    norm = torch.sqrt(sum((gi.double() ** 2).sum() for gi in grads)).float()
    eps = [rho * gi / (norm + 1e-12) for gi in grads]
    q_pert = [fake_quant_weight(w, 4) + e for w, e in zip(ws, eps, strict=True)]
    params = [ref[0].weight, ref[4].weight, ref[0].bias, ref[4].bias, ref[1].weight, ref[1].bias]
    grads2 = torch.autograd.grad(F.cross_entropy(_manual_forward(ref, x, *q_pert, clip1), y), params)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    saq_step(model, F.cross_entropy, x, y, opt, rho)
    names = ["0.weight", "4.weight", "0.bias", "4.bias", "1.weight", "1.bias"]
    for n, g2 in zip(names, grads2, strict=True):
        assert torch.allclose(model.state_dict()[n], before[n] - lr * g2, atol=1e-5), n
    assert torch.allclose(model[3].clip, clip1)  # one EMA update (pass 1), none from pass 2
    assert model[1].num_batches_tracked.item() == before["1.num_batches_tracked"].item() + 1
    assert model[0].perturbation is None and model[4].perturbation is None


def test_saq_with_rho_zero_is_sgd_bit_for_bit_over_several_steps():
    a, b = _calibrated_pair()
    opt_a = SAQ(a, torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4), rho=0.0)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    a.train(), b.train()
    for i in range(5):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(16, 4, generator=g) * 3, torch.randint(0, 3, (16,), generator=g)
        saq_step(a, F.cross_entropy, x, y, opt_a, 0.0)
        opt_b.zero_grad()
        F.cross_entropy(b(x), y).backward()
        opt_b.step()
    for (n, ta), tb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(ta, tb), n  # weights, BN running stats, clips


def test_saq_differs_from_sgd_for_positive_rho():
    a, b = _calibrated_pair()
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    saq_step(a, F.cross_entropy, x, y, torch.optim.SGD(a.parameters(), lr=0.1), 0.5)
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    F.cross_entropy(b(x), y).backward()
    opt.step()
    assert not torch.allclose(a[0].weight, b[0].weight, atol=1e-5)


def _step_matches(opt, model, x, y, weight, bias) -> None:
    """One closure step of a sharpness-aware wrapper lands on the hand-computed weight and bias."""

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(model.weight, weight, atol=1e-6)
    assert torch.allclose(model.bias, bias, atol=1e-6)


def test_sam_wrapper_matches_hand_computed_step_and_restores_weights():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    rho, lr = 0.2, 0.3
    gw, gb = torch.autograd.grad(F.cross_entropy(F.linear(x, w0.requires_grad_(), b0.requires_grad_()), y), [w0, b0])
    n = torch.sqrt((gw.double() ** 2).sum() + (gb.double() ** 2).sum()).float()
    w1, b1 = (w0 + rho * gw / n).detach().requires_grad_(), (b0 + rho * gb / n).detach().requires_grad_()
    gw2, gb2 = torch.autograd.grad(F.cross_entropy(F.linear(x, w1, b1), y), [w1, b1])
    opt = SAM(model, torch.optim.SGD(model.parameters(), lr=lr), rho=rho)

    _step_matches(opt, model, x, y, w0.detach() - lr * gw2, b0.detach() - lr * gb2)


def test_wrapper_misuse_and_bad_rho():
    m = _tiny()
    with pytest.raises(ValueError, match="rho"):
        SAQ(m, torch.optim.SGD(m.parameters(), lr=0.1), rho=-1)
    opt = SAQ(m, torch.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match="before first_step"):
        opt.second_step()


def test_asam_wrapper_matches_hand_computed_adaptive_step():
    from flatenn.core.saq import ASAM

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    rho, eta, lr = 0.5, 0.01, 0.3
    gw, gb = torch.autograd.grad(F.cross_entropy(F.linear(x, w0.requires_grad_(), b0.requires_grad_()), y), [w0, b0])
    tw = w0.detach().abs() + eta  # Kwon et al.: T = |w| + eta on weights, 1 on biases
    n = torch.sqrt(((tw * gw).double() ** 2).sum() + (gb.double() ** 2).sum()).float()
    w1 = (w0 + rho * tw * tw * gw / n).detach().requires_grad_()
    b1 = (b0 + rho * gb / n).detach().requires_grad_()
    gw2, gb2 = torch.autograd.grad(F.cross_entropy(F.linear(x, w1, b1), y), [w1, b1])
    opt = ASAM(model, torch.optim.SGD(model.parameters(), lr=lr), rho=rho, eta=eta)

    _step_matches(opt, model, x, y, w0.detach() - lr * gw2, b0.detach() - lr * gb2)
    with pytest.raises(ValueError, match="eta"):
        ASAM(model, torch.optim.SGD(model.parameters(), lr=lr), eta=-1.0)
