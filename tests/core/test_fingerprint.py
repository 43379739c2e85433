"""The model fingerprint: what a model computes, nothing else (issue 20.12, 20.13)."""

import torch
from torch import nn

from flatenn.core.convert import quantize_model
from flatenn.core.fingerprint import model_fingerprint


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a  # one layer under two names

    def forward(self, x):
        return self.b(self.a(x))


def test_a_shared_layers_latent_weight_is_left_out_under_every_name():
    from flatenn.core.quant import weight_codes

    torch.manual_seed(0)
    m = quantize_model(Shared(), a_bits=None)
    fp, (codes, scale) = model_fingerprint(m), weight_codes(m.a)
    with torch.no_grad():
        w = m.a.weight
        i = int((w[0].abs() < w[0].abs().max()).nonzero()[0])  # not the channel's largest: the scale stays
        w[0, i] += 1e-6  # a latent change too small to move its code
    assert torch.equal(weight_codes(m.a)[0], codes) and torch.equal(weight_codes(m.a)[1], scale)
    assert model_fingerprint(m) == fp
    with torch.no_grad():
        m.a.bias.add_(1)
    assert model_fingerprint(m) != fp


def test_bfloat16_and_float64_models_have_fingerprints():
    for dtype in (torch.bfloat16, torch.float64):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(3, 2)).to(dtype)
        fp = model_fingerprint(m)
        assert len(fp) == 16 and fp != model_fingerprint(nn.Sequential(nn.Linear(3, 2)).to(dtype))


def test_bytes_hashed_are_the_tensor_memory():
    from flatenn.core.fingerprint import _raw_bytes

    t = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    assert _raw_bytes(t) == bytes(t.view(torch.int16).numpy().tobytes())
    f = torch.tensor([1.5, -2.0])
    assert _raw_bytes(f) == f.numpy().tobytes()
