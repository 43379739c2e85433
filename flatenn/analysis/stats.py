"""Statistics for seed-level designs: t intervals and tests, TOST equivalence, Holm, and clustered Spearman.

The unit of replication is the training seed: every model of one seed shares that seed's fault maps
(pairing), and different seeds see different maps, so a t interval over per-seed effects contains
both training and fault-map variation. Correlations over models use the seed as a cluster: a
bootstrap that resamples whole seeds for the CI and a permutation test within seed blocks for the
p-value (no Fisher interval that would treat models of one seed as independent points).
Quantiles, tests and ranks come from :mod:`scipy.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


def t975(df: int) -> float:
    """t_{0.975, df} (NaN for df < 1)."""
    return float(stats.t.ppf(0.975, df)) if df >= 1 else float("nan")


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[~np.isnan(v)]


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float, float, int]:
    """(mean, sample sd, CI low, CI high, n) with a Student-t interval; n=1: CI = mean."""
    v = _clean(values)
    n = len(v)
    if n == 0:
        return (float("nan"),) * 4 + (0,)  # type: ignore[return-value]
    m = float(v.mean())
    if n == 1:
        return m, 0.0, m, m, 1
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return m, sd, m - half, m + half, n


def bounded_mean_ci(values, low: float = 0.0, high: float = 100.0) -> tuple[float, float, float, float, int]:
    """:func:`mean_ci` with the interval clipped to the quantity's range (accuracy: 0..100)."""
    m, sd, lo, hi, n = mean_ci(values)
    return m, sd, max(lo, low), min(hi, high), n


def t_test(values: Sequence[float] | np.ndarray) -> float:
    """Two-sided one-sample t-test p-value of mean = 0 (NaN with fewer than 2 values or zero spread)."""
    v = _clean(values)
    if len(v) < 2 or np.all(v == v[0]):
        return float("nan") if len(v) < 2 else (0.0 if v[0] != 0 else 1.0)
    return float(stats.ttest_1samp(v, 0.0).pvalue)


def tost(values: Sequence[float] | np.ndarray, sesoi: float) -> float:
    """Two one-sided t-tests for equivalence within ±sesoi: p = max of the two one-sided p-values.

    p < alpha means the mean lies inside (−sesoi, sesoi) at level alpha (same as the (1−2·alpha)
    t interval lying inside the margin).
    """
    v = _clean(values)
    if not sesoi > 0 or len(v) < 2:
        return float("nan")
    if np.all(v == v[0]):
        return 0.0 if abs(v[0]) < sesoi else 1.0
    p_low = stats.ttest_1samp(v, -sesoi, alternative="greater").pvalue
    p_high = stats.ttest_1samp(v, sesoi, alternative="less").pvalue
    return float(max(p_low, p_high))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs are left out of the family and stay NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def spearman_rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])


@dataclass(frozen=True)
class ClusteredCorrelation:
    rho: float
    ci_low: float
    ci_high: float
    p_value: float
    p_equivalence: float
    n_points: int
    n_clusters: int


def clustered_spearman(x, y, clusters, sesoi: float = float("nan"), resamples: int = 2000,
                       seed: int = 0) -> ClusteredCorrelation:  # fmt: skip
    """Spearman rho over points grouped in clusters (training seeds).

    CI: percentile bootstrap resampling whole clusters (scipy.stats.bootstrap over cluster labels).
    p-value: permutation test that shuffles x within each cluster (the design's exchangeable units).
    p_equivalence: bootstrap TOST, max(P*(rho ≤ −sesoi), P*(rho ≥ sesoi)).
    """
    x, y, c = np.asarray(x, float), np.asarray(y, float), np.asarray(clusters)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y, c = x[ok], y[ok], c[ok]
    labels = np.unique(c)
    rho = spearman_rho(x, y)
    nan = float("nan")
    if np.isnan(rho) or len(labels) < 2:
        return ClusteredCorrelation(rho, nan, nan, nan, nan, len(x), len(labels))
    members = [np.flatnonzero(c == lab) for lab in labels]
    rng = np.random.default_rng(seed)

    def stat(idx: np.ndarray) -> float:
        rows = np.concatenate([members[int(i)] for i in idx])
        return spearman_rho(x[rows], y[rows])

    boot = np.array([stat(rng.integers(0, len(labels), len(labels))) for _ in range(resamples)])
    boot = boot[~np.isnan(boot)]
    lo, hi = (np.quantile(boot, [0.025, 0.975]) if len(boot) else (nan, nan))
    perm = np.empty(resamples)
    for b in range(resamples):
        xp = x.copy()
        for m in members:
            xp[m] = x[rng.permutation(m)]
        perm[b] = spearman_rho(xp, y)
    perm = perm[~np.isnan(perm)]
    p = float((1 + np.sum(np.abs(perm) >= abs(rho) - 1e-12)) / (1 + len(perm)))
    p_eq = float(max(np.mean(boot <= -sesoi), np.mean(boot >= sesoi))) if sesoi > 0 and len(boot) else nan
    return ClusteredCorrelation(rho, float(lo), float(hi), p, p_eq, len(x), len(labels))


def summarize_campaign(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and 95% CI (clipped to 0..100) of accuracy per model, fault model, bits, layers, rate.

    The CI is over fault trials of one model: it describes that model's spread under faults, not a
    comparison between models.
    """
    keys = ["model_id", "fault_model", "bits", "layers", "n_eval", "rate", "count"]
    keys = [k for k in keys if k in df.columns]
    rows = []
    for k, g in df.groupby(keys, sort=True):
        m, sd, lo, hi, n = bounded_mean_ci(g["accuracy"])
        rows.append(dict(zip(keys, k, strict=True), trials=n, accuracy_mean=m, accuracy_sd=sd,
                         accuracy_ci_low=lo, accuracy_ci_high=hi, loss_mean=float(g["loss"].mean()),
                         faulty_bits_mean=float(g["faulty_bits"].mean()),
                         clean_accuracy=float(g["clean_accuracy"].iloc[0])))  # fmt: skip
    return pd.DataFrame(rows)


PAIR_KEYS = ["fault_model", "bits", "rate", "count", "seed", "trial"]


def paired_difference(df: pd.DataFrame, model_a: str, model_b: str, value: str = "accuracy") -> pd.DataFrame:
    """Mean of value(A) − value(B) over trials that share a fault map, with a 95% CI over trials, per point.

    Both models must have been run with the same map seed (common random numbers); rows are matched
    on (fault model, bits, rate, count, seed, trial). The CI is conditional on the maps sampled.
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
