"""Plan v3's procedure (flatenn.repro.decide_v3) on synthetic campaigns with known effects: the sign-flip test
inside the local test, weight passed on within a look, equivalence in the same graph, data stops, the exact
clean-plus-drop decomposition, per-rate bands and their sign pattern, and an edited v3 table caught by verify."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flatenn.analysis.sequential import nominal_p
from flatenn.repro.decide_v3 import CONTRASTS, GRAPH, PLAN3, decomposition, evaluate_v3, replay, sign_pattern

from .test_decide import SMOKE, campaign

D = {c.id: GRAPH.weights[GRAPH.index(f"D_{c.id}")] for c in CONTRASTS}


def _tables(eff, seeds=range(10), sd=1.0, seed=0):
    return {"campaign": campaign(eff, seeds, sd=sd, seed=seed)}


def test_clear_effects_are_decided_at_the_first_look_and_pass_their_weight_on():
    # claim 1: standard - sparse = +8; 3a: sparse-saq - sparse-sgd = +7.4; 3b: +8; 4: sparse-saq - standard-sgd = -0.6
    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 8.0, "sparse-saq": -0.6}
    d = replay(_tables(eff, seeds=range(20), sd=2.0), SMOKE)
    assert d["c1_acc"].verdict == "supported" and d["c3a"].verdict == "supported" and d["c3b"].verdict == "supported"
    assert d["c1_acc"].look == 2  # at the first look no sign-flip p over 10 seeds can reach the level (below)
    level, nominal = d["c1_acc"].levels["D"]
    assert level >= D["c1_acc"] * PLAN3["alpha"] - 1e-15
    assert nominal == pytest.approx(nominal_p([0.25, 0.5], level, PLAN3["spending"])[-1])
    # contrast 4 (not rejected) is tested again after the others' rejections, at a level raised by their weight
    assert not d["c4"].verdict.startswith(("supported", "contradicted"))
    assert d["c4"].levels["D"][0] > D["c4"] * PLAN3["alpha"]


def test_a_contrast_is_rejected_only_where_t_and_sign_flip_both_reject():
    # 10 seeds: the smallest two-sided sign-flip p is 2/1024, above O'Brien-Fleming's first-look level
    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 0.0, "sparse-saq": 0.0}
    d = replay(_tables(eff, sd=0.5), SMOKE)
    local = d["c1_acc"].local
    assert local.p_t < d["c1_acc"].levels["D"][1] < local.p_signflip == pytest.approx(2 / 1024)
    # t alone would reject at the first look; the procedure does not, and with no second block it stops there
    assert d["c1_acc"].verdict == "undecided (data stop at 10 seeds)"
    assert local.p_direction == max(local.p_t, local.p_signflip)


def test_an_effect_of_zero_is_equivalent_in_the_same_graph_and_a_missing_block_is_a_data_stop():
    eff = {"standard-sgd": 0.0, "sparse-sgd": 0.0, "standard-saq": 0.0, "sparse-saq": 0.0}
    d = replay(_tables(eff, seeds=range(20), sd=0.3), SMOKE)
    assert d["c1_acc"].verdict == "equivalent"
    eff = {"standard-sgd": 0.0, "sparse-sgd": -0.5, "standard-saq": 0.0, "sparse-saq": 0.0}
    t = _tables(eff, seeds=range(20), sd=3.0)
    t["campaign"] = t["campaign"][~((t["campaign"]["variant"] == "sparse-saq") & (t["campaign"]["train_seed"] >= 10))]
    d = replay(t, SMOKE)
    assert d["c4"].verdict.startswith("undecided (data stop at 10 seeds)") or d["c4"].verdict in (
        "supported",
        "contradicted",
        "equivalent",
    )
    assert d["c4"].n == 10


def test_the_accuracy_contrast_is_its_clean_part_plus_its_drop_part_for_every_seed():
    rng = np.random.default_rng(4)
    t = _tables({"standard-sgd": 0.0, "sparse-sgd": -1.0, "standard-saq": 0.5, "sparse-saq": 0.2}, seeds=range(6))
    camp = t["campaign"]
    clean = {m: 90 + rng.normal(0, 2) for m in camp["model_id"].unique()}
    t["campaign"] = camp.assign(clean_accuracy=camp["model_id"].map(clean))
    for c in CONTRASTS:
        parts = decomposition(t, SMOKE, c, 6)
        assert parts["acc"] == pytest.approx(parts["clean"] + parts["drop"], abs=1e-9)
        assert np.abs(parts["clean"]).max() > 0.1  # the clean part is not trivially zero here


def test_the_sign_pattern_reads_the_band_per_fault_model_in_rate_order():
    points = pd.DataFrame(
        {
            "fault_model": ["stuck0", "bitflip", "bitflip", "bitflip"],
            "rate": [0.1, 0.03, 0.01, 0.06],
            "sign": [-1, 1, 0, 1],
        }
    )
    assert sign_pattern(points) == "bitflip 0++; stuck0 -"


def test_the_v3_tables_cover_every_contrast_and_an_edited_row_is_caught(tmp_path):
    from flatenn.core.results import read_table, write_table
    from flatenn.repro.verify import _check_v3

    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 8.0, "sparse-saq": -2.0}
    tables = _tables(eff, seeds=range(10), sd=0.5)
    v2 = pd.DataFrame(columns=["family", "case", "window_stable"])
    verdicts, per = evaluate_v3(tables, SMOKE, v2=v2)
    assert list(verdicts["contrast"]) == [c.id for c in CONTRASTS]
    assert set(per["contrast"]) == set(verdicts["contrast"]) and per["band_low"].le(per["band_high"]).all()
    from flatenn.repro.decide_v3 import v3_tables

    for name, (rows, cols, sort) in v3_tables(tables, SMOKE, v2).items():
        write_table(rows, tmp_path / f"{name}.csv", cols, sort=sort)
    assert _check_v3(tmp_path, tables, SMOKE, v2) == []
    edited = read_table(tmp_path / "verdicts_v3.csv")
    edited.loc[0, "verdict"] = "contradicted"
    edited.to_csv(tmp_path / "verdicts_v3.csv", index=False)
    assert any("verdicts_v3.csv" in p and "verdict" in p for p in _check_v3(tmp_path, tables, SMOKE, v2))
