"""The committed plan v3 is consistent: its contrasts are claims.toml cases, its graph is a valid graph that spends
all of alpha and passes a rejected node's weight to the other contrasts only, and its claim-2 metrics exist."""

from __future__ import annotations

import numpy as np
import pytest

from flatenn.analysis.graphical import shortcut_test
from flatenn.analysis.sharpness import METRICS
from flatenn.repro.claims import CLAIMS
from flatenn.repro.plan_v3 import load_v3


def test_every_contrast_is_a_claims_case_and_the_plan_names_its_alpha():
    plan, contrasts, _ = load_v3()
    assert plan["version"] == 3 and plan["alpha"] == 0.05
    assert [c.id for c in contrasts] == ["c1_acc", "c1_drop", "c3a", "c3b", "c4"]
    for c in contrasts:
        assert c.claim in CLAIMS and CLAIMS[c.claim].sesoi > 0
    assert set(plan["claim2"]["metrics"]) <= set(METRICS)


def test_the_graph_spends_all_of_alpha_and_never_feeds_a_decided_contrast():
    _, contrasts, g = load_v3()
    assert g.weights.sum() == pytest.approx(1.0)
    assert g.transitions.sum(axis=1) == pytest.approx(np.ones(len(g.names)))  # nothing is lost on rejection
    for k in range(len(contrasts)):
        d, e = 2 * k, 2 * k + 1
        assert g.transitions[d, e] == g.transitions[e, d] == 0.0  # a decided contrast's sibling gets nothing


def test_rejecting_one_contrast_raises_the_others_levels_by_the_stated_shares():
    _, contrasts, g = load_v3()
    p = np.ones(len(g.names))
    p[0] = 0.0  # D_c1_acc rejected at once, nothing else
    r = shortcut_test(g, p, alpha=0.05)
    assert r.rejected.tolist() == [True] + [False] * (len(g.names) - 1)
    # every other D node: 0.15 + 0.15 * 0.25 * 0.75; every other E node: 0.05 + 0.15 * 0.25 * 0.25
    assert r.level[2::2] == pytest.approx([0.05 * (0.15 + 0.15 * 0.25 * 0.75)] * (len(contrasts) - 1))
    assert r.level[3::2] == pytest.approx([0.05 * (0.05 + 0.15 * 0.25 * 0.25)] * (len(contrasts) - 1))
    assert r.level[1] == pytest.approx(0.05 * 0.05)  # its own E node keeps only its own weight
