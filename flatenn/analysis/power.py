"""Power of the one-sample (paired) t test over training seeds, from the noncentral t distribution.

A claim's effect is a mean over seeds of per-seed paired differences; its test is a two-sided
one-sample t test. With seed-level standard deviation ``sd``, a true effect ``delta`` and ``n`` seeds,
the statistic follows a noncentral t with ``n - 1`` degrees of freedom and noncentrality
``delta * sqrt(n) / sd``; the power is the probability that it falls outside ``±t_{1-alpha/2, n-1}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import stats


def t_power(n: int, delta: float, sd: float, alpha: float) -> float:
    """Power of the two-sided one-sample t test at level ``alpha`` with ``n`` seeds."""
    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0 if delta != 0 else alpha
    df, nc = n - 1, abs(delta) * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(delta: float, sd: float, alpha: float, power: float = 0.8, cap: int = 10_000) -> int | None:
    """The smallest number of seeds (>= 2) reaching ``power``; None beyond ``cap``."""
    if not (delta != 0 and math.isfinite(sd) and sd >= 0 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(
            f"need delta != 0, a finite sd >= 0, alpha and power in (0, 1); got {delta}, {sd}, {alpha}, {power}"
        )
    return smallest_seeds(lambda n: t_power(n, delta, sd, alpha) >= power, cap)


def smallest_seeds(reaches: Callable[[int], bool], cap: int = 10_000) -> int | None:
    """The smallest n >= 2 for which ``reaches(n)`` holds, for a condition that stays true once it holds (power
    grows with n): doubling, then bisection; None beyond ``cap``."""
    lo, hi = 2, 2
    while not reaches(hi):
        if hi >= cap:
            return None
        lo, hi = hi, min(2 * hi, cap)
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def detectable_effect(n: int, sd: float, alpha: float, power: float = 0.8) -> float:
    """The smallest effect the test detects with ``power`` at ``n`` seeds (same units as ``sd``)."""
    lo, hi = 0.0, max(sd, 1e-12)
    while t_power(n, hi, sd, alpha) < power:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_power(n, mid, sd, alpha) < power else (lo, mid)
    return hi


def tost_power(n: int, sesoi: float, sd: float, alpha: float) -> float:
    """Power of TOST at level ``alpha`` (each one-sided test) with ``n`` seeds when the true effect is 0: the
    usual noncentral-t approximation ``1 - 2 P(T' <= t_{1-alpha, n-1})``, T' noncentral t with ``n - 1`` degrees
    of freedom and noncentrality ``sesoi sqrt(n) / sd`` (clipped at 0; it ignores that both tests share s)."""
    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0
    df, nc = n - 1, sesoi * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha, df)
    return max(0.0, float(1 - 2 * stats.nct.cdf(crit, df, nc)))


def tost_seeds_for_power(sesoi: float, sd: float, alpha: float, power: float = 0.8, cap: int = 10_000) -> int | None:
    """The smallest number of seeds (>= 2) at which TOST reaches ``power`` for a true effect of 0; None beyond
    ``cap``."""
    if not (sesoi > 0 and math.isfinite(sd) and sd >= 0 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"need sesoi > 0, a finite sd >= 0, alpha and power in (0, 1); got {sesoi}, {sd}, {alpha}")
    return smallest_seeds(lambda n: tost_power(n, sesoi, sd, alpha) >= power, cap)


def sd_interval(sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The chi-square confidence interval of a standard deviation estimated from ``n`` values."""
    df = n - 1
    return (
        float(sd * math.sqrt(df / stats.chi2.ppf(1 - (1 - level) / 2, df))),
        float(sd * math.sqrt(df / stats.chi2.ppf((1 - level) / 2, df))),
    )
