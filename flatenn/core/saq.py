"""Sharpness-aware optimizers as wrappers of any base optimizer: SAM and SAQ.

Both follow the two-step API of the reference SAM implementation (Foret et al. 2021; davda54/sam)::

    loss_fn(model(x), y).backward()      # pass 1: gradient g at the current weights
    opt.first_step(zero_grad=True)       # perturb: eps = rho * g / ||g|| (one global L2 norm)
    loss_fn(model(x), y).backward()      # pass 2: gradient at the perturbed weights
    opt.second_step(zero_grad=True)      # undo the perturbation, base optimizer step with pass 2's gradient

or ``opt.step(closure)`` with a closure that zeroes grads, computes the loss and calls backward.

* :class:`SAQ` (Liu et al., arXiv 2111.12273, "case 3") perturbs the *quantized* weights of every
  QConv2d/QLinear: pass 2 runs at Q(w) + eps, the latent weights are untouched. g is the gradient
  w.r.t. Q(w); with the straight-through estimator it equals the latent weights' ``.grad`` exactly,
  so pass 1 needs no extra bookkeeping.
* :class:`SAM` perturbs the latent parameters themselves (w + eps, then quantized if the layer is).
* :class:`ASAM` (Kwon et al. 2021) is SAM with the scale-adaptive ascent eps = rho T^2 g / ||T g||.

Between the two steps the model's statistics are frozen: activation quantizers keep pass 1's
ranges (no EMA update, so pass 2 quantizes exactly as pass 1 did) and every buffer (BatchNorm
running statistics, ``num_batches_tracked``, clips) is restored to its pass-1 value after pass 2.
BatchNorm still normalizes pass 2 with the batch's statistics, as in pass 1. Hence ``rho = 0``
gives exactly the base optimizer's step. A step costs about two conventional steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from .quant import frozen_ranges, weight_layers


def perturbation_from_gradients(grads: list[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """eps_l = rho * g_l / ||g|| with one global norm over all layers (zero when g = 0)."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).to(grads[0].dtype)
    return [rho * g / (norm + 1e-12) for g in grads]


