"""Ablation factor effects on synthetic level folders with known shifts."""

import json

import pandas as pd
import pytest

from flatenn.core.results import table_file, write_schema_table, write_table
from flatenn.repro.ablation import (
    factor_effects,
    last_epoch_decrease,
    recorded_levels,
    training_curves,
    verify_ablation,
    write_ablation,
)
from flatenn.repro.scales import ABLATION_LEVELS, SCALES
from tests.repro.test_claims import _campaign


def _record(path, losses, train_subset=1000, parent=None):
    """A shipped-model entry (record + checksum only) whose training loss per epoch is ``losses``."""
    from flatenn.core.zoo import _record_digest

    record = {
        "config": {"dataset": "fashion_mnist", "train_subset": train_subset, "parent": parent},
        "epochs": [{"epoch": i + 1, "train_loss": v, "train_accuracy": 50.0} for i, v in enumerate(losses)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"record": record, "fingerprint": "f", "record_sha256": _record_digest(record, "f")}))


def _level(root, name, shift, keys=None):
    d = root / name
    camp = _campaign(shift=shift, seeds=ABLATION_LEVELS[name].seeds, trials=6)
    write_schema_table(camp, table_file(d, "campaign"), "campaign")
    training = camp.drop_duplicates("model_id")[["model_id", "variant", "seed"]].assign(
        clean_accuracy=90.0,
        sparsity=0.5,
        threshold=0.5,
        fingerprint="f",
        source="trained",
        dataset="fashion_mnist",
        model="resnet8",
        width=8,
        activation="relu",
        optimizer="sgd",
        rho=0.05,
        epochs=6,
        clean_loss=0.3,
        run_id="r",
    )
    training["key"] = [f"{name}-{m}" if keys is None else keys(m) for m in training["model_id"]]
    for k in training["key"]:
        _record(d / "models" / f"{k}.json", [1.0, 0.5, 0.45])
    write_table(training, d / "training.csv")
    write_table(pd.DataFrame({"case": ["x"]}), d / "claims.csv")


def test_factor_effect_is_the_paired_difference_of_level_and_base(tmp_path, monkeypatch):
    import dataclasses

    smoke = SCALES["smoke"]
    for name in ("ablation_base", "ablation_actfloat"):
        patched = dataclasses.replace(
            ABLATION_LEVELS[name], rates=smoke.rates, informative_rates=smoke.informative_rates
        )
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
    curves = pd.read_csv(tmp_path / "ablation" / "training_curves.csv")
    curves.loc[3, "train_loss"] *= 1.01
    curves.to_csv(tmp_path / "ablation" / "training_curves.csv", index=False)
    assert verify_ablation(tmp_path) == [
        "ablation/training_curves.csv differs from the shipped models' training records"
    ]
    write_ablation(tmp_path)
    df = pd.read_csv(tmp_path / "ablation" / "effects.csv")
    df.loc[0, "factor_effect"] += 1.0
    df.to_csv(tmp_path / "ablation" / "effects.csv", index=False)
    assert verify_ablation(tmp_path)


def test_training_curves_come_from_checksummed_records_once_per_model(tmp_path):
    zero = {"standard-sgd": 0.0, "sparse-sgd": 0.0, "standard-saq": 0.0, "sparse-saq": 0.0}
    _level(tmp_path, "ablation_base", zero)
    _level(tmp_path, "ablation_eval1000", zero, keys=lambda m: f"ablation_base-{m}")  # the base's models again
    _level(tmp_path, "ablation_converged", zero)
    conv = tmp_path / "ablation_converged" / "models"
    first = sorted(conv.glob("*.json"))[0]
    _record(first, [2.0, 1.0, 0.9, 0.6], train_subset=None)  # 60k images per epoch
    _record(sorted(conv.glob("*.json"))[1], [1.0, 0.5], parent="abc")  # a fine-tuned model: not a curve
    curves = training_curves(tmp_path)
    n_models = len(pd.read_csv(tmp_path / "ablation_base" / "training.csv"))
    assert set(curves["level"]) == {"ablation_base", "ablation_converged"}  # eval1000 shares the base's models
    assert len(curves) == n_models * 3 + (n_models - 2) * 3 + 4
    mine = curves[(curves["level"] == "ablation_converged")].set_index("epoch")
    seen = mine[mine["train_loss"] == 0.6]
    assert seen["images_seen"].tolist() == [4 * 60_000]
    dec = last_epoch_decrease(curves).set_index(["level", "variant"])
    assert dec.loc[("ablation_base", "standard-sgd"), "last_epoch_decrease"] == pytest.approx(0.1)  # 0.5 -> 0.45
    first.write_text(first.read_text().replace("0.6", "0.5"))  # a hand edit breaks the record checksum
    from flatenn.core.zoo import CorruptEntryError

    with pytest.raises(CorruptEntryError, match="changed after"):
        training_curves(tmp_path)


def test_answer_states_the_computed_outcome():
    from flatenn.repro.ablation import answer_markdown

    rows = []
    for level, acc, drop, saq in [("ablation_actfloat", 1.0, -0.5, 2.0), ("ablation_finetune90", 20.0, -9.0, 0.5)]:
        for case, v in [
            ("sparse_vs_standard[acc_gap]", acc),
            ("sparse_vs_standard[drop_gap]", drop),
            ("saq_gain_sparse[acc_gain]", saq),
        ]:
            rows.append(
                {
                    "level": level,
                    "case": case,
                    "factor_effect": v,
                    "ci_low": v - 1,
                    "ci_high": v + 1,
                    "p_holm": 0.5,
                    "verdict": "inconclusive",
                }
            )
    eff = pd.DataFrame(rows)
    facts = pd.DataFrame(
        {
            "level": ["ablation_finetune90"] * 2,
            "variant": ["sparse-sgd", "standard-sgd"],
            "clean_accuracy": [40.0, 85.0],
        }
    )
    text = answer_markdown(eff, facts)
    assert "no factor is shown to move a headline effect" in text and "Bonferroni" in text  # 2 levels: not all
    # CIs that reach the SESOI (claim 1: 2.78; 3a: 4.875) are "not excluded": only finetune90's gap here
    assert "in 1 of 6 pairs the 95% CI reaches the claim's SESOI" in text and "**not excluded**" in text
    assert "(widest: finetune90 `sparse_vs_standard[acc_gap]` [19.0, 21.0])" in text
    assert "Activation quantization shifts the sparse-vs-standard gap by -0.5 to +1.0 points" in text
    assert "SAQ gains by +2.0 to +2.0 (≤ 3.0)" in text
    assert "finetune90 `sparse_vs_standard[acc_gap]` +20.0 [19.0, 21.0]; its drop view is -9.0" in text
    assert "*smaller* accuracy drop" in text  # drop CI below 0 and clean accuracy 45 points lower
    eff.loc[eff["case"] == "sparse_vs_standard[drop_gap]", ["factor_effect", "ci_low", "ci_high"]] = [1.0, 0.5, 1.5]
    eff.loc[0, "verdict"] = "supported"
    text = answer_markdown(eff, facts)
    assert "supported after Bonferroni:** actfloat `sparse_vs_standard[acc_gap]`" in text
    assert "*smaller* accuracy drop" not in text
