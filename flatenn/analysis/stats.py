"""Statistics for seed-level designs: t intervals and tests, TOST equivalence, Holm, and clustered Spearman.

The unit of replication is the training seed: every model of one seed shares that seed's fault maps
(pairing), and different seeds see different maps, so a t interval over per-seed effects contains
both training and fault-map variation. Correlations over models use the seed as a cluster: a
bootstrap that resamples whole seeds for the CI and a permutation test within seed blocks for the
p-value (no Fisher interval that would treat models of one seed as independent points).
Quantiles, tests and ranks come from :mod:`scipy.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..core.intervals import bounded_mean_ci, drop_nan, mean_ci

__all__ = [
    "ALPHA",
    "ClusteredCorrelation",
    "bounded_mean_ci",
    "clustered_spearman",
    "holm",
    "mean_ci",
    "sign_flip_p",
    "simultaneous_t_limits",
    "spearman_rho",
    "summarize_campaign",
    "t_test",
    "tost",
]

ALPHA = 0.05


def t_test(values: Sequence[float] | np.ndarray) -> float:
    """Two-sided one-sample t-test p-value of mean = 0 (NaN with fewer than 2 values or zero spread)."""
    v = drop_nan(values)
    if len(v) < 2 or np.all(v == v[0]):
        return float("nan") if len(v) < 2 else (0.0 if v[0] != 0 else 1.0)
    return float(stats.ttest_1samp(v, 0.0).pvalue)


def sign_flip_p(
    values: Sequence[float] | np.ndarray,
    exact_max: int = 20,
    resamples: int = 200_000,
    seed: int = 0,
    alternative: str = "two-sided",
) -> float:
    """Sign-flip permutation p of mean = 0 (Fisher's one-sample randomization test).

    Under the null each per-seed effect is symmetric about 0, so its sign is exchangeable: p is the share
    of sign vectors whose sum is at least as extreme as the observed one (``alternative``: ``"two-sided"``,
    |sum| at least the observed |sum|; ``"greater"``, sum at least the observed; ``"less"``, at most). Exact
    (all 2^n vectors, the observed one included) for n <= ``exact_max``, else ``resamples`` seeded random
    vectors with p = (1 + hits) / (1 + B). Its smallest two-sided value is 2 / 2^n: with 5 seeds 0.0625,
    whatever the effect.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    v = drop_nan(values)
    n = len(v)
    if n == 0:
        return float("nan")
    tol = 1e-12 * max(1.0, float(np.abs(v).sum()))

    def extreme(sums: np.ndarray) -> int:
        if alternative == "two-sided":
            return int(np.sum(np.abs(sums) >= abs(v.sum()) - tol))
        if alternative == "greater":
            return int(np.sum(sums >= v.sum() - tol))
        return int(np.sum(sums <= v.sum() + tol))

    if n <= exact_max:
        hits, total = 0, 0
        codes = np.arange(2**n, dtype=np.int64)
        for start in range(0, len(codes), 1 << 16):  # chunks keep memory flat at n = 20
            c = codes[start : start + (1 << 16)]
            signs = 1 - 2 * ((c[:, None] >> np.arange(n)) & 1)
            hits += extreme(signs @ v)
            total += len(c)
        return hits / total
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1 << 14):
        k = min(1 << 14, resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(k, n))
        hits += extreme(signs @ v)
    return (1 + hits) / (1 + resamples)


def tost_sign_flip_p(
    values: Sequence[float] | np.ndarray, sesoi: float, exact_max: int = 20, resamples: int = 200_000, seed: int = 0
) -> float:
    """Equivalence within +-``sesoi`` by two one-sided sign-flip tests: the larger of the p-value that the mean
    exceeds -sesoi (effects shifted up by sesoi, ``greater``) and that it is below +sesoi (shifted down,
    ``less``); the randomization counterpart of :func:`tost`."""
    v = drop_nan(values)
    if not len(v) or not sesoi > 0:
        return float("nan")
    up = sign_flip_p(v + sesoi, exact_max, resamples, seed, alternative="greater")
    down = sign_flip_p(v - sesoi, exact_max, resamples, seed, alternative="less")
    return max(up, down)