class _SharpnessAware:
    """Shared two-step machinery; subclasses say what is perturbed and how."""

    def __init__(self, model: nn.Module, base_optimizer: torch.optim.Optimizer, rho: float = 0.05) -> None:
        if not rho >= 0:
            raise ValueError(f"rho (the neighbourhood radius) must be >= 0, got {rho!r}")
        self.model, self.base_optimizer, self.rho = model, base_optimizer, float(rho)
        self._saved_buffers: dict[str, torch.Tensor] | None = None
        self._ranges: contextlib.ExitStack | None = None

    # what the base optimizer exposes, so schedulers and code that inspects param_groups work
    @property
    def param_groups(self):
        return self.base_optimizer.param_groups

    @property
    def state(self):
        return self.base_optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base_optimizer.load_state_dict(state)

    def _targets(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _perturbation(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The ascent step from the gradients at the targets: rho * g / ||g|| (SAM, SAQ)."""
        return perturbation_from_gradients(grads, self.rho)

    def _perturb(self, eps: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def _unperturb(self) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Perturb by rho * g / ||g|| from the gradients now in ``.grad``; freeze statistics."""
        if self._saved_buffers is not None:
            raise RuntimeError("first_step called twice without second_step")
        targets = self._targets()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in targets]
        if not targets:
            raise ValueError("nothing to perturb: the model has no parameters this optimizer perturbs")
        self._perturb(self._perturbation([g.detach() for g in grads]))
        self._saved_buffers = {n: b.detach().clone() for n, b in self.model.named_buffers()}
        self._ranges = contextlib.ExitStack()
        self._ranges.enter_context(frozen_ranges(self.model))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def restore(self) -> None:
        """Undo the perturbation and restore pass 1's statistics without stepping (e.g. after an error)."""
        if self._saved_buffers is None:
            return
        try:
            self._unperturb()
        finally:
            self._ranges.close()
            for n, b in self.model.named_buffers():
                if n in self._saved_buffers:
                    b.copy_(self._saved_buffers[n])
            self._saved_buffers, self._ranges = None, None

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Undo the perturbation, restore the statistics, apply the base step with the current grads."""
        if self._saved_buffers is None:
            raise RuntimeError("second_step called before first_step")
        self.restore()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Both passes with a closure that zeroes grads, computes the loss and calls backward."""
        if closure is None:
            raise ValueError("a sharpness-aware step needs a closure (or call first_step / second_step)")
        with torch.enable_grad():
            loss = closure()
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()
        return loss


class SAQ(_SharpnessAware):
    """Sharpness-aware quantization: eps on the quantized weights of every QConv2d/QLinear."""

    def _targets(self) -> list[torch.Tensor]:
        self._layers = list(weight_layers(self.model).values())
        return [layer.weight for layer in self._layers]

    def _perturb(self, eps: list[torch.Tensor]) -> None:
        for layer, e in zip(self._layers, eps, strict=True):
            layer.perturbation = e

    def _unperturb(self) -> None:
        for layer in self._layers:
            layer.perturbation = None


class SAM(_SharpnessAware):
    """Sharpness-aware minimization on the latent parameters (all that require grad)."""

    def _targets(self) -> list[torch.Tensor]:
        self._params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        return self._params

    def _perturb(self, eps: list[torch.Tensor]) -> None:
        self._eps = eps
        for p, e in zip(self._params, eps, strict=True):
            p.add_(e)

    def _unperturb(self) -> None:
        for p, e in zip(self._params, self._eps, strict=True):
            p.sub_(e)
        self._eps = []


class ASAM(SAM):
    """Adaptive SAM (Kwon et al., ICML 2021, the official SamsungLabs/ASAM step) on the latent parameters.

    eps = rho * T^2 g / ||T g|| with one global norm, where T = |w| + eta elementwise for parameters named
    ``weight`` (convolution, linear and normalization weights) and T = 1 for the others (biases). Paper
    defaults: rho = 0.5, eta = 0.01.
    """

    def __init__(self, model: nn.Module, base_optimizer: torch.optim.Optimizer, rho: float = 0.5, eta: float = 0.01):
        super().__init__(model, base_optimizer, rho)
        if not eta >= 0:
            raise ValueError(f"ASAM eta must be >= 0, got {eta!r}")
        self.eta = float(eta)

    def _perturbation(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        named = {id(p): n for n, p in self.model.named_parameters()}
        scales = [
            p.detach().abs() + self.eta if "weight" in named.get(id(p), "").rsplit(".", 1)[-1] else None
            for p in self._params
        ]
        tg = [g if t is None else t * g for g, t in zip(grads, scales, strict=True)]
        norm = torch.sqrt(sum((v.double() ** 2).sum() for v in tg)).to(grads[0].dtype)
        return [self.rho * (v if t is None else t * v) / (norm + 1e-16) for v, t in zip(tg, scales, strict=True)]


def sharpness_aware_step(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    wrapper: _SharpnessAware,
) -> tuple[float, torch.Tensor]:
    """One two-pass update with a :class:`SAQ` or :class:`SAM` wrapper; returns (pass-1 loss, pass-1 logits)."""
    wrapper.zero_grad()
    logits = model(x)
    loss1 = loss_fn(logits, y)
    loss1.backward()
    wrapper.first_step(zero_grad=True)
    try:
        loss_fn(model(x), y).backward()
    except BaseException:
        wrapper.restore()
        raise
    wrapper.second_step()
    return float(loss1.detach()), logits.detach()


def saq_step(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer | SAQ,
    rho: float,
) -> tuple[float, torch.Tensor]:
    """One SAQ update with :class:`SAQ` (wrapping ``optimizer`` if it is a plain optimizer).

    Returns (pass-1 loss, pass-1 logits) for logging.
    """
    opt = optimizer if isinstance(optimizer, SAQ) else SAQ(model, optimizer, rho)
    return sharpness_aware_step(model, loss_fn, x, y, opt)
