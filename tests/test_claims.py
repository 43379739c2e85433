import numpy as np
import pandas as pd
import pytest

from flatenn.claims import CLAIMS, Case, cases, evaluate_all, evaluate_case, load_bands, verdict
from flatenn.scales import SCALES

SMOKE = SCALES["smoke"]
SHIFT = {"standard-sgd": 0.0, "sparse-sgd": -5.0, "standard-saq": 2.0, "sparse-saq": -1.0}


def _campaign(shift=SHIFT, seeds=(0, 1, 2), trials=20):
    rng = np.random.default_rng(0)
    rows = []
    for fm in SMOKE.fault_models:
        for rate in SMOKE.rates:
            maps = rng.normal(0, 5, trials)  # common random numbers: same per-trial effect for all models
            for v, d in shift.items():
                for s in seeds:
                    noise = rng.normal(0, 0.5, trials)
                    for t in range(trials):
                        rows.append({"model_id": f"{v}-s{s}", "variant": v, "train_seed": s, "fault_model": fm,
                                     "fingerprint": f"fp-{v}-{s}", "layers": "all", "n_eval": 100, "run_id": "r",
                                     "bits": "all", "rate": rate, "count": -1, "seed": 2023, "trial": t,
                                     "accuracy": 80 + d + maps[t] + noise[t], "clean_accuracy": 98.0,
                                     "faulty_bits": 1, "changed_weights": 1, "loss": 0.1, "clean_loss": 0.05})
    return pd.DataFrame(rows)


def test_verdict_rules():
    assert verdict(1, 0.5, 2.0) == "supported"
    assert verdict(1, -2.0, -0.1) == "contradicted"
    assert verdict(1, -1.0, 1.0) == "inconclusive"
    assert verdict(0, 1.0, 2.0) == "reported"
    assert verdict(1, float("nan"), 1.0) == "inconclusive"


def test_paired_effects_on_synthetic_campaign():
    tables = {"campaign": _campaign()}
    (m, lo, hi, n, _), detail = evaluate_case(Case("sparse_vs_standard", "acc_gap", 1, ""), tables, SMOKE)
    assert m == pytest.approx(5.0, abs=0.3) and lo < 5.0 < hi and n == 3
    assert set(detail["fault_model"]) == set(SMOKE.fault_models) and len(detail) == 3 * len(SMOKE.rates)
    (m, *_), _ = evaluate_case(Case("saq_gain_standard", "acc_gain", 1, ""), tables, SMOKE)
    assert m == pytest.approx(2.0, abs=0.3)
    (m, *_), _ = evaluate_case(Case("saq_sparse_beats_standard", "acc_gap", 1, ""), tables, SMOKE)
    assert m == pytest.approx(-1.0, abs=0.3)
    (m, *_), _ = evaluate_case(Case("sparse_vs_standard", "drop_gap", 1, ""), tables, SMOKE)
    assert m == pytest.approx(5.0, abs=0.3)


def test_informative_rates_are_the_only_ones_averaged():
    camp = _campaign()
    outside = ~camp["rate"].isin(SMOKE.informative_rates["bitflip"]) & (camp["fault_model"] == "bitflip")
    camp.loc[outside & (camp["variant"] == "sparse-sgd"), "accuracy"] -= 100  # must not move the primary effect
    camp_s = camp[(camp["fault_model"] != "bitflip") | ~outside]
    a = evaluate_case(Case("sparse_vs_standard", "acc_gap", 1, ""), {"campaign": camp}, SMOKE)[0][0]
    b = evaluate_case(Case("sparse_vs_standard", "acc_gap", 1, ""), {"campaign": camp_s}, SMOKE)[0][0]
    assert a == pytest.approx(b)
    up_to = evaluate_case(Case("sparse_vs_standard", "up_to", 0, ""), {"campaign": camp}, SMOKE)[0]
    assert up_to[0] > 100 and "bitflip" in up_to[4]


def test_evaluate_all_skips_cases_without_inputs():
    claims, _ = evaluate_all({"campaign": _campaign()}, SMOKE)
    assert set(claims["claim"]) == {"sparse_vs_standard", "saq_gain_sparse", "saq_gain_standard",
                                    "saq_sparse_beats_standard"}
    assert (claims.loc[claims.case == "sparse_vs_standard[acc_gap]", "verdict"] == "supported").all()


def test_claims_are_complete_data():
    ids = {c.claim for c in cases()}
    assert ids == set(CLAIMS) and len(cases()) == len({c.id for c in cases()})
    assert CLAIMS["sparse_vs_standard"].paper_values == (17.32, 11.13)
    assert CLAIMS["saq_gain_sparse"].paper_values == (36.71, 19.50)
    assert CLAIMS["saq_gain_standard"].paper_values == (24.76, 15.82)


def test_paper_bands_come_from_the_paper():
    bands = load_bands("paper_resnet20")
    b = bands["sparse_vs_standard[up_to]"]
    assert b["low"] == pytest.approx(0.5 * 11.13) and b["high"] == pytest.approx(1.5 * 17.32)
    assert bands["saq_gain_sparse[acc_gain]"]["expected_verdict"] == "supported"
