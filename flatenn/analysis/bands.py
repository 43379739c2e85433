"""Simultaneous confidence bands over the points of a grid (fault models x rates): one band that holds every point's
true mean at once with probability ``level``, so a per-rate effect can be read at every rate without a multiplicity
correction per point.

The band is max-t (as in Hothorn, Bretz & Westfall, Biometrical Journal 50:346-363, 2008): the critical value is the
``level`` quantile of the largest |t| over the points, each point's t studentized by its own SD, under normal seeds
with the correlation the paired seeds show between points; it is found by a seeded Monte-Carlo draw of whole samples
(the same numbers on every machine). The correlation is estimated, so with few seeds and many points the band
undercovers somewhat; ``tests/analysis/test_bands.py`` measures its coverage. Correlated points make it narrower than Bonferroni's band
(:func:`flatenn.analysis.stats.simultaneous_t_limits`), never wider than its Monte-Carlo error allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DRAWS = 20_000


@dataclass(frozen=True)
class Band:
    """Per point: the mean over seeds and the band's limits; the critical value and the number of seeds."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    critical: float
    n: int

    def signs(self) -> np.ndarray:
        """Per point: +1 where the band lies above 0, -1 below, 0 where it contains 0."""
        return np.where(self.low > 0, 1, np.where(self.high < 0, -1, 0))


def max_t_critical(corr: np.ndarray, n: int, level: float = 0.95, draws: int = DRAWS, seed: int = 0) -> float:
    """The ``level`` quantile of max |t_i| over the points, each t_i a one-sample t statistic of n seeds with its
    own standard deviation, the seeds' rows drawn normal with correlation ``corr`` between points (singular
    allowed: points that move together, or more points than seeds). Simulated whole samples, not a common-variance
    multivariate t: each point is studentized by its own SD, as the band's points are."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n < 2:
        raise ValueError(f"a t band needs at least 2 seeds, got {n}")
    vals, vecs = np.linalg.eigh(np.asarray(corr, dtype=float))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    out = np.empty(draws)
    block = max(1, 2_000_000 // (n * len(vals)))  # bounded memory
    for start in range(0, draws, block):
        b = min(block, draws - start)
        x = rng.standard_normal((b, n, len(vals))) @ root.T
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
        out[start : start + b] = np.abs(t).max(axis=1)
    return float(np.quantile(out, level))


def max_t_band(values: np.ndarray, level: float = 0.95, draws: int = DRAWS, seed: int = 0) -> Band:
    """A simultaneous band over the columns of ``values`` (rows: training seeds, paired across columns; columns:
    the grid's points). A column without spread (e.g. an effect that is exactly 0 in every seed) gets a band of
    zero width and takes no part in the correlation."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 1:
        raise ValueError(f"values must be seeds x points with at least 2 seeds, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite: every seed measured at every point (paired)")
    n = v.shape[0]
    mean, sd = v.mean(axis=0), v.std(axis=0, ddof=1)
    spread = sd > 0
    half = np.zeros(v.shape[1])
    critical = 0.0
    if spread.any():
        corr = np.atleast_2d(np.corrcoef(v[:, spread], rowvar=False))
        critical = max_t_critical(corr, n, level, draws, seed)
        half[spread] = critical * sd[spread] / np.sqrt(n)
    return Band(mean, mean - half, mean + half, critical, n)
