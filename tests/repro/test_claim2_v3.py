"""Claim 2 under plan v3: correlations within (activation, method) cells, permutations that never cross cells, and
the claim-level rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flatenn.repro.claim2_v3 import claim2_rule, within_cell_rho


def test_a_correlation_made_only_by_differences_between_cells_is_not_found():
    rng = np.random.default_rng(0)
    cells = []
    for level in (0.0, 5.0, 10.0, 15.0):  # cells differ in both sharpness and drop, but not within a cell
        cells.append((level + rng.normal(0, 1, 10), level + rng.normal(0, 1, 10)))
    pooled_x = np.concatenate([x for x, _ in cells])
    pooled_y = np.concatenate([y for _, y in cells])
    assert stats.spearmanr(pooled_x, pooled_y)[0] > 0.8  # pooling across cells would call it strong
    rho, per_cell, p = within_cell_rho(cells, 5000, seed=1)
    assert abs(rho) < 0.35 and p > 0.05


def test_a_correlation_within_every_cell_is_found_and_the_cell_rhos_are_spearmans():
    rng = np.random.default_rng(1)
    cells = [(x, x + rng.normal(0, 0.3, 10)) for x in (rng.normal(0, 1, 10) for _ in range(4))]
    rho, per_cell, p = within_cell_rho(cells, 5000, seed=2)
    assert per_cell == pytest.approx([stats.spearmanr(x, y)[0] for x, y in cells])
    assert rho == pytest.approx(np.mean(per_cell)) and p < 0.001


def test_the_permutation_null_keeps_each_cells_values_in_that_cell():
    # one cell of constant drop has rho 0 under every permutation: the null is the other cells' alone
    x = np.arange(10.0)
    rho, per_cell, p = within_cell_rho([(x, np.ones(10)), (x, x)], 4000, seed=3)
    assert per_cell[0] == 0.0 and rho == pytest.approx(0.5)
    assert p < 0.01  # the permutations of the second cell rarely reach rho 1 / 2 in the mean


@pytest.mark.parametrize(
    "signs, verdict",
    [
        ([1, 1, 0], "supported"),
        ([1, 1, 1], "supported"),
        ([-1, -1, 0], "contradicted"),
        ([1, -1, 0], "mixed"),
        ([1, 0, 0], "mixed"),
        ([0, 0, 0], "inconclusive"),
        ([1, 1, -1], "mixed"),
    ],
)
def test_the_claim_level_rule(signs, verdict):
    assert claim2_rule(signs) == verdict
