"""Training methods as a registry: one small class per way of updating the weights.

A method is a :class:`TrainingMethod` subclass registered by name with :func:`register_method`; a
:class:`~flatenn.core.train.TrainConfig` names it in ``optimizer`` and :func:`~flatenn.core.train.fit`,
the command line (``train --optimizer``) and the scales' variants look it up here. Every method uses
the same base optimizer (SGD with momentum, weight decay and the cosine schedule of ``fit``) and
decides what one step does with it. Built in: ``sgd``, ``saq`` (sharpness-aware quantization),
``sam`` (sharpness-aware minimization on the latent weights), ``asam`` (adaptive SAM), ``clip`` (weight
clipping); ``randbet`` (random bit error training) is registered by :mod:`flatenn.faults.randbet`, which
needs the fault sampler.

Adding one takes a class::

    @register_method
    class MyMethod(TrainingMethod):
        name = "mine"
        hyper_parameters = ("rho",)      # the TrainConfig fields it reads (recorded in its cache key)

        def step(self, x, y):
            ...                           # one update; return (loss as float, logits)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .quant import quantized_layers
from .saq import ASAM, SAM, SAQ, sharpness_aware_step
from .trace_penalty import bit_error_weights, composite_batchnorm, hutchinson_penalty, rademacher

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TrainingMethod:
    """One training step for ``model`` with the base ``optimizer``; configured by a TrainConfig.

    A new method is one subclass registered with :func:`register_method`: set ``name`` (what
    ``TrainConfig(optimizer=...)``, ``fit`` and ``python -m flatenn train --optimizer`` find it by),
    ``hyper_parameters`` (the :class:`flatenn.core.train.TrainConfig` fields it reads; a field it does not read is
    refused), ``passes_per_step`` (forward + backward passes per step: the declared training cost against SGD)
    and implement :meth:`step`; override :meth:`check` to refuse a config, :meth:`state_dict` /
    :meth:`load_state_dict` where a checkpoint must hold more than the base optimizer.
    """

    name: ClassVar[str] = ""
    hyper_parameters: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    passes_per_step: ClassVar[int] = 1  # forward + backward passes of one step (the declared training cost vs SGD)

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config, loss_fn: LossFn = F.cross_entropy):
        self.model, self.optimizer, self.config, self.loss_fn = model, optimizer, config, loss_fn

    @classmethod
    def check(cls, config) -> None:
        """Raise ValueError for a config this method cannot train (e.g. a negative radius)."""

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """One update on the batch; returns (loss, logits) of the forward at the current weights."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What a training checkpoint must hold beyond the base optimizer (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` from a checkpoint."""


METHODS: dict[str, type[TrainingMethod]] = {}


def register_method(cls: type[TrainingMethod]) -> type[TrainingMethod]:
    """Register a training method under ``cls.name`` (a class decorator); a name is registered once."""
    if not cls.name or not isinstance(cls.name, str):
        raise ValueError(f"{cls.__name__}: a training method needs a non-empty name")
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"a training method named {cls.name!r} is already registered ({METHODS[cls.name].__name__})")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[TrainingMethod]:
    """The registered training method class named ``name``.

    :raises ValueError: for a name that is not registered, listing the registered ones.
    """
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; registered: {sorted(METHODS)} (flatenn.core.methods)")
    return METHODS[name]


@register_method
class SGDMethod(TrainingMethod):
    """Conventional training: one forward, one backward, one optimizer step."""

    name = "sgd"
    description = "SGD with momentum and weight decay"

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        out = self.loss_fn(logits, y)
        out.backward()
        self.optimizer.step()
        return float(out.detach()), logits


class _SharpnessAwareMethod(TrainingMethod):
    hyper_parameters = ("rho",)
    passes_per_step = 2  # the ascent to the perturbed weights, then the descent from there
    wrapper_class: ClassVar[type] = SAQ

    @classmethod
    def check(cls, config) -> None:
        if config.rho < 0:
            raise ValueError(f"{cls.name.upper()} rho must be >= 0, got {config.rho}")

    def __init__(self, model, optimizer, config, loss_fn: LossFn = F.cross_entropy):
        super().__init__(model, optimizer, config, loss_fn)
        self.wrapper = self.wrapper_class(model, optimizer, config.rho)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        return sharpness_aware_step(self.model, self.loss_fn, x, y, self.wrapper)


@register_method
class SAQMethod(_SharpnessAwareMethod):
    """Sharpness-aware quantization (Liu et al. 2021, case 3): the ascent on the quantized weights."""

    name = "saq"
    description = "sharpness-aware quantization (perturbation of the quantized weights, radius rho)"
    wrapper_class = SAQ


@register_method
class SAMMethod(_SharpnessAwareMethod):
    """Sharpness-aware minimization (Foret et al. 2021): the ascent on the latent float weights."""

    name = "sam"
    description = "sharpness-aware minimization on the latent weights (radius rho)"
    wrapper_class = SAM


