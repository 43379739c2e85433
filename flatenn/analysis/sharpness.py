"""Sharpness of a quantized model's minimum, measured at its dequantized weights.

Every metric runs inside :func:`weight_space`: all QConv2d/QLinear layers are frozen at their
dequantized weights (quantization scales fixed at their clean values), BatchNorm is in eval mode,
and the variables are perturbations added to those weights (BatchNorm and biases are not
perturbed). Afterwards parameters, buffers, ``requires_grad`` flags and train/eval mode are exactly
as before.

Metrics: Hessian λmax (power iteration on Hessian-vector products) and trace (Hutchinson), raw or
*filter-normalized* (the Hessian of w = w0 + diag(‖filter‖)·u, which is invariant to the rescaling
BatchNorm allows); ε-sharpness (Keskar et al.) and worst-case ℓ2 sharpness by full-step projected
ascent; average-case sharpness under Gaussian perturbations; filter-normalized 1-D/2-D loss
landscapes (Li et al. 2018); and a bit-error sensitivity that predicts the loss increase of random
bit faults from the diagonal of the Hessian, linking sharpness to fault campaigns.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..core.determinism import model_device
from ..core.quant import QuantizedWeightMixin, frozen
from ..core.trace_penalty import rademacher
from ..faults.sampling import check_bit_positions, check_fault_model, check_rate

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NORMALIZATIONS = (None, "filter")


class WeightSpace:
    """The frozen weights of a model as one perturbable vector (a list of per-layer tensors)."""

    def __init__(
        self,
        model: nn.Module,
        layers: dict[str, QuantizedWeightMixin],
        x: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFn,
        batch_size: int,
    ) -> None:
        self.model, self.layers = model, layers
        self.names = list(layers)
        self.device = model_device(model)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.loss_fn, self.batch_size = loss_fn, batch_size
        self.weights = [m.frozen_weight.detach().clone() for m in layers.values()]

    def zeros(self) -> list[torch.Tensor]:
        return [torch.zeros_like(w) for w in self.weights]

    def filter_norms(self) -> list[torch.Tensor]:
        """Per-entry norm of the filter (output channel) each weight belongs to."""
        out = []
        for w in self.weights:
            n = w.reshape(w.shape[0], -1).norm(dim=1)
            out.append(n.reshape(-1, *([1] * (w.ndim - 1))).expand_as(w).clone())
        return out

    def scaling(self, normalize: str | None) -> list[torch.Tensor] | None:
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        return self.filter_norms() if normalize == "filter" else None

    def _set(self, delta: Sequence[torch.Tensor] | None) -> None:
        for m, d in zip(self.layers.values(), delta or [None] * len(self.names), strict=True):
            m.perturbation = d

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        n = len(self.x)
        for i in range(0, n, self.batch_size):
            xb, yb = self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]
            yield xb, yb, len(xb) / n

    @torch.no_grad()
    def loss(self, delta: Sequence[torch.Tensor] | None = None) -> float:
        """Mean loss over the data subset at weights + delta."""
        self._set(delta)
        try:
            return float(sum(w * float(self.loss_fn(self.model(xb), yb)) for xb, yb, w in self.batches()))
        finally:
            self._set(None)

    @torch.no_grad()
    def accuracy(self, delta: Sequence[torch.Tensor] | None = None) -> float:
        self._set(delta)
        try:
            correct = sum(int((self.model(xb).argmax(1) == yb).sum()) for xb, yb, _ in self.batches())
        finally:
            self._set(None)
        return 100.0 * correct / len(self.x)

    def gradient(self, delta: Sequence[torch.Tensor] | None = None) -> tuple[float, list[torch.Tensor]]:
        """(loss, gradient w.r.t. the weights) at weights + delta."""
        d = [t.detach().clone().requires_grad_(True) for t in (delta or self.zeros())]
        self._set(d)
        total, grads = 0.0, [torch.zeros_like(w) for w in self.weights]
        try:
            for xb, yb, w in self.batches():
                loss = self.loss_fn(self.model(xb), yb) * w
                g = torch.autograd.grad(loss, d)
                total += float(loss.detach())
                for acc, gi in zip(grads, g, strict=True):
                    acc += gi
        finally:
            self._set(None)
        return total, grads

    def hvp(self, v: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Hessian-vector product H v at the frozen weights (double backward, batch-weighted)."""
        out = [torch.zeros_like(w) for w in self.weights]
        for xb, yb, w in self.batches():
            d = [torch.zeros_like(t, requires_grad=True) for t in self.weights]
            self._set(d)
            try:
                loss = self.loss_fn(self.model(xb), yb) * w
                g = torch.autograd.grad(loss, d, create_graph=True)
                dot = sum((gi * vi).sum() for gi, vi in zip(g, v, strict=True))
                hv = torch.autograd.grad(dot, d)
            finally:
                self._set(None)
            for acc, h in zip(out, hv, strict=True):
                acc += h
        return out


