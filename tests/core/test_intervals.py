"""Interval helpers checked against their definitions."""

import math

import numpy as np
import pytest
from scipy import stats

from flatenn.core.intervals import median_ci


@pytest.mark.parametrize("n", [6, 9, 18, 30])
def test_median_interval_is_the_order_statistic_interval_of_the_sign_test(n):
    x = np.random.default_rng(n).normal(size=n)
    med, lo, hi, count = median_ci(x)
    s = np.sort(x)
    # the widest symmetric pair (x_(k), x_(n+1-k)) whose miss probability 2 P(Bin(n, 1/2) <= k-1) is <= 5%
    k = max(j for j in range(1, n // 2 + 1) if 2 * stats.binom.cdf(j - 1, n, 0.5) <= 0.05)
    assert (med, lo, hi, count) == (float(np.median(x)), s[k - 1], s[n - k], n)
    coverage = 1 - 2 * stats.binom.cdf(k - 1, n, 0.5)
    assert coverage >= 0.95


def test_median_interval_ignores_an_outlier_and_nans():
    x = np.arange(1.0, 19.0)
    spoiled = x.copy()
    spoiled[-1] = 1e9
    assert median_ci(x)[:3] == median_ci(spoiled)[:3] == (9.5, 5.0, 14.0)
    assert median_ci([*x, math.nan])[3] == 18
    assert math.isnan(median_ci([])[0])