@register_method
class ASAMMethod(_SharpnessAwareMethod):
    """Adaptive SAM (Kwon et al. 2021): the scale-adaptive ascent on the latent weights (paper: rho 0.5, eta 0.01)."""

    name = "asam"
    hyper_parameters = ("rho", "eta")
    description = "adaptive sharpness-aware minimization on the latent weights (radius rho, offset eta)"
    wrapper_class = ASAM

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.eta < 0:
            raise ValueError(f"ASAM eta must be >= 0, got {config.eta}")

    def __init__(self, model, optimizer, config, loss_fn: LossFn = F.cross_entropy):
        TrainingMethod.__init__(self, model, optimizer, config, loss_fn)
        self.wrapper = ASAM(model, optimizer, config.rho, config.eta)


def clip_weights(model: nn.Module, w_max: float) -> None:
    """Clamp the latent weights of every quantized layer (the weight memory) to [-w_max, w_max] in place."""
    with torch.no_grad():
        for layer in quantized_layers(model).values():
            layer.weight.clamp_(-w_max, w_max)


def check_w_max(name: str, w_max, required: bool) -> None:
    if w_max is None:
        if required:
            raise ValueError(f"{name} needs w_max > 0, the weight clipping bound (Stutz et al. 2021: 0.1)")
        return
    if not w_max > 0:
        raise ValueError(f"{name}: w_max must be > 0, got {w_max!r}")


@register_method
class WeightClipMethod(SGDMethod):
    """SGD with the latent weights of every quantized layer clipped to [-w_max, w_max] from the start and after
    every update (Stutz et al., MLSys 2021: w_max = 0.1). Per-channel scales are max |w| / (2^(b-1) - 1), so
    clipping shrinks the quantization range and with it the damage a high bit can do."""

    name = "clip"
    hyper_parameters = ("w_max",)
    description = "SGD with weight clipping to [-w_max, w_max] (Stutz et al. 2021)"

    @classmethod
    def check(cls, config) -> None:
        check_w_max(cls.name, config.w_max, required=True)

    def __init__(self, model, optimizer, config, loss_fn: LossFn = F.cross_entropy):
        super().__init__(model, optimizer, config, loss_fn)
        clip_weights(model, config.w_max)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        out = super().step(x, y)
        clip_weights(self.model, self.config.w_max)
        return out


def method_seed(method: str, training_seed: int) -> int:
    """A method's own random stream for a training seed: a hash of its name and the seed (never a campaign's)."""
    digest = hashlib.sha256(f"{method}:{int(training_seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def trace_seed(training_seed: int) -> int:
    """The probe seed of a Hessian-trace run."""
    return method_seed("hessian", training_seed)


@register_method
class HessianTraceMethod(TrainingMethod):
    """Hessian-trace regularization (Pranto et al., arXiv 2504.01933): the loss plus a one-probe Hutchinson
    estimate of the Hessian trace over the stored weights, each weight's diagonal entry weighted by half its
    error variance under random bit flips at ``p_train`` (so the penalty is the second-order expected loss
    increase of those faults; :mod:`flatenn.core.trace_penalty`), minimized with its exact gradient.

    The probes come from a generator seeded by :func:`trace_seed` and checkpointed with the method, so a resumed
    run draws the same probes."""

    name = "hessian"
    hyper_parameters = ("p_train",)
    description = "Hessian-trace regularization (Hutchinson, bit-error-weighted at rate p_train)"
    # the loss's forward and backward, then the Hessian-vector product and the penalty's gradient through it
    # (a second and a third derivative), each about a forward/backward pair with the graph kept
    passes_per_step = 4
    probes = 1

    @classmethod
    def check(cls, config) -> None:
        if not 0 < config.p_train <= 1:
            raise ValueError(
                f"hessian: p_train must be in (0, 1], the bit error rate that weights the trace, got {config.p_train}"
            )
        if config.w_bits is None:
            raise ValueError("hessian weights the trace by bit-flip error variances: it needs quantized weights")

    def __init__(self, model, optimizer, config, loss_fn: LossFn = F.cross_entropy):
        super().__init__(model, optimizer, config, loss_fn)
        self.generator = torch.Generator().manual_seed(trace_seed(config.seed))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        layers = list(quantized_layers(self.model).values())
        params = [layer.weight for layer in layers]
        with composite_batchnorm(self.model):
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            weights = bit_error_weights(params, [layer.w_bits for layer in layers], self.config.p_train)
            probes = [rademacher(params, self.generator) for _ in range(self.probes)]
            penalty = hutchinson_penalty(loss, params, probes, weights)
            (loss + penalty).backward()
        self.optimizer.step()
        return float(loss.detach()), logits

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])
