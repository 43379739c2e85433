"""The graphical procedure against a published example, hand-computed updates, Holm, the closed test it abbreviates
(every intersection enumerated, 4-8 hypotheses, random graphs and p-values), and its family-wise error rate by
simulation under the global null with correlated test statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flatenn.analysis.graphical import Graph, closed_test, intersection_weights, shortcut_test
from flatenn.analysis.stats import holm

NAMES4 = ("H1", "H2", "H3", "H4")


def _random_graph(rng: np.random.Generator, m: int) -> Graph:
    w = rng.dirichlet(np.ones(m)) * rng.choice([1.0, rng.uniform(0.5, 1.0)])
    w[rng.random(m) < 0.3] = 0.0  # some hypotheses start without weight
    g = rng.random((m, m)) * (rng.random((m, m)) < 0.7)
    np.fill_diagonal(g, 0.0)
    rows = g.sum(axis=1, keepdims=True)
    g = np.where(rows > 0, g / np.where(rows > 0, rows, 1) * rng.uniform(0.5, 1.0, (m, 1)), 0.0)
    return Graph(tuple(f"H{i}" for i in range(m)), w, g)


def test_the_published_shortcut_example():
    """graphicalMCP's shortcut-testing vignette: two primary hypotheses at 1/2 each, each passing half its weight
    to the other primary and half to its secondary, alpha 0.025: H1, H2 and H4 are rejected, H3 is not."""
    g = Graph(
        NAMES4,
        np.array([0.5, 0.5, 0.0, 0.0]),
        np.array([[0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5], [0, 1, 0, 0], [1, 0, 0, 0]]),
    )
    r = shortcut_test(g, [0.018, 0.01, 0.105, 0.006], alpha=0.025)
    assert r.rejected.tolist() == [True, True, False, True]
    # by hand: H2 first (0.01 / 0.5 = 0.02), then H1 at weight 0.75 (0.018 / 0.75 = 0.024), then H4 at weight 0.5
    # (0.006 / 0.5 = 0.012, raised to the running 0.024), then H3 at weight 1 (0.105)
    assert r.adjusted_p == pytest.approx([0.024, 0.02, 0.105, 0.024])
    assert r.level[2] == pytest.approx(0.025)  # H3 ends with all the weight


def test_removing_hypotheses_updates_the_graph_as_the_vignette_shows():
    """graphicalMCP's get-started vignette: removing H1, H2 and H4 from its example graph leaves H3 with weight 1."""
    g = Graph(
        NAMES4,
        np.array([0.5, 0.5, 0.0, 0.0]),
        np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]]),
    )
    assert intersection_weights(g, [2]) == pytest.approx([0, 0, 1, 0])
    # removing H1 alone: its weight moves to H3, and H4 -> H1 -> H3 becomes H4 -> H3
    assert intersection_weights(g, [1, 2, 3]) == pytest.approx([0, 0.5, 0.5, 0])


@pytest.mark.parametrize("m", [1, 2, 4, 7])
def test_the_holm_graph_is_holm(m):
    rng = np.random.default_rng(m)
    for _ in range(50):
        p = rng.uniform(0, 0.08, m)
        r = shortcut_test(Graph.holm([f"H{i}" for i in range(m)]), p, alpha=0.05)
        assert r.adjusted_p == pytest.approx(holm(p))
        assert (r.rejected == (holm(p) <= 0.05)).all()


def test_a_fixed_sequence_stops_at_its_first_failure():
    g = Graph(("A", "B", "C"), np.array([1.0, 0, 0]), np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]))
    assert shortcut_test(g, [0.01, 0.04, 0.001]).rejected.tolist() == [True, True, True]
    assert shortcut_test(g, [0.01, 0.06, 0.001]).rejected.tolist() == [True, False, False]


@pytest.mark.parametrize("m", [4, 5, 6, 8])
def test_the_shortcut_equals_the_closed_test_on_random_graphs(m):
    rng = np.random.default_rng(100 + m)
    for _ in range(40 if m < 8 else 8):
        g = _random_graph(rng, m)
        p = rng.uniform(0, 0.1, m) ** rng.uniform(1, 3)
        assert shortcut_test(g, p).rejected.tolist() == closed_test(g, p).tolist()


def test_the_family_wise_error_rate_holds_under_the_global_null_with_correlated_statistics():
    rng = np.random.default_rng(2024)
    m, reps, alpha = 6, 4000, 0.05
    g = _random_graph(rng, m)
    g = Graph(g.names, g.weights / g.weights.sum(), g.transitions)  # use the full alpha
    corr = np.full((m, m), 0.6)
    np.fill_diagonal(corr, 1.0)
    z = rng.multivariate_normal(np.zeros(m), corr, size=reps)
    p = stats.norm.sf(z)  # one-sided tests, every null true
    fwer = np.mean([shortcut_test(g, row, alpha).rejected.any() for row in p])
    se = np.sqrt(alpha * (1 - alpha) / reps)
    assert fwer <= alpha + 3 * se
    assert fwer > 0.5 * alpha  # and it does spend alpha (Bonferroni under positive correlation: below alpha)


@pytest.mark.parametrize(
    "weights, transitions, match",
    [
        ([0.6, 0.6], [[0, 1], [1, 0]], "sum to at most 1"),
        ([-0.1, 0.5], [[0, 1], [1, 0]], ">= 0"),
        ([0.5, 0.5], [[0.2, 0.8], [1, 0]], "zero diagonal"),
        ([0.5, 0.5], [[0, 1.2], [1, 0]], "rows summing"),
        ([0.5, 0.5, 0], [[0, 1], [1, 0]], "weights"),
    ],
)
def test_a_bad_graph_is_refused_in_one_line(weights, transitions, match):
    with pytest.raises(ValueError, match=match):
        Graph(("A", "B"), np.array(weights, dtype=float), np.array(transitions, dtype=float))


def test_bad_p_values_and_alpha_are_refused():
    g = Graph.holm(["A", "B"])
    for p in ([0.1], [0.1, np.nan], [0.1, 1.5], [-0.1, 0.2]):
        with pytest.raises(ValueError, match="p-value"):
            shortcut_test(g, p)
    with pytest.raises(ValueError, match="alpha"):
        shortcut_test(g, [0.1, 0.2], alpha=0)
