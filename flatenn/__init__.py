"""flatenn: fault tolerance of quantized, activation-sparse DNNs (a FlatENN reproduction suite).

Reusable parts: :mod:`flatenn.quant` (quantized layers, integer weight codes, calibration),
:mod:`flatenn.convert` (quantize any PyTorch model, import torch.ao int8 models),
:mod:`flatenn.activations` (FATReLU, sparsity), :mod:`flatenn.saq` (SAQ and SAM optimizer wrappers),
:mod:`flatenn.faults` / :mod:`flatenn.injector` / :mod:`flatenn.campaign` (bit-level fault campaigns),
:mod:`flatenn.sharpness` (sharpness metrics), :mod:`flatenn.claims` (the paper's claims).
"""

__version__ = "0.2.0"

from .convert import import_torch_ao, quantize_model  # noqa: E402
from .quant import calibrate_activations  # noqa: E402
from .saq import SAM, SAQ  # noqa: E402

calibrate = calibrate_activations  # the name the toolkit docs use

__all__ = ["SAM", "SAQ", "calibrate", "calibrate_activations", "import_torch_ao", "quantize_model"]
