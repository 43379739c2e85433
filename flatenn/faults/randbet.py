"""Random bit error training (RandBET; Stutz et al., MLSys 2021 / TPAMI 2022) as a registered training method.

Each step, as we read their Algorithm 1: the gradient is the average of the gradient at the clean quantized
weights and the gradient at the same weights with random bit errors, injected at the training bit error
rate ``p_train`` (their setting: 1%) into the b-bit codes of every quantized layer; the latent weights are
then updated and clipped to [-w_max, w_max] (their w_max: 0.1; None: no clipping).

The errors are bit flips drawn by flatenn's own sampler (:func:`~flatenn.faults.sampling.sample_rate_maps`),
trial = the step's index, with a seed derived from the training seed and this method's name: training
never meets the maps of a campaign seed. They enter as SAQ's ``perturbation`` does (added to the quantized
weights, straight-through gradient), during the second pass only, with the first pass's activation ranges
and with every buffer restored afterwards, and are removed before the update. The step index is part of
the method's checkpointed state, so a resumed run injects the same errors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.methods import LossFn, TrainingMethod, check_w_max, clip_weights, method_seed, register_method
from ..core.quant import frozen_ranges, quantize_weight, quantized_layers
from .sampling import check_rate, faulty_codes, sample_rate_maps


def randbet_seed(training_seed: int) -> int:
    """The map seed of a RandBET run: a hash of the training seed and the method's name (never a campaign's)."""
    return method_seed("randbet", training_seed)


def bit_error_perturbations(model: torch.nn.Module, seed: int, step: int, rate: float) -> dict[str, torch.Tensor]:
    """Per quantized layer: faulty minus clean dequantized weights for this step's bit-flip map, as the
    layer's weight shape (float32; zero where no bit is hit)."""
    layers = quantized_layers(model)
    quantized = {name: quantize_weight(layer.weight.detach(), layer.w_bits) for name, layer in layers.items()}
    spec = [(name, codes.numel(), layers[name].w_bits) for name, (codes, _) in quantized.items()]
    maps = sample_rate_maps(spec, seed, step, rate)
    out = {}
    for name, (codes, scale) in quantized.items():
        fmap = maps[name]
        flat = codes.reshape(-1).cpu().numpy().astype(np.int64)
        eps = torch.zeros(codes.numel(), dtype=torch.float32)
        if fmap.weight_index.size:
            idx = fmap.weight_index
            new = faulty_codes(flat[idx], fmap.mask, "bitflip", layers[name].w_bits)
            s = scale.detach().cpu().to(torch.float32)[torch.from_numpy(idx // (codes.numel() // codes.shape[0]))]
            eps[torch.from_numpy(idx)] = (
                torch.from_numpy(new.astype(np.float32)) * s - torch.from_numpy(flat[idx].astype(np.float32)) * s
            )
        out[name] = eps.reshape(codes.shape).to(layers[name].weight.device)
    return out


@register_method
class RandBETMethod(TrainingMethod):
    """Random bit error training: gradients averaged over the clean and a bit-error-perturbed quantized model."""

    name = "randbet"
    passes_per_step = 2  # the clean weights and their bit-flipped copy
    hyper_parameters = ("p_train", "w_max")
    description = "random bit error training at p_train with weight clipping to w_max (Stutz et al. 2021)"

    @classmethod
    def check(cls, config) -> None:
        check_rate(config.p_train)
        if not config.p_train > 0:
            raise ValueError("randbet needs p_train > 0, the training bit error rate (Stutz et al.: 0.01)")
        check_w_max(cls.name, config.w_max, required=False)

    def __init__(self, model, optimizer, config, loss_fn: LossFn = F.cross_entropy):
        super().__init__(model, optimizer, config, loss_fn)
        self.seed, self.step_index = randbet_seed(config.seed), 0
        if config.w_max is not None:
            clip_weights(model, config.w_max)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        (0.5 * loss).backward()
        layers = quantized_layers(self.model)
        eps = bit_error_perturbations(self.model, self.seed, self.step_index, self.config.p_train)
        saved = {n: b.detach().clone() for n, b in self.model.named_buffers()}
        try:
            with frozen_ranges(self.model):
                for name, layer in layers.items():
                    layer.perturbation = eps[name]
                (0.5 * self.loss_fn(self.model(x), y)).backward()
        finally:  # errors removed and statistics restored before the update (also after an exception)
            for layer in layers.values():
                layer.perturbation = None
            with torch.no_grad():
                for n, b in self.model.named_buffers():
                    b.copy_(saved[n])
        self.optimizer.step()
        if self.config.w_max is not None:
            clip_weights(self.model, self.config.w_max)
        self.step_index += 1
        return float(loss.detach()), logits.detach()

    def state_dict(self) -> dict:
        return {"step_index": self.step_index}

    def load_state_dict(self, state: dict) -> None:
        self.step_index = int(state.get("step_index", 0))
