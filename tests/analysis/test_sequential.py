"""Group-sequential boundaries against published tables and a simulation of the type I error they spend."""

import numpy as np
import pytest
from scipy import stats

from flatenn.analysis.sequential import boundaries, nominal_p, spent


@pytest.mark.parametrize(
    ("fractions", "spending", "published"),
    [
        # Lan-DeMets O'Brien-Fleming type, two-sided alpha 0.05 (R ldbounds::ldBounds / gsDesign sfLDOF)
        ([0.25, 0.5, 0.75, 1.0], "obrien_fleming", [4.3326, 2.9631, 2.3590, 2.0141]),
        ([0.5, 1.0], "obrien_fleming", [2.9626, 1.9686]),
        # Lan-DeMets Pocock type, five equal looks (ldbounds, iuse = 2)
        ([0.2, 0.4, 0.6, 0.8, 1.0], "pocock", [2.4380, 2.4268, 2.4101, 2.3966, 2.3859]),
    ],
)
def test_boundaries_match_published_tables(fractions, spending, published):
    assert boundaries(fractions, 0.05, spending) == pytest.approx(published, abs=2e-4)


def test_one_look_is_the_fixed_sample_test():
    assert boundaries([1.0], 0.05)[0] == pytest.approx(stats.norm.ppf(0.975), abs=1e-6)
    assert nominal_p([1.0], 0.0125)[0] == pytest.approx(0.0125, rel=1e-5)


def test_the_spent_alpha_is_the_simulated_type_one_error():
    """Under the null, Z_k = S_k / sqrt(t_k) for a Brownian motion S: crossing any boundary happens alpha of the time."""
    t = np.array([10, 20, 30, 40]) / 40
    c = boundaries(t, 0.05)
    rng = np.random.default_rng(0)
    inc = rng.normal(size=(400_000, len(t))) * np.sqrt(np.diff(np.concatenate([[0], t])))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    first = np.abs(z) >= c
    assert first.any(axis=1).mean() == pytest.approx(0.05, abs=0.0015)
    # and each look spends its increment of the spending function
    crossed_by = np.maximum.accumulate(first, axis=1).mean(axis=0)
    assert crossed_by == pytest.approx([spent(x, 0.05) for x in t], abs=0.0015)


def test_unequal_looks_and_bad_input():
    c = boundaries([0.3, 0.55, 1.0], 0.05)
    assert c[0] > c[1] > c[2] > stats.norm.ppf(0.975)
    for bad in ([0.5, 0.4], [0.0, 1.0], [0.5, 1.2], []):
        with pytest.raises(ValueError, match="fractions"):
            boundaries(bad, 0.05)
    with pytest.raises(ValueError, match="alpha"):
        spent(0.5, 1.5)
    with pytest.raises(ValueError, match="spending"):
        spent(0.5, 0.05, "haybittle")
