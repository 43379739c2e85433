"""The max-t band: its critical value against the t quantile (one point) and Bonferroni (independent points), its
simultaneous coverage by simulation, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flatenn.analysis.bands import max_t_band, max_t_critical


def test_one_point_gives_the_two_sided_t_quantile():
    for n in (5, 10, 20):
        assert max_t_critical(np.eye(1), n) == pytest.approx(stats.t.ppf(0.975, n - 1), rel=0.02)


def test_independent_points_need_about_the_sidak_value_and_perfectly_correlated_ones_the_single_t():
    k, n = 6, 20
    sidak = stats.t.ppf(1 - (1 - 0.95 ** (1 / k)) / 2, n - 1)  # exact for independent points, each with its own SD
    assert max_t_critical(np.eye(k), n) == pytest.approx(sidak, rel=0.02)
    assert max_t_critical(np.ones((k, k)), n) == pytest.approx(stats.t.ppf(0.975, n - 1), rel=0.02)


@pytest.mark.parametrize("n, k, rho", [(10, 8, 0.5), (10, 15, 0.8), (20, 15, 0.0)])  # the grids' sizes
def test_the_band_covers_every_true_mean_at_once_at_its_level(n, k, rho):
    rng = np.random.default_rng(n * 100 + k)
    true = rng.normal(0, 2, k)
    corr = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    sds = rng.uniform(0.5, 3, k)
    reps, covered = 300, 0
    for r in range(reps):
        x = true + rng.multivariate_normal(np.zeros(k), corr, size=n) * sds
        b = max_t_band(x, draws=5_000, seed=r)
        covered += bool(((b.low <= true) & (true <= b.high)).all())
    coverage = covered / reps
    se = np.sqrt(0.95 * 0.05 / reps)
    assert 0.95 - 3 * se <= coverage <= 0.95 + 3 * se


def test_the_band_is_seeded_and_narrower_than_bonferroni_for_correlated_points():
    from flatenn.analysis.stats import simultaneous_t_limits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 1)) + 0.3 * rng.normal(size=(12, 10))  # strongly correlated columns
    a, b = max_t_band(x, seed=5), max_t_band(x, seed=5)
    assert (a.low == b.low).all() and a.critical == b.critical
    lo, hi = simultaneous_t_limits(list(x.T))
    assert ((a.high - a.low) < (hi - lo)).all()


def test_a_column_without_spread_has_a_zero_width_band_and_signs_read_the_band():
    x = np.column_stack([np.zeros(8), np.linspace(1, 2, 8), -np.linspace(1, 2, 8), np.linspace(-1, 1, 8)])
    b = max_t_band(x)
    assert b.low[0] == b.high[0] == 0.0
    assert b.signs().tolist() == [0, 1, -1, 0]


@pytest.mark.parametrize("bad", [np.zeros((1, 3)), np.zeros(5), np.array([[0.0, np.nan], [1.0, 2.0]])])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        max_t_band(bad)
