"""Plan v2's sequential decisions (flatenn.repro.decide) on synthetic campaigns with known effects."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from flatenn.analysis.sequential import nominal_p
from flatenn.repro.decide import PLAN, load_plan, open_claims, sequential
from flatenn.repro.plan import sequential_units
from flatenn.repro.scales import SCALES

SMOKE = dataclasses.replace(SCALES["smoke"], trials=2)


def campaign(effects: dict[str, float], seeds, sd: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Accuracy = 70 + the variant's effect + per-(model, point) noise of ``sd``; maps shared within a seed."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in seeds:
        for fm in SMOKE.fault_models:
            for rate in SMOKE.rates:
                maps = rng.normal(0, 3, SMOKE.trials)
                for v, d in effects.items():
                    noise = rng.normal(0, sd)
                    for t in range(SMOKE.trials):
                        rows.append(
                            {
                                "model_id": f"{v}-s{s}",
                                "variant": v,
                                "train_seed": s,
                                "fault_model": fm,
                                "bits": "all",
                                "layers": "all",
                                "n_eval": 100,
                                "rate": rate,
                                "count": -1,
                                "seed": SMOKE.map_seed(s),
                                "trial": t,
                                "accuracy": 70 + d + maps[t] + noise,
                                "clean_accuracy": 98.0,
                                "loss": 0.1,
                                "clean_loss": 0.05,
                            }
                        )
    return pd.DataFrame(rows)


def test_the_plan_file_declares_what_the_issue_asks():
    assert [p.case for p in PLAN.primary] == [
        "sparse_vs_standard[acc_gap]",
        "saq_gain_sparse[acc_gain]",
        "saq_gain_standard[acc_gain]",
        "saq_sparse_beats_standard[acc_gap]",
    ]
    for name in ("smoke", "cpu"):
        sp = PLAN.scales[name]
        assert list(sp.looks) == sorted(sp.looks) and sp.full_seeds <= sp.looks[0]
        assert set(sp.reproduce_seeds) <= set(range(sp.looks[0]))
    assert PLAN.spending == "obrien_fleming" and PLAN.alpha == 0.05


def test_a_plan_file_missing_a_field_is_a_named_error(tmp_path):
    text = (PLAN_TEXT := (load_plan.__globals__["PLAN_V2"]).read_text()).replace("window_min_drop = 1.0", "")
    assert PLAN_TEXT != text
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ValueError, match="window_min_drop"):
        load_plan(tmp_path / "p.toml")


def test_clear_effects_stop_at_the_first_look_and_the_rest_continue():
    # claim 1: +8 (standard - sparse), 3a: +6, 3b: +0.4 (small, SESOI 3.955), 4: sparse-saq - standard-sgd = -2
    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 0.4, "sparse-saq": -2.0}
    state = sequential({"campaign": campaign(eff, range(10), sd=1.0)}, SMOKE)
    dec = {r.case: r.decision for r in state.rows}
    assert dec["sparse_vs_standard[acc_gap]"] == "supported"
    assert dec["saq_gain_sparse[acc_gain]"] == "supported"
    assert state.next_look == 1
    # the look-1 nominal level is O'Brien-Fleming's at t = 10/40 for the level each case held
    row = next(r for r in state.rows if r.case == "saq_gain_standard[acc_gain]")
    assert row.nominal_direction == pytest.approx(nominal_p([0.25], row.alpha_direction)[0])
    assert row.alpha_direction >= 0.05 / 4
    assert "saq_gain_standard" in open_claims({"campaign": campaign(eff, range(10))}, SMOKE) or dec[
        "saq_gain_standard[acc_gain]"
    ] in ("equivalent",)


def test_rejections_pass_their_alpha_on_within_a_look():
    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 0.0, "sparse-saq": 0.0}
    state = sequential({"campaign": campaign(eff, range(10), sd=1.0)}, SMOKE)
    by = {r.case: r for r in state.rows}
    assert by["sparse_vs_standard[acc_gap]"].decision == "supported"
    assert by["saq_gain_sparse[acc_gain]"].decision == "supported"
    # claims 1 and 3a are rejected; the other two were tested again at alpha / 2 (graphical Holm)
    assert by["saq_gain_standard[acc_gain]"].alpha_direction == pytest.approx(0.05 / 2)
    assert by["saq_sparse_beats_standard[acc_gap]"].alpha_direction == pytest.approx(0.05 / 2)
    # the first rejected case was rejected holding alpha / 4 or alpha / 3, never more
    assert by["sparse_vs_standard[acc_gap]"].alpha_direction <= 0.05 / 3 + 1e-12


def test_an_incomplete_block_is_not_analysed_and_the_next_block_has_only_open_claims():
    eff = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 0.1, "sparse-saq": -8.0}
    camp = campaign(eff, range(10), sd=3.0)
    state = sequential({"campaign": camp}, SMOKE)
    assert state.next_look == 1
    units = sequential_units(SMOKE, {"campaign": camp})
    later = {(u.variant, u.kind) for u in units if u.seed >= 10}
    assert all(u.seed < 20 for u in units)
    decided = {c.split("[")[0] for c, k in state.decided_at.items()}
    needed = {
        v
        for c in state.open
        for v in __import__("flatenn.repro.claims", fromlist=["CLAIMS"]).CLAIMS[c.split("[")[0]].variants
    }
    assert {v for v, _ in later} == needed
    assert "sparse_vs_standard" in decided
    # half of the next block recorded: the replay stays at look 2
    part = campaign(eff, range(10, 15), sd=3.0, seed=1)
    assert sequential({"campaign": pd.concat([camp, part])}, SMOKE).next_look == 1
