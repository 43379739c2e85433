import numpy as np
import pandas as pd
import pytest

from flatenn.stats import mean_ci, paired_difference, rankdata, spearman, t975


def test_t_quantiles():
    assert t975(2) == pytest.approx(4.3027) and t975(1000) == pytest.approx(1.9623, abs=1e-3)
    assert t975(31) == pytest.approx(2.0395, abs=2e-4)


def test_mean_ci_known_values():
    m, sd, lo, hi, n = mean_ci([1.0, 2.0, 3.0])
    assert (m, sd, n) == (2.0, 1.0, 3)
    assert lo == pytest.approx(2 - 4.3027 / np.sqrt(3)) and hi == pytest.approx(2 + 4.3027 / np.sqrt(3))


def _synthetic(true_diff, seed, trials=60):
    rng = np.random.default_rng(seed)
    base = rng.normal(80, 10, trials)  # shared fault-map effect (common random numbers)
    rows = []
    for mid, shift in (("a", true_diff), ("b", 0.0)):
        acc = base + shift + rng.normal(0, 1, trials)
        rows += [{"model_id": mid, "fault_model": "bitflip", "bits": "all", "rate": 0.01, "count": -1, "seed": 0,
                  "trial": t, "accuracy": acc[t]} for t in range(trials)]
    return pd.DataFrame(rows)


def test_paired_ci_covers_true_difference_at_nominal_rate():
    covered = sum(
        (lambda r: r.ci_low <= 2.0 <= r.ci_high)(paired_difference(_synthetic(2.0, s), "a", "b").iloc[0]) for s in range(200)
    )
    assert 180 <= covered <= 199  # ~95% coverage (binomial 99.9% band around 190)


def test_paired_is_tighter_than_unpaired():
    r = paired_difference(_synthetic(2.0, 0), "a", "b").iloc[0]
    assert r.ci_high - r.ci_low < 2.0  # unpaired sd would be ~14 points


def test_spearman_and_ranks():
    assert rankdata(np.array([3.0, 1.0, 3.0])).tolist() == [2.5, 1.0, 2.5]
    rho, lo, hi, n = spearman([1, 2, 3, 4, 5, 6], [2, 4, 6, 8, 10, 13])
    assert rho == 1.0 and n == 6
    rho, lo, hi, n = spearman(np.arange(30), np.arange(30)[::-1] + np.random.default_rng(0).normal(0, 3, 30))
    assert rho < -0.8 and lo < rho < hi < 0
