"""Confidence intervals (scipy's): Student-t of a mean, used by campaigns, maps and the statistics, and the
distribution-free interval of a median, for quantities with outliers (wall times on a shared machine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def drop_nan(values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[~np.isnan(v)]


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float, float, int]:
    """(mean, sample sd, CI low, CI high, n) with a Student-t interval; n=1: CI = mean."""
    v = drop_nan(values)
    n = len(v)
    if n == 0:
        return (float("nan"),) * 4 + (0,)  # type: ignore[return-value]
    m = float(v.mean())
    if n == 1:
        return m, 0.0, m, m, 1
    sd = float(v.std(ddof=1))
    if sd == 0.0:
        return m, 0.0, m, m, n
    ci = stats.ttest_1samp(v, 0.0).confidence_interval(level)
    return m, sd, float(ci.low), float(ci.high), n


def bounded_mean_ci(values, low: float = 0.0, high: float = 100.0) -> tuple[float, float, float, float, int]:
    """:func:`mean_ci` with the interval clipped to the quantity's range (accuracy: 0..100)."""
    m, sd, lo, hi, n = mean_ci(values)
    return m, sd, max(lo, low), min(hi, high), n


def median_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float, int]:
    """(median, CI low, CI high, n): the order-statistic interval of the median (sign test; scipy's
    ``quantile_test``), valid for any continuous distribution, so one outlier does not move it; NaN bounds
    when n is too small for the level (n <= 5 at 95%)."""
    v = drop_nan(values)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    med = float(np.median(v))
    ci = stats.quantile_test(v, q=med, p=0.5).confidence_interval(level)
    return med, float(ci.low), float(ci.high), n
