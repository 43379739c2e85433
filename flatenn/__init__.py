"""flatenn: fault tolerance of quantized, activation-sparse DNNs (a FlatENN reproduction suite).

Layout: :mod:`flatenn.core` (models, quantization, training), :mod:`flatenn.faults` (fault maps,
injection, campaigns), :mod:`flatenn.analysis` (statistics, sharpness), :mod:`flatenn.repro` (the
paper's claims, the experiment pipeline, results, verification, reports), :mod:`flatenn.cli`.

Reusable parts: :mod:`flatenn.core.quant` (quantized layers, integer weight codes, calibration),
:mod:`flatenn.core.convert` (quantize any PyTorch model, import torch.ao int8 models),
:mod:`flatenn.core.activations` (FATReLU, sparsity), :mod:`flatenn.core.saq` (SAQ and SAM optimizer wrappers),
:mod:`flatenn.faults.sampling` / :mod:`flatenn.faults.injector` / :mod:`flatenn.faults.campaign` (bit-level fault campaigns),
:mod:`flatenn.core.methods` (training methods: SGD, SAQ, SAM, ASAM, weight clipping, your own;
:mod:`flatenn.faults.randbet` adds random bit error training),
:mod:`flatenn.analysis.sharpness` (sharpness metrics), :mod:`flatenn.repro.claims` (the paper's claims, read
from ``claims.toml``).
"""

__version__ = "0.4.0"

from .core.convert import import_torch_ao, quantize_model
from .core.quant import calibrate_activations
from .core.saq import SAM, SAQ
from .faults import randbet  # noqa: F401 - registers the "randbet" training method (it needs the sampler)

calibrate = calibrate_activations  # the name the toolkit docs use

__all__ = ["SAM", "SAQ", "calibrate", "calibrate_activations", "import_torch_ao", "quantize_model"]
