import numpy as np
import pytest
from scipy import stats

from flatenn.analysis.stats import (
    bounded_mean_ci,
    clustered_spearman,
    holm,
    mean_ci,
    t_test,
    tost,
)


def test_t_quantiles_and_mean_ci_known_values():
    m, sd, lo, hi, n = mean_ci([1.0, 2.0, 3.0])
    assert (m, sd, n) == (2.0, 1.0, 3) and hi - m == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert mean_ci([5.0])[2:4] == (5.0, 5.0)


def test_bounded_ci_stays_in_range():
    _, _, lo, hi, _ = bounded_mean_ci([100.0, 90.0])
    assert hi == 100.0 and lo >= 0.0


def test_holm_by_hand():
    # sorted p: 0.01 (x4), 0.02 (x3), 0.03 (x2), 0.04 (x1) -> 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])
    out = holm([0.01, float("nan")])
    assert out[0] == pytest.approx(0.01) and np.isnan(out[1])


def test_t_test_and_tost_known_answers():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    assert t_test(v) == pytest.approx(stats.ttest_1samp(v, 0).pvalue)
    small = np.array([-0.1, 0.05, 0.1, -0.05, 0.0])
    assert tost(small, 1.0) < 0.001  # clearly inside ±1
    assert tost(small + 5, 1.0) > 0.99  # clearly outside
    # TOST p < alpha exactly when the 90% t interval lies inside the margin
    rng = np.random.default_rng(1)
    for _ in range(200):
        x = rng.normal(rng.uniform(-1, 1), 0.5, 5)
        _, _, lo, hi, _ = mean_ci(x, level=0.90)
        assert (tost(x, 1.0) < 0.05) == (lo > -1.0 and hi < 1.0)


def _design(rng, clusters: int):
    """Models 0..3 per cluster (seed); y shares a cluster shift, so points within a cluster are dependent."""
    x = np.tile(np.arange(4.0), clusters) + rng.normal(0, 1, 4 * clusters)
    shift = np.repeat(rng.normal(0, 1.5, clusters), 4)
    return x, x + shift + rng.normal(0, 1.5, 4 * clusters), np.repeat(np.arange(clusters), 4)


def test_clustered_spearman_coverage_on_a_simulated_design():
    rng = np.random.default_rng(0)
    big_x, big_y, _ = _design(rng, 50000)
    truth = stats.spearmanr(big_x, big_y).statistic  # population rho of the design
    sims = 80
    cover = 0
    for _ in range(sims):
        x, y, c = _design(rng, 8)
        r = clustered_spearman(x, y, c, resamples=400, seed=int(rng.integers(1 << 30)))
        cover += r.ci_low <= truth <= r.ci_high
    assert cover / sims >= 0.8  # percentile bootstrap over 8 clusters: near nominal, somewhat liberal


def test_clustered_spearman_permutation_respects_clusters():
    rng = np.random.default_rng(2)
    x = rng.normal(size=20)
    r = clustered_spearman(x, 2 * x + rng.normal(0, 0.1, 20), np.repeat(np.arange(5), 4), sesoi=0.3, resamples=500)
    assert r.rho > 0.95 and r.p_value < 0.01 and r.ci_low > 0.8 and r.n_clusters == 5
    nul = clustered_spearman(x, rng.normal(size=20), np.repeat(np.arange(5), 4), resamples=500)
    assert nul.p_value > 0.01


def test_sign_flip_p_by_hand():
    from flatenn.analysis.stats import sign_flip_p

    # |±1 ±2 ±3| over the 8 sign vectors: 6, 0, 2, 4, 4, 2, 0, 6; observed |1 - 2 + 3| = 2 -> 6 of 8 reach it
    assert sign_flip_p([1.0, -2.0, 3.0]) == pytest.approx(6 / 8)
    assert sign_flip_p([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)  # the floor at 5 seeds
    assert sign_flip_p(np.arange(1.0, 11.0)) == pytest.approx(2 / 1024)
    assert sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    # beyond exact_max: seeded Monte Carlo, p = (1 + hits) / (1 + B) close to the exact value
    v = np.random.default_rng(3).normal(0.3, 1, 12)
    exact = sign_flip_p(v)
    mc = sign_flip_p(v, exact_max=5, resamples=100_000)
    assert mc == pytest.approx(exact, abs=0.01) and mc == sign_flip_p(v, exact_max=5, resamples=100_000)


def test_simultaneous_limits_one_point_is_the_t_interval_and_many_cover_together():
    from flatenn.analysis.stats import mean_ci, simultaneous_t_limits

    v = np.array([1.0, 2.5, 0.5, 3.0, 2.0])
    lo, hi = simultaneous_t_limits([v])
    _, _, tlo, thi, _ = mean_ci(v)
    assert (lo[0], hi[0]) == pytest.approx((tlo, thi))
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        per = [rng.normal(0, 1, 8) for _ in range(10)]
        lo, hi = simultaneous_t_limits(per)
        covered += bool(np.all((lo <= 0) & (hi >= 0)))
    assert covered / 2000 >= 0.94  # familywise coverage >= 95% (Bonferroni is conservative)


def test_one_sided_sign_flip_counts_the_sign_vectors_at_least_as_extreme():
    import itertools

    from flatenn.analysis.stats import sign_flip_p

    v = np.array([1.5, -0.5, 2.0, 0.7, -0.2, 1.1])
    sums = np.array([np.dot(s, v) for s in itertools.product([-1, 1], repeat=len(v))])
    assert sign_flip_p(v, alternative="greater") == pytest.approx(np.mean(sums >= v.sum() - 1e-12))
    assert sign_flip_p(v, alternative="less") == pytest.approx(np.mean(sums <= v.sum() + 1e-12))
    assert sign_flip_p(v) == pytest.approx(np.mean(np.abs(sums) >= abs(v.sum()) - 1e-12))
    with pytest.raises(ValueError, match="alternative"):
        sign_flip_p(v, alternative="bigger")


def test_tost_sign_flip_is_the_larger_one_sided_p_of_the_shifted_effects():
    from flatenn.analysis.stats import sign_flip_p, tost_sign_flip_p

    rng = np.random.default_rng(3)
    v = rng.normal(0.1, 0.5, 12)
    want = max(sign_flip_p(v + 1.0, alternative="greater"), sign_flip_p(v - 1.0, alternative="less"))
    assert tost_sign_flip_p(v, 1.0) == want
    assert tost_sign_flip_p(v, 1.0) < 0.01 < tost_sign_flip_p(v, 0.05)  # inside a wide margin, not a narrow one