def simultaneous_t_limits(per_point: Sequence[np.ndarray], level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bonferroni-t limits for J means with familywise coverage ``level``: (lows, highs), one per point.

    Each point's values are its per-seed effects; each gets a two-sided t interval at 1 - (1 - level)/J.
    With probability >= ``level`` every true mean lies in its interval, so ``max(highs)`` bounds the largest
    true mean from above and ``max(lows)`` from below (a bound on a maximum, unlike the interval of the
    point that happens to have the largest sample mean).
    """
    j = len(per_point)
    lows, highs = np.full(j, np.nan), np.full(j, np.nan)
    for i, vals in enumerate(per_point):
        v = drop_nan(vals)
        if len(v) < 2:
            continue
        m, se = v.mean(), v.std(ddof=1) / np.sqrt(len(v))
        q = stats.t.ppf(1 - (1 - level) / (2 * j), len(v) - 1)
        lows[i], highs[i] = m - q * se, m + q * se
    return lows, highs


def tost(values: Sequence[float] | np.ndarray, sesoi: float) -> float:
    """Two one-sided t-tests for equivalence within ±sesoi: p = max of the two one-sided p-values.

    p < alpha means the mean lies inside (−sesoi, sesoi) at level alpha (same as the (1−2·alpha)
    t interval lying inside the margin).
    """
    v = drop_nan(values)
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


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`spearman_rho` of every row pair of two (rows, n) arrays at once (NaN where a row is constant).

    The Pearson correlation of the rows' average ranks, computed as :func:`numpy.corrcoef` does (centred
    ranks, covariance over n - 1, divided by each standard deviation in turn, clipped to [-1, 1]).
    """
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    out = np.full(len(x), np.nan)
    if x.shape[1] < 3:
        return out
    ok = ~(np.all(x == x[:, :1], axis=1) | np.all(y == y[:, :1], axis=1))
    if not ok.any():
        return out
    rx, ry = stats.rankdata(x[ok], axis=1), stats.rankdata(y[ok], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    dof = x.shape[1] - 1
    cov = np.einsum("ij,ij->i", rx, ry) / dof
    sx, sy = np.sqrt(np.einsum("ij,ij->i", rx, rx) / dof), np.sqrt(np.einsum("ij,ij->i", ry, ry) / dof)
    out[ok] = np.clip(cov / sx / sy, -1.0, 1.0)
    return out


@dataclass(frozen=True)
class ClusteredCorrelation:
    rho: float
    ci_low: float
    ci_high: float
    p_value: float
    p_equivalence: float
    n_points: int
    n_clusters: int


def clustered_spearman(
    x, y, clusters, sesoi: float = float("nan"), resamples: int = 2000, seed: int = 0
) -> ClusteredCorrelation:
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
    picks = [rng.integers(0, len(labels), len(labels)) for _ in range(resamples)]
    boot = _bootstrap_rhos(x, y, members, picks)
    boot = boot[~np.isnan(boot)]
    lo, hi = np.quantile(boot, [0.025, 0.975]) if len(boot) else (nan, nan)
    shuffled = np.empty((resamples, len(x)))
    for b in range(resamples):  # the draws in the order they were always made: the same p-values for a seed
        shuffled[b] = x
        for m in members:
            shuffled[b, m] = x[rng.permutation(m)]
    perm = spearman_rows(shuffled, np.broadcast_to(y, shuffled.shape))
    perm = perm[~np.isnan(perm)]
    p = float((1 + np.sum(np.abs(perm) >= abs(rho) - 1e-12)) / (1 + len(perm)))
    p_eq = float(max(np.mean(boot <= -sesoi), np.mean(boot >= sesoi))) if sesoi > 0 and len(boot) else nan
    return ClusteredCorrelation(rho, float(lo), float(hi), p, p_eq, len(x), len(labels))


def spearman_subsets(x: np.ndarray, y: np.ndarray, subsets: Sequence[np.ndarray]) -> np.ndarray:
    """``spearman_rho(x[s], y[s])`` for every index array ``s`` of ``subsets``; subsets of one length are ranked
    together in one vectorized pass (:func:`spearman_rows`)."""
    out = np.full(len(subsets), np.nan)
    lengths = np.array([len(s) for s in subsets], dtype=np.int64)
    for n in np.unique(lengths):
        if n < 3:
            continue
        which = np.flatnonzero(lengths == n)
        block = np.stack([subsets[i] for i in which])
        out[which] = spearman_rows(x[block], y[block])
    return out


def _bootstrap_rhos(x: np.ndarray, y: np.ndarray, members: list[np.ndarray], picks: list[np.ndarray]) -> np.ndarray:
    """Spearman rho of each cluster bootstrap sample (the clusters ``picks[b]``, concatenated in that order)."""
    return spearman_subsets(x, y, [np.concatenate([members[int(i)] for i in idx]) for idx in picks])


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
        rows.append(
            dict(
                zip(keys, k, strict=True),
                trials=n,
                accuracy_mean=m,
                accuracy_sd=sd,
                accuracy_ci_low=lo,
                accuracy_ci_high=hi,
                loss_mean=float(g["loss"].mean()),
                faulty_bits_mean=float(g["faulty_bits"].mean()),
                clean_accuracy=float(g["clean_accuracy"].iloc[0]),
            )
        )
    return pd.DataFrame(rows)
