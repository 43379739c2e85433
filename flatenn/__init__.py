"""flatenn: fault tolerance of quantized, activation-sparse DNNs (a FlatENN reproduction suite).

Reusable parts: :mod:`flatenn.quant` (quantized layers, integer weight codes),
:mod:`flatenn.activations` (FATReLU, sparsity), :mod:`flatenn.saq` (sharpness-aware quantization),
:mod:`flatenn.faults` / :mod:`flatenn.injector` / :mod:`flatenn.campaign` (bit-level fault
campaigns), :mod:`flatenn.sharpness` (sharpness metrics), :mod:`flatenn.claims` (the paper's claims).
"""

__version__ = "0.1.0"