def materialize(x, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors as given, or a data loader's (inputs, labels) batches concatenated (``y=None``)."""
    if y is not None:
        return x, y
    parts = [(b[0], b[1]) for b in x]
    if not parts:
        raise ValueError("the data loader yielded no batches")
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@contextlib.contextmanager
def weight_space(
    model: nn.Module, x, y: torch.Tensor | None, loss_fn: LossFn = F.cross_entropy, batch_size: int = 512
) -> Iterator[WeightSpace]:
    """Freeze, switch to eval and disable parameter gradients; restore all of it exactly on exit.

    ``x, y``: tensors, or ``x`` a data loader of (inputs, labels) and ``y=None`` (its batches are
    concatenated: sharpness subsets are small).
    """
    x, y = materialize(x, y)
    modes = {m: m.training for m in model.modules()}  # each module's own flag, not the parent's
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with frozen(model, include_float=True) as layers:
            yield WeightSpace(model, layers, x, y, loss_fn, batch_size)
    finally:
        for m in model.modules():
            if isinstance(m, QuantizedWeightMixin):
                m.perturbation = None
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(params[n])
                p.requires_grad_(flags[n])
            for n, b in model.named_buffers():
                if n in buffers:
                    b.copy_(buffers[n])
        for m, t in modes.items():
            m.training = t


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)))


