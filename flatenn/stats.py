"""Small statistics without SciPy: t quantiles, mean confidence intervals, paired differences, Spearman."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30.
_T975 = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423]  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """t_{0.975, df}: the table for df <= 30, a Cornish-Fisher expansion beyond (error < 1e-4)."""
    if df < 1:
        return float("nan")
    if df <= 30:
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(values: Sequence[float] | np.ndarray) -> tuple[float, float, float, float, int]:
    """(mean, sample sd, 95% CI low, 95% CI high, n) with a Student-t interval; n=1: CI = mean."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return (float("nan"),) * 4 + (0,)  # type: ignore[return-value]
    m = float(v.mean())
    if n == 1:
        return m, 0.0, m, m, 1
    sd = float(v.std(ddof=1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return m, sd, m - half, m + half, n


def summarize_campaign(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and 95% CI of accuracy (and mean loss, faults) per model, fault model, bits and rate."""
    keys = ["model_id", "fault_model", "bits", "rate", "count"]
    rows = []
    for k, g in df.groupby(keys, sort=True):
        m, sd, lo, hi, n = mean_ci(g["accuracy"])
        rows.append(dict(zip(keys, k, strict=True), trials=n, accuracy_mean=m, accuracy_sd=sd,
                         accuracy_ci_low=lo, accuracy_ci_high=hi, loss_mean=float(g["loss"].mean()),
                         faulty_bits_mean=float(g["faulty_bits"].mean()),
                         clean_accuracy=float(g["clean_accuracy"].iloc[0])))  # fmt: skip
    return pd.DataFrame(rows)


PAIR_KEYS = ["fault_model", "bits", "rate", "count", "seed", "trial"]


def paired_difference(df: pd.DataFrame, model_a: str, model_b: str, value: str = "accuracy") -> pd.DataFrame:
    """Mean of value(A) - value(B) over trials that share a fault map, with a 95% CI, per point.

    Both models must have been run with the same campaign seed (common random numbers); rows are
    matched on (fault model, bits, rate, count, seed, trial).
    """
    a = df[df["model_id"] == model_a].set_index(PAIR_KEYS)[value]
    b = df[df["model_id"] == model_b].set_index(PAIR_KEYS)[value]
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    if joined.empty:
        raise ValueError(f"no shared fault maps between {model_a!r} and {model_b!r}")
    joined["diff"] = joined["a"] - joined["b"]
    rows = []
    for k, g in joined.groupby(level=["fault_model", "bits", "rate", "count"], sort=True):
        m, sd, lo, hi, n = mean_ci(g["diff"])
        rows.append(dict(zip(["fault_model", "bits", "rate", "count"], k, strict=True), model_a=model_a,
                         model_b=model_b, trials=n, diff_mean=m, diff_sd=sd, ci_low=lo, ci_high=hi))  # fmt: skip
    return pd.DataFrame(rows)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float, int]:
    """Spearman rho with a 95% CI by Fisher's z (SE = 1.06 / sqrt(n - 3), Fieller et al.).

    Returns (rho, ci_low, ci_high, n); the CI is NaN for n < 4.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 3:
        return float("nan"), float("nan"), float("nan"), n
    rx, ry = rankdata(x), rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if n < 4 or abs(rho) >= 1:
        return rho, float("nan") if n < 4 else rho, float("nan") if n < 4 else rho, n
    z, se = math.atanh(rho), 1.06 / math.sqrt(n - 3)
    return rho, math.tanh(z - _Z975 * se), math.tanh(z + _Z975 * se), n
