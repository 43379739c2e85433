"""flatenn: fault tolerance of quantized, activation-sparse DNNs (a FlatENN reproduction suite).

Layout: :mod:`flatenn.core` (models, quantization, training), :mod:`flatenn.faults` (fault maps,
injection, campaigns), :mod:`flatenn.analysis` (statistics, sharpness), :mod:`flatenn.repro` (the
paper's claims, the experiment pipeline, results, verification, reports), :mod:`flatenn.cli`.

Reusable parts: :mod:`flatenn.core.quant` (quantized layers, integer weight codes, calibration),
:mod:`flatenn.core.convert` (quantize any PyTorch model, import torch.ao int8 models),
:mod:`flatenn.core.activations` (FATReLU, sparsity), :mod:`flatenn.core.saq` (SAQ and SAM optimizer wrappers),
:mod:`flatenn.faults.sampling` / :mod:`flatenn.faults.injector` / :mod:`flatenn.faults.campaign` (bit-level fault campaigns),
:mod:`flatenn.analysis.sharpness` (sharpness metrics), :mod:`flatenn.repro.claims` (the paper's claims).
"""

__version__ = "0.2.0"

import importlib
import importlib.abc
import importlib.util
import sys

from .core.convert import import_torch_ao, quantize_model  # noqa: E402
from .core.quant import calibrate_activations  # noqa: E402
from .core.saq import SAM, SAQ  # noqa: E402

calibrate = calibrate_activations  # the name the toolkit docs use

# The flat module names of flatenn 0.2 (``flatenn.quant``, ``flatenn.campaign``, ...) still import:
# they resolve to the same module objects in the grouped layout.
_MOVED = {"activations": "core", "convert": "core", "data": "core", "determinism": "core", "evaluate": "core",
          "fingerprint": "core", "locks": "core", "models": "core", "progress": "core", "quant": "core",
          "saq": "core", "train": "core", "zoo": "core", "injector": "faults", "campaign": "faults",
          "prefix": "faults", "vulnerability": "faults", "sharpness": "analysis", "stats": "analysis",
          "ablation": "repro", "claims": "repro", "experiment": "repro", "report": "repro",
          "results": "core", "scales": "repro", "verify": "repro"}  # fmt: skip


class _FlatNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``flatenn.<module>`` of the old flat layout as ``flatenn.<group>.<module>`` (same object)."""

    def find_spec(self, fullname: str, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix == __name__ and name in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{_MOVED[spec.name.rpartition('.')[2]]}.{spec.name.rpartition('.')[2]}")

    def exec_module(self, module) -> None:  # already executed under its grouped name
        pass


if not any(isinstance(f, _FlatNames) for f in sys.meta_path):
    sys.meta_path.insert(0, _FlatNames())  # first: a stale flat module file must not shadow the grouped one

__all__ = ["SAM", "SAQ", "calibrate", "calibrate_activations", "import_torch_ao", "quantize_model"]
