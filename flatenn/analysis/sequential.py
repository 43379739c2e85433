"""Group-sequential boundaries: Lan-DeMets alpha spending, computed by numerical integration.

A case tested at looks with information fractions ``t_1 < ... < t_K = 1`` (seeds so far / seeds at the cap)
spends its two-sided level ``alpha`` over the looks: at look k it may reject when ``|Z_k| >= c_k``, with
``c_k`` chosen so that, under the null, the probability of first crossing at look k equals
``spend(t_k) - spend(t_{k-1})``. Under the null the score ``S_k = Z_k sqrt(t_k)`` is a Brownian motion
observed at ``t_k`` (independent normal increments), so the crossing probabilities follow from the density
of ``S_k`` on the continuation region, carried from look to look by convolution with the increment's
normal density (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19). The nominal p of a
boundary, ``2 (1 - Phi(c_k))``, is the level a look's test is held to (for t tests: the nominal-level
approach of Jennison & Turnbull, sec. 3.8).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

SPENDING = ("obrien_fleming", "pocock")
_GRID = 1201  # points of the continuation region's grid (Simpson weights; error < 1e-6 in the boundaries)
_MAX_Z = 12.0  # a boundary that spends (numerically) nothing


def spent(t: float, alpha: float, spending: str = "obrien_fleming") -> float:
    """Two-sided alpha spent by information fraction ``t`` (Lan-DeMets O'Brien-Fleming or Pocock type).

    O'Brien-Fleming type: each side spends ``alpha/2`` by the one-sided Lan-DeMets function, as in R's
    ldbounds and gsDesign (``sfLDOF``), so the boundaries match their published tables.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "obrien_fleming":  # each side spends alpha/2 by 2 - 2 Phi(z_{1-alpha/4} / sqrt(t))
        return float(2 * (2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 4) / np.sqrt(t))))
    if spending == "pocock":
        return float(alpha * np.log(1 + (np.e - 1) * t))
    raise ValueError(f"unknown spending function {spending!r}; known: {SPENDING}")


def _simpson(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w / 3


def boundaries(fractions: Sequence[float], alpha: float, spending: str = "obrien_fleming") -> np.ndarray:
    """Two-sided z boundaries ``c_1..c_K`` at the given increasing information fractions (last <= 1)."""
    t = np.asarray(fractions, dtype=np.float64)
    if len(t) == 0 or np.any(t <= 0) or np.any(t > 1 + 1e-12) or np.any(np.diff(t) <= 0):
        raise ValueError(f"information fractions must increase within (0, 1], got {list(fractions)}")
    out = np.empty(len(t))
    grid = dens = None  # continuation region of S_{k-1} and its (sub-)density there
    prev = 0.0
    for k, tk in enumerate(t):
        target = spent(tk, alpha, spending) - spent(prev, alpha, spending) if k else spent(tk, alpha, spending)
        if k == 0:

            def cross(c: float, tk=tk) -> float:
                return 2 * stats.norm.sf(c)

        else:
            sd = np.sqrt(tk - t[k - 1])
            mass = dens * _simpson(len(grid)) * (grid[1] - grid[0])

            def cross(c: float, tk=tk, sd=sd, mass=mass, grid=grid) -> float:
                b = c * np.sqrt(tk)
                return float(mass @ (stats.norm.sf((b - grid) / sd) + stats.norm.cdf((-b - grid) / sd)))

        if target <= 0 or cross(_MAX_Z) >= target:
            c = _MAX_Z
        else:
            c = optimize.brentq(lambda x, target=target: cross(x) - target, 0.0, _MAX_Z, xtol=1e-10)
        out[k] = c
        b = c * np.sqrt(tk)
        new_grid = np.linspace(-b, b, _GRID)
        if k == 0:
            dens = stats.norm.pdf(new_grid, scale=np.sqrt(tk))
        else:
            kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd
            dens = kernel @ mass
        grid, prev = new_grid, tk
    return out


def nominal_p(fractions: Sequence[float], alpha: float, spending: str = "obrien_fleming") -> np.ndarray:
    """Two-sided nominal p-value of each look's boundary: a look's test rejects when its p is at most this."""
    return 2 * stats.norm.sf(boundaries(fractions, alpha, spending))