def _scale(a: Sequence[torch.Tensor], s: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
    return list(a) if s is None else [x * y for x, y in zip(a, s, strict=True)]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _gaussian_like(ws: WeightSpace, gen: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(w.shape, generator=gen).to(ws.device) for w in ws.weights]


Vector = list[torch.Tensor]


def dominant_eigenpair(
    apply: Callable[[Vector], Vector], v0: Vector, iters: int = 100, tol: float = 1e-4, offset: float = 0.0
) -> tuple[float, Vector, int, bool]:
    """Power iteration for the largest-*magnitude* eigenvalue of a symmetric operator.

    Stops when the residual ‖Av − λv‖ ≤ tol·|λ − offset| (λ = vᵀAv, ‖v‖ = 1; ``offset`` is a shift
    already added to the operator, so the bound is relative to the unshifted eigenvalue). For a
    symmetric operator some eigenvalue lies within the residual of λ, so this bounds the error;
    ``converged`` is True only then. A zero operator gives (0, v, it, True).
    Returns (λ, v, iterations, converged).
    """
    nv = math.sqrt(_dot(v0, v0))
    if nv == 0:
        raise ValueError("the start vector of power iteration is zero")
    v = [a / nv for a in v0]
    lam, it = 0.0, 0
    for it in range(1, iters + 1):
        av = apply(v)
        lam = _dot(v, av)
        nav = math.sqrt(_dot(av, av))
        if nav == 0:
            return 0.0, v, it, True
        res = math.sqrt(sum(float(((a - lam * b).double() ** 2).sum()) for a, b in zip(av, v, strict=True)))
        if res <= tol * max(abs(lam - offset), 1e-6 * abs(offset)):
            return lam, v, it, True
        v = [a / nav for a in av]
    return lam, v, it, False


def top_eigenvalues(
    apply: Callable[[Vector], Vector], like: Vector, k: int = 1, iters: int = 100, tol: float = 1e-4, seed: int = 0
) -> list[dict]:
    """The k largest *algebraic* eigenvalues of a symmetric operator (power iteration + shift + deflation).

    Each round finds the dominant eigenpair of the operator with the found eigenvectors deflated to 0.
    If it is negative (−c), every remaining eigenvalue lies in [−c, c]; the dominant eigenpair of
    A + cI (found directions still mapped to 0) is then the largest algebraic one, shifted by c.
    Returns one dict per eigenvalue: value, iterations (operator applications), converged.
    """
    gen = _generator(seed)
    found: list[tuple[float, Vector]] = []

    def deflated(shift: float) -> Callable[[Vector], Vector]:
        def op(v: Vector) -> Vector:
            out = [a + shift * b for a, b in zip(apply(v), v, strict=True)] if shift else apply(v)
            for val, u in found:
                c = _dot(u, v)
                out = [a - (val + shift) * c * b for a, b in zip(out, u, strict=True)]
            return out

        return op

    def start() -> Vector:
        v = [torch.randn(t.shape, generator=gen).to(t.device, t.dtype) for t in like]
        for _, u in found:
            c = _dot(u, v)
            v = [a - c * b for a, b in zip(v, u, strict=True)]
        return v

    out = []
    for _ in range(k):
        lam, v, it, conv = dominant_eigenpair(deflated(0.0), start(), iters, tol)
        if lam < 0:
            shift = -lam
            lam2, v, it2, conv = dominant_eigenpair(deflated(shift), start(), iters, tol, offset=shift)
            lam, it = lam2 - shift, it + it2
        found.append((lam, v))
        out.append({"value": lam, "iterations": it, "converged": conv})
    return out


def hessian_lambda_max(
    ws: WeightSpace, iters: int = 100, tol: float = 1e-4, normalize: str | None = None, seed: int = 0, top_k: int = 1
) -> list[dict]:
    """Top-k *largest* (algebraic) Hessian eigenvalues; see :func:`top_eigenvalues`.

    With ``normalize="filter"`` the operator is D H D with D the per-filter weight norms. ``converged``
    means the residual ‖Hv − λv‖ ≤ tol·|λ| held at the returned value.
    """
    s = ws.scaling(normalize)
    return top_eigenvalues(lambda v: _scale(ws.hvp(_scale(v, s)), s), ws.weights, top_k, iters, tol, seed)


def hessian_trace(
    ws: WeightSpace,
    probes: int = 50,
    normalize: str | None = None,
    seed: int = 0,
    weights: Sequence[torch.Tensor] | None = None,
) -> dict:
    """Hutchinson estimate of tr(D H D) with a fixed number of Rademacher probes.

    ``weights`` (per-entry, nonnegative) replaces D² for weighted traces Σ w_i H_ii.
    Returns value, stderr (sample sd / sqrt(probes)), probes.
    """
    if probes < 2:
        raise ValueError("Hutchinson needs at least 2 probes for a standard error")
    s = ws.scaling(normalize) if weights is None else [w.sqrt() for w in weights]
    gen = _generator(seed)
    samples = []
    for _ in range(probes):
        z = rademacher(ws.weights, gen)
        zs = _scale(z, s)
        samples.append(_dot(zs, ws.hvp(zs)))
    arr = np.asarray(samples)
    return {"value": float(arr.mean()), "stderr": float(arr.std(ddof=1) / math.sqrt(probes)), "probes": probes}


def worst_case_sharpness(
    ws: WeightSpace, radius: float, norm: str = "l2", steps: int = 20, seed: int = 0, normalize: str | None = None
) -> dict:
    """max L(w+δ) − L(w) over a ball, by full-step ascent from a random start (seeded).

    ``norm="l2"``: ‖u‖₂ ≤ radius, step δ = radius·g/‖g‖ (SAM's inner step; on a quadratic this is
    power iteration, so the value tends to ½·radius²·λmax). ``norm="box"``: |δ_i| ≤ radius·(|w_i|+1)
    (Keskar et al.), step δ = bound·sign(g). Filter normalization (l2 only) measures δ = D u.
    """
    base = ws.loss()
    gen = _generator(seed)
    if norm == "l2":
        s = ws.scaling(normalize)
        u = _gaussian_like(ws, gen)
        nu = math.sqrt(_dot(u, u))
        u = [radius * a / nu for a in u]
        best = -math.inf
        for _ in range(steps):
            delta = _scale(u, s)
            loss, g = ws.gradient(delta)
            best = max(best, loss)
            g = _scale(g, s)
            ng = math.sqrt(_dot(g, g))
            if ng == 0:
                break
            u = [radius * a / ng for a in g]
        best = max(best, ws.loss(_scale(u, s)))
    elif norm == "box":
        bound = [radius * (w.abs() + 1) for w in ws.weights]
        delta = [b * (2 * torch.rand(b.shape, generator=gen).to(ws.device) - 1) for b in bound]
        best = -math.inf
        for _ in range(steps):
            loss, g = ws.gradient(delta)
            best = max(best, loss)
            delta = [b * torch.sign(gi) for b, gi in zip(bound, g, strict=True)]
        best = max(best, ws.loss(delta))
    else:
        raise ValueError(f"norm must be 'l2' or 'box', got {norm!r}")
    return {"value": best - base, "base_loss": base, "steps": steps}


def epsilon_sharpness(ws: WeightSpace, epsilon: float = 1e-3, steps: int = 20, seed: int = 0) -> dict:
    """Keskar et al.'s ε-sharpness: 100·(max_box L(w+δ) − L(w)) / (1 + L(w))."""
    r = worst_case_sharpness(ws, epsilon, norm="box", steps=steps, seed=seed)
    return {"value": 100.0 * r["value"] / (1.0 + r["base_loss"]), "base_loss": r["base_loss"]}


def layer_direction(name: str, shape: Sequence[int], seed: int) -> torch.Tensor:
    """A Gaussian direction for one layer, keyed by (seed, layer name): equal across models of one architecture."""
    key = int.from_bytes(hashlib.sha256(f"{seed}|{name}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(key)
    return torch.from_numpy(rng.standard_normal(tuple(shape)).astype(np.float32))


def filter_normalized_direction(ws: WeightSpace, seed: int) -> list[torch.Tensor]:
    """Li et al.'s direction: per filter, d_f ← d_f / ‖d_f‖ · ‖w_f‖."""
    out = []
    for name, w in zip(ws.names, ws.weights, strict=True):
        d = layer_direction(name, w.shape, seed).to(ws.device)
        dn = d.reshape(d.shape[0], -1).norm(dim=1).clamp(min=1e-12)
        wn = w.reshape(w.shape[0], -1).norm(dim=1)
        out.append(d * (wn / dn).reshape(-1, *([1] * (w.ndim - 1))))
    return out


def average_sharpness(
    ws: WeightSpace, sigma: float = 0.05, directions: int = 20, seed: int = 0, normalize: str | None = "filter"
) -> dict:
    """Mean of L(w + σ·d) − L(w) over random directions, with its standard error.

    ``normalize="filter"``: d is a filter-normalized Gaussian direction (relative size σ per filter);
    ``None``: d ~ N(0, I), for which the value tends to ½σ²·tr(H) on a quadratic.
    """
    if directions < 2:
        raise ValueError("average sharpness needs at least 2 directions")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma (relative perturbation size) must be a finite number > 0, got {sigma!r}")
    base = ws.loss()
    gen = _generator(seed)
    vals = []
    for i in range(directions):
        if normalize == "filter":
            d = filter_normalized_direction(ws, seed * 100003 + i)
        elif normalize is None:
            d = _gaussian_like(ws, gen)
        else:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        vals.append(ws.loss([sigma * t for t in d]) - base)
    arr = np.asarray(vals)
    return {
        "value": float(arr.mean()),
        "stderr": float(arr.std(ddof=1) / math.sqrt(directions)),
        "directions": directions,
        "base_loss": base,
    }


def landscape_1d(ws: WeightSpace, alphas: Sequence[float], seed: int = 0) -> pd.DataFrame:
    """Loss and accuracy along one filter-normalized direction: L(w + α·d) for each α."""
    d = filter_normalized_direction(ws, seed)
    rows = []
    for a in alphas:
        delta = [float(a) * t for t in d]
        rows.append({"alpha": float(a), "loss": ws.loss(delta), "accuracy": ws.accuracy(delta)})
    return pd.DataFrame(rows)


def landscape_2d(ws: WeightSpace, alphas: Sequence[float], betas: Sequence[float], seed: int = 0) -> pd.DataFrame:
    """Loss on the grid w + α·d1 + β·d2 (two filter-normalized directions, seeds ``seed`` and ``seed+1``)."""
    d1, d2 = filter_normalized_direction(ws, seed), filter_normalized_direction(ws, seed + 1)
    rows = []
    for a in alphas:
        for b in betas:
            delta = [float(a) * t1 + float(b) * t2 for t1, t2 in zip(d1, d2, strict=True)]
            rows.append({"alpha": float(a), "beta": float(b), "loss": ws.loss(delta)})
    return pd.DataFrame(rows)


def _bit_value_weights(bits: int) -> np.ndarray:
    """Value of each bit of a two's-complement code: 2^k, and −2^(b−1) for the sign bit."""
    w = 2.0 ** np.arange(bits)
    w[-1] = -w[-1]
    return w


def bit_error_sensitivity(
    ws: WeightSpace,
    rate: float,
    fault_model: str = "bitflip",
    bit_positions: Sequence[int] | None = None,
    probes: int = 50,
    seed: int = 0,
) -> dict:
    """Predicted mean loss increase under random bit faults at ``rate`` (first order in the rate).

    For weight i with step Δ_i, a fault on bit k that changes the stored bit moves the weight by
    s·v_k·Δ_i (v_k = 2^k, −2^(b−1) for the sign bit, s = +1 for 0→1, −1 for 1→0). Then
    E[δ_i] ≈ p·Δ_i·Σ_k s_ik v_k and E[δ_i²] ≈ p·Δ_i²·Σ_k v_k² over the bits that change, and
    E[ΔL] ≈ gᵀE[δ] + ½·Σ_i H_ii·E[δ_i²]. For bit flips on all b bits the second term is
    ½·p·Σ_l Δ_l²·(4^b−1)/3·tr(H_l). Σ_i H_ii·E[δ_i²] is a weighted Hutchinson trace.
    Only quantized layers (the weight memory) contribute.
    """
    rate = check_rate(rate)
    check_fault_model(fault_model)
    grad_loss, grad = ws.gradient()
    mean_shift, var_weight = [], []
    for layer, w in zip(ws.layers.values(), ws.weights, strict=True):
        if layer.w_bits is None:
            mean_shift.append(torch.zeros_like(w))
            var_weight.append(torch.zeros_like(w))
            continue
        b = layer.w_bits
        bset = check_bit_positions(bit_positions, b)
        vk = _bit_value_weights(b)
        codes = layer.codes.detach().cpu().numpy().astype(np.int64) & ((1 << b) - 1)
        step = layer.code_scale.detach().cpu().numpy().reshape(-1, *([1] * (codes.ndim - 1))).astype(np.float64)
        m = np.zeros(codes.shape)
        v2 = np.zeros(codes.shape)
        for k in bset:
            is_one = (codes >> k) & 1
            sign = np.where(is_one == 1, -1.0, 1.0)
            changes = {"bitflip": np.ones_like(sign), "stuck0": (is_one == 1) * 1.0, "stuck1": (is_one == 0) * 1.0}
            c = changes[fault_model]
            m += c * sign * vk[k]
            v2 += c * vk[k] ** 2
        mean_shift.append(torch.from_numpy(rate * m * step).to(ws.device, w.dtype))
        var_weight.append(torch.from_numpy(v2 * step**2).to(ws.device, w.dtype))
    grad_term = _dot(grad, mean_shift)
    tr = hessian_trace(ws, probes=probes, seed=seed, weights=var_weight)
    return {
        "value": grad_term + 0.5 * rate * tr["value"],
        "stderr": 0.5 * rate * tr["stderr"],
        "gradient_term": grad_term,
        "curvature_term": 0.5 * rate * tr["value"],
        "weighted_trace": tr["value"],
        "base_loss": grad_loss,
    }


METRICS = (
    "lambda_max",
    "lambda_max_fn",
    "trace",
    "trace_fn",
    "avg_sharpness",
    "eps_sharpness",
    "landscape1d",
    "bit_sensitivity",
)


def measure(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    metrics: Sequence[str],
    model_id: str = "model",
    seed: int = 0,
    batch_size: int = 512,
    options: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run named metrics; returns (tidy metric rows, 1-D landscape rows).

    Metric rows: model_id, metric, value, stderr, iterations, n_examples, seed, seconds.
    ``*_fn`` are filter-normalized. ``options`` overrides defaults: iters, tol, probes, sigma,
    directions, epsilon, alphas, rate, fault_model.
    """
    for k, v in (options or {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"sharpness option {k} must be finite, got {v!r}")
    x, y = materialize(x, y)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {METRICS}")
    o = {
        "iters": 100,
        "tol": 1e-3,
        "probes": 20,
        "sigma": 0.05,
        "directions": 20,
        "epsilon": 1e-3,
        "alphas": np.linspace(-1, 1, 21).tolist(),
        "rate": 1e-3,
        "fault_model": "bitflip",
        **(options or {}),
    }
    rows, land = [], pd.DataFrame()
    nan = float("nan")
    with weight_space(model, x, y, batch_size=batch_size) as ws:
        for metric in metrics:
            t0 = time.perf_counter()
            stderr, iters = nan, -1
            if metric in ("lambda_max", "lambda_max_fn"):
                r = hessian_lambda_max(ws, o["iters"], o["tol"], "filter" if metric.endswith("_fn") else None, seed)[0]
                value, iters = r["value"], r["iterations"]
            elif metric in ("trace", "trace_fn"):
                r = hessian_trace(ws, o["probes"], "filter" if metric.endswith("_fn") else None, seed)
                value, stderr = r["value"], r["stderr"]
            elif metric == "avg_sharpness":
                r = average_sharpness(ws, o["sigma"], o["directions"], seed)
                value, stderr = r["value"], r["stderr"]
            elif metric == "eps_sharpness":
                value = epsilon_sharpness(ws, o["epsilon"], seed=seed)["value"]
            elif metric == "bit_sensitivity":
                r = bit_error_sensitivity(ws, o["rate"], o["fault_model"], probes=o["probes"], seed=seed)
                value, stderr = r["value"], r["stderr"]
            else:  # landscape1d
                land = landscape_1d(ws, o["alphas"], seed)
                land.insert(0, "model_id", model_id)
                value = float(land["loss"].max() - ws.loss())
            rows.append(
                {
                    "model_id": model_id,
                    "metric": metric,
                    "value": value,
                    "stderr": stderr,
                    "iterations": iters,
                    "n_examples": len(x),
                    "seed": seed,
                    "seconds": time.perf_counter() - t0,
                }
            )
    return pd.DataFrame(rows), land
