import torch
import torch.nn.functional as F
from torch import nn

from flatenn.quant import ActQuant, QLinear, fake_quant_weight
from flatenn.saq import saq_step


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(QLinear(4, 6, w_bits=4), nn.BatchNorm1d(6), nn.ReLU(), ActQuant(8), QLinear(6, 3, w_bits=4))


def test_saq_step_matches_manual_two_pass():
    model, ref = _tiny(), _tiny()
    ref.load_state_dict(model.state_dict())
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    rho, lr = 0.1, 0.5

    # manual computation on ``ref``: pass 1 at quantized weights, eps from its gradient
    ws = [ref[0].weight, ref[4].weight]
    qs = [fake_quant_weight(w, 4).detach().requires_grad_(True) for w in ws]

    def forward(q0, q1):
        h = F.linear(x, q0, ref[0].bias)
        h = ref[3](ref[2](ref[1](h)))
        return F.cross_entropy(F.linear(h, q1, ref[4].bias), y)

    g = torch.autograd.grad(forward(*qs), qs)
    norm = torch.sqrt(sum((gi.double() ** 2).sum() for gi in g)).float()
    eps = [rho * gi / (norm + 1e-12) for gi in g]
    bn_after_pass1 = (ref[1].running_mean.clone(), ref[1].running_var.clone(), ref[3].clip.clone())
    # pass 2: loss at Q(w) + eps, gradient flows to latent weights via the STE (identity)
    q_pert = [fake_quant_weight(w, 4) + e for w, e in zip(ws, eps, strict=True)]
    loss2 = forward(*q_pert)
    grads2 = torch.autograd.grad(loss2, [ws[0], ws[1], ref[0].bias, ref[4].bias, ref[1].weight, ref[1].bias])

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    saq_step(model, F.cross_entropy, x, y, opt, rho)
    params = [model[0].weight, model[4].weight, model[0].bias, model[4].bias, model[1].weight, model[1].bias]
    names = ["0.weight", "4.weight", "0.bias", "4.bias", "1.weight", "1.bias"]
    for p, n, g2 in zip(params, names, grads2, strict=True):
        assert torch.allclose(p.detach(), before[n] - lr * g2, atol=1e-6), n
    # buffers are as pass 1 left them (pass 2 did not update BN statistics or the clip)
    assert torch.allclose(model[1].running_mean, bn_after_pass1[0])
    assert torch.allclose(model[1].running_var, bn_after_pass1[1])
    assert torch.equal(model[3].clip, bn_after_pass1[2])
    assert model[1].num_batches_tracked.item() == 1
    assert model[0].perturbation is None and model[4].perturbation is None


def test_saq_differs_from_sgd_and_rho_zero_equals_sgd():
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    a, b, c = _tiny(), _tiny(), _tiny()
    for m, rho in ((a, 0.0), (b, 0.5)):
        saq_step(m, F.cross_entropy, x, y, torch.optim.SGD(m.parameters(), lr=0.1), rho)
    opt = torch.optim.SGD(c.parameters(), lr=0.1)
    F.cross_entropy(c(x), y).backward()
    opt.step()
    assert torch.allclose(a[0].weight, c[0].weight, atol=1e-7)
    assert not torch.allclose(b[0].weight, c[0].weight, atol=1e-5)
