"""How closely a re-measurement from the shipped models must match the recorded rows on another machine.

The same model, data and seeds give bit-identical numbers on one machine; another CPU's float kernels change
the last digits. These bounds were measured by re-measuring every model of ``results/smoke`` (recorded on an
Intel CPU) on an AMD EPYC (2026-12-07): every sharpness metric, landscape and loss agreed to 5e-6 relative,
except ε-sharpness (20 projected gradient-ascent steps amplify the difference: 2.3e-3 for one model of 40,
median 7e-7), and one campaign trial of 300 classified one evaluation example differently (its two top logits
tie to float precision) while its loss agreed to 1e-6. Each bound is wide enough for that and narrow enough to
catch a 1% edit of a value.
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-4  # losses, landscapes, accuracies of a whole table: a forward pass on other float kernels
SHARPNESS_RTOL = 1e-3  # iterative sharpness estimates (power iteration, Hutchinson, random directions)
METRIC_RTOL = {"eps_sharpness": 5e-3, "landscape1d": RTOL}  # per metric, where it differs from SHARPNESS_RTOL
ACCURACY_FLIPS = 1  # evaluation examples a trial's accuracy may differ by (a near-tie of the top two logits)


def metric_rtol(metric: str) -> float:
    """The relative tolerance of a re-measured sharpness metric."""
    return METRIC_RTOL.get(metric, SHARPNESS_RTOL)


def accuracy_agrees(fresh: np.ndarray, recorded: np.ndarray, n_eval: np.ndarray) -> np.ndarray:
    """Per trial: the accuracies (percent) differ by at most ``ACCURACY_FLIPS`` evaluation examples, beyond the
    ``%.6g`` rounding of the recorded value (``RTOL``)."""
    step = 100.0 / np.asarray(n_eval, dtype=float)
    recorded = np.asarray(recorded, float)
    slack = RTOL * np.maximum(np.abs(recorded), 1.0)
    return np.abs(np.asarray(fresh, float) - recorded) <= ACCURACY_FLIPS * step + slack
