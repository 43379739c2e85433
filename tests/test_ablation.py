"""Ablation factor effects on synthetic level folders with known shifts."""

import pandas as pd
import pytest

from flatenn.ablation import factor_effects, recorded_levels, verify_ablation, write_ablation
from flatenn.results import write_schema_table, write_table
from flatenn.scales import ABLATION_LEVELS, SCALES
from tests.test_claims import _campaign


def _level(root, name, shift):
    d = root / name
    camp = _campaign(shift=shift, seeds=ABLATION_LEVELS[name].seeds, trials=6)
    write_schema_table(camp, d / "campaign.csv", "campaign")
    training = camp.drop_duplicates("model_id")[["model_id", "variant"]].assign(
        seed=0, clean_accuracy=90.0, sparsity=0.5, threshold=0.5)
    write_table(training, d / "training.csv")
    write_table(pd.DataFrame({"case": ["x"]}), d / "claims.csv")


def test_factor_effect_is_the_paired_difference_of_level_and_base(tmp_path, monkeypatch):
    import dataclasses

    smoke = SCALES["smoke"]
    for name in ("ablation_base", "ablation_actfloat"):
        patched = dataclasses.replace(ABLATION_LEVELS[name], rates=smoke.rates, informative_rates=smoke.informative_rates)
        monkeypatch.setitem(ABLATION_LEVELS, name, patched)
    base = {"standard-sgd": 0.0, "sparse-sgd": -2.0, "standard-saq": 1.0, "sparse-saq": 0.0}
    moved = {"standard-sgd": 0.0, "sparse-sgd": -8.0, "standard-saq": 1.0, "sparse-saq": 0.0}  # gap +6, SAQ sparse +6
    _level(tmp_path, "ablation_base", base)
    _level(tmp_path, "ablation_actfloat", moved)
    assert recorded_levels(tmp_path) == ["ablation_base", "ablation_actfloat"]
    eff = factor_effects(tmp_path).set_index("case")
    assert eff.at["sparse_vs_standard[acc_gap]", "factor_effect"] == pytest.approx(6.0, abs=0.5)
    assert eff.at["saq_gain_sparse[acc_gain]", "factor_effect"] == pytest.approx(6.0, abs=0.5)
    assert eff.at["saq_gain_standard[acc_gain]", "factor_effect"] == pytest.approx(0.0, abs=0.5)
    assert eff.at["sparse_vs_standard[acc_gap]", "verdict"] == "supported"
    write_ablation(tmp_path)
    assert verify_ablation(tmp_path) == []
    df = pd.read_csv(tmp_path / "ablation" / "effects.csv")
    df.loc[0, "factor_effect"] += 1.0
    df.to_csv(tmp_path / "ablation" / "effects.csv", index=False)
    assert verify_ablation(tmp_path)
