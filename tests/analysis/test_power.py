"""Power of the seed-level t test, checked against textbook values and a simulation."""

import numpy as np
import pytest
from scipy import stats

from flatenn.analysis.power import detectable_effect, seeds_for_power, t_power


def test_textbook_values():
    # one-sample two-sided t test, alpha 0.05, 80% power: d = 1 needs 10, d = 0.5 needs 34 (Cohen's tables)
    assert t_power(10, 1.0, 1.0, 0.05) == pytest.approx(0.8031, abs=1e-3)
    assert seeds_for_power(1.0, 1.0, 0.05) == 10 and seeds_for_power(0.5, 1.0, 0.05) == 34
    assert seeds_for_power(-0.5, 1.0, 0.05) == 34  # the sign of the effect does not matter
    assert detectable_effect(10, 1.0, 0.05) == pytest.approx(0.996, abs=2e-3)


def test_power_matches_a_simulation():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.3, (100_000, 8))
    simulated = float((stats.ttest_1samp(x, 0.0, axis=1).pvalue < 0.01).mean())
    assert t_power(8, 1.0, 1.3, 0.01) == pytest.approx(simulated, abs=0.005)


def test_bad_input_and_the_cap():
    with pytest.raises(ValueError):
        seeds_for_power(0.0, 1.0, 0.05)
    assert seeds_for_power(1e-3, 1.0, 0.05, cap=100) is None


def test_tost_power_agrees_with_simulation_and_seeds_reach_it():
    import numpy as np
    from scipy import stats as st

    from flatenn.analysis.power import tost_power, tost_seeds_for_power

    rng = np.random.default_rng(0)
    n, sesoi, sd, alpha = 15, 1.0, 1.2, 0.05
    x = rng.normal(0, sd, (20000, n))
    m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / np.sqrt(n)
    crit = st.t.ppf(1 - alpha, n - 1)
    simulated = np.mean(((m + sesoi) / se > crit) & ((m - sesoi) / se < -crit))
    assert tost_power(n, sesoi, sd, alpha) == pytest.approx(simulated, abs=0.03)
    k = tost_seeds_for_power(sesoi, sd, alpha, 0.8)
    assert tost_power(k, sesoi, sd, alpha) >= 0.8 > tost_power(k - 1, sesoi, sd, alpha)


def test_the_sd_interval_covers_at_its_level():
    import numpy as np

    from flatenn.analysis.power import sd_interval

    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        s = rng.normal(0, 2.0, 10).std(ddof=1)
        lo, hi = sd_interval(s, 10)
        hits += lo <= 2.0 <= hi
    assert 0.93 <= hits / 2000 <= 0.97
