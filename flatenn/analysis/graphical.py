"""Graphical multiple testing (Bretz, Maurer, Brannath & Posch, Statistics in Medicine 28:586-604, 2009): one
family-wise error rate over hypotheses whose alpha moves along a graph when one of them is rejected.

A graph is a weight per hypothesis (``w_i >= 0``, summing to at most 1: hypothesis i starts at level ``w_i alpha``)
and a transition matrix (``g_ij >= 0``, zero diagonal, rows summing to at most 1: the share of i's weight that goes
to j when i is rejected). :func:`shortcut_test` is the sequentially rejective procedure (the paper's Algorithm 1)
with adjusted p-values; :func:`closed_test` is the closed testing procedure it abbreviates (a weighted Bonferroni
test of every intersection hypothesis, weights from :func:`intersection_weights`), written out by enumerating
every intersection so that a test can hold the two against each other. A hypothesis whose current weight is 0 is
never rejected at that step (also with p = 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOLERANCE = 1e-12  # sums of weights may exceed 1 by rounding


@dataclass(frozen=True)
class Graph:
    """Initial weights and transition matrix of a graphical procedure, with the hypotheses' names."""

    names: tuple[str, ...]
    weights: np.ndarray
    transitions: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=float)
        g = np.asarray(self.transitions, dtype=float)
        m = len(self.names)
        if len(set(self.names)) != m:
            raise ValueError(f"hypothesis names must be distinct, got {list(self.names)}")
        if w.shape != (m,) or g.shape != (m, m):
            raise ValueError(f"{m} hypotheses need {m} weights and an {m}x{m} transition matrix")
        if not (np.isfinite(w).all() and np.isfinite(g).all()):
            raise ValueError("weights and transitions must be finite")
        if (w < 0).any() or w.sum() > 1 + TOLERANCE:
            raise ValueError(f"weights must be >= 0 and sum to at most 1, got {w.tolist()}")
        if (g < 0).any() or (np.diag(g) != 0).any() or (g.sum(axis=1) > 1 + TOLERANCE).any():
            raise ValueError("transitions must be >= 0 with a zero diagonal and rows summing to at most 1")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "transitions", g)

    @classmethod
    def holm(cls, names: Sequence[str]) -> Graph:
        """Holm's procedure as a graph: equal weights, a rejection passes its weight to the others equally."""
        m = len(names)
        g = np.full((m, m), 1.0 / (m - 1)) if m > 1 else np.zeros((1, 1))
        np.fill_diagonal(g, 0.0)
        return cls(tuple(names), np.full(m, 1.0 / m), g)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise KeyError(f"no hypothesis {name!r} in the graph {list(self.names)}")
        return self.names.index(name)


def remove(weights: np.ndarray, transitions: np.ndarray, active: np.ndarray, j: int) -> None:
    """Take hypothesis ``j`` out of the graph in place (Algorithm 1, step 2): its weight moves along its edges and
    every path through it becomes a direct edge. ``active`` marks the hypotheses still in the graph."""
    g = transitions
    keep = active.copy()
    keep[j] = False
    weights[keep] += weights[j] * g[j, keep]
    weights[j] = 0.0
    new = g.copy()
    for l in np.flatnonzero(keep):
        denominator = 1.0 - g[l, j] * g[j, l]
        for k in np.flatnonzero(keep):
            if k == l or denominator <= 0:
                new[l, k] = 0.0
            else:
                new[l, k] = (g[l, k] + g[l, j] * g[j, k]) / denominator
    new[j, :] = 0.0
    new[:, j] = 0.0
    transitions[...] = new
    active[j] = False


def intersection_weights(graph: Graph, subset: Sequence[int]) -> np.ndarray:
    """The weights of the intersection hypothesis of ``subset``: the graph with every other hypothesis removed."""
    w, g = graph.weights.copy(), graph.transitions.copy()
    active = np.ones(len(w), dtype=bool)
    for j in range(len(w)):
        if j not in subset:
            remove(w, g, active, j)
    return w


@dataclass(frozen=True)
class GraphResult:
    """What a graphical procedure decided: per hypothesis, whether it was rejected, its adjusted p-value, and the
    level it was last tested at (its final weight times alpha)."""

    names: tuple[str, ...]
    rejected: np.ndarray
    adjusted_p: np.ndarray
    level: np.ndarray

    def as_dict(self) -> dict[str, tuple[bool, float, float]]:
        return {
            n: (bool(r), float(a), float(lv))
            for n, r, a, lv in zip(self.names, self.rejected, self.adjusted_p, self.level, strict=True)
        }


def _check_p(graph: Graph, p: Sequence[float], alpha: float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.shape != (len(graph.names),):
        raise ValueError(f"need one p-value per hypothesis ({len(graph.names)}), got {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return p


def shortcut_test(graph: Graph, p: Sequence[float], alpha: float = 0.05) -> GraphResult:
    """The sequentially rejective graphical procedure with its adjusted p-values (Bretz et al. 2009).

    Adjusted p-values: repeatedly take the hypothesis with the smallest ``p_i / w_i`` among those left, give it
    ``max(p_i / w_i, the previous one)`` (capped at 1), and remove it from the graph; a hypothesis is rejected at
    level alpha exactly when its adjusted p-value is at most alpha. The level a hypothesis was last tested at is
    its weight, times alpha, in the graph from which every rejected hypothesis is removed.
    """
    p = _check_p(graph, p, alpha)
    m = len(p)
    w, g = graph.weights.copy(), graph.transitions.copy()
    active = np.ones(m, dtype=bool)
    adjusted = np.ones(m)
    running = 0.0
    for _ in range(m):
        idx = np.flatnonzero(active)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(w[idx] > 0, p[idx] / w[idx], np.inf)
        j = int(idx[np.argmin(ratio)])
        running = max(running, float(ratio.min()))
        adjusted[j] = min(1.0, running)
        remove(w, g, active, j)
    rejected = adjusted <= alpha
    # the levels: the graph with exactly the rejected hypotheses removed (Algorithm 1 run to its end)
    w, g = graph.weights.copy(), graph.transitions.copy()
    active = np.ones(m, dtype=bool)
    for j in np.flatnonzero(rejected):
        remove(w, g, active, int(j))
    level = np.where(rejected, np.nan, w * alpha)
    return GraphResult(graph.names, rejected, adjusted, level)


def closed_test(graph: Graph, p: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """The closed testing procedure written out: hypothesis i is rejected when every intersection hypothesis that
    contains it is rejected by its weighted Bonferroni test (some j in it has ``w_j > 0`` and ``p_j <= w_j
    alpha``). It enumerates all 2^m - 1 intersections: a reference for tests, not for large m."""
    p = _check_p(graph, p, alpha)
    m = len(p)
    rejected = np.ones(m, dtype=bool)
    for size in range(1, m + 1):
        for subset in itertools.combinations(range(m), size):
            w = intersection_weights(graph, subset)
            idx = np.array(subset)
            if not ((w[idx] > 0) & (p[idx] <= w[idx] * alpha)).any():
                rejected[idx] = False
    return rejected
