import numpy as np
import pandas as pd
import pytest

from flatenn.repro.claims import (
    CLAIMS,
    Case,
    adjust,
    cases,
    direction_verdict,
    evaluate_all,
    evaluate_case,
    hypothesis_family,
    load_bands,
    magnitude_verdict,
    window_rates,
)
from flatenn.repro.scales import SCALES

SMOKE = SCALES["smoke"]
SHIFT = {"standard-sgd": 0.0, "sparse-sgd": -5.0, "standard-saq": 2.0, "sparse-saq": -1.0}


def _campaign(shift=SHIFT, seeds=(0, 1, 2, 3, 4), trials=20):
    """Synthetic campaign: per seed its own maps (shared by that seed's variants), seed noise per model."""
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        for fm in SMOKE.fault_models:
            for rate in SMOKE.rates:
                maps = rng.normal(0, 5, trials)  # common random numbers within a seed
                for v, d in shift.items():
                    noise = rng.normal(0, 0.5, trials)
                    for t in range(trials):
                        rows.append(
                            {
                                "model_id": f"{v}-s{s}",
                                "variant": v,
                                "train_seed": s,
                                "fault_model": fm,
                                "fingerprint": f"fp-{v}-{s}",
                                "layers": "all",
                                "n_eval": 100,
                                "run_id": "r",
                                "bits": "all",
                                "rate": rate,
                                "count": -1,
                                "seed": SMOKE.map_seed(s),
                                "trial": t,
                                "accuracy": 80 + d + maps[t] + noise[t],
                                "clean_accuracy": 98.0,
                                "faulty_bits": 1,
                                "changed_weights": 1,
                                "loss": 0.1,
                                "clean_loss": 0.05,
                            }
                        )
    return pd.DataFrame(rows)


def test_direction_verdict_rules():
    assert direction_verdict(1, 2.0, 0.01, 0.9) == "supported"
    assert direction_verdict(1, -2.0, 0.01, 0.9) == "contradicted"
    assert direction_verdict(1, 0.1, 0.5, 0.01) == "equivalent"
    assert direction_verdict(1, 0.1, 0.5, 0.2) == "inconclusive"
    assert direction_verdict(0, 1.0, 0.001, 0.001) == "reported"
    assert direction_verdict(1, 1.0, float("nan"), float("nan")) == "inconclusive"


@pytest.mark.parametrize(
    "lo,hi,expected",
    [
        (1.0, 11.13, "reaches published"),
        (1.0, 11.12, "below published"),
        (17.33, 20.0, "above published"),
        (17.32, 20.0, "reaches published"),
        (-5.0, 0.0, "below published"),
    ],
)
def test_magnitude_verdict_boundaries(lo, hi, expected):
    assert magnitude_verdict((17.32, 11.13), lo, hi) == expected
    assert magnitude_verdict((), lo, hi) == ""


def test_paired_effects_on_synthetic_campaign():
    tables = {"campaign": _campaign()}
    r = evaluate_case(Case("sparse_vs_standard", "acc_gap", 1, ""), tables, SMOKE)
    assert r.effect == pytest.approx(5.0, abs=0.3) and r.ci_low < 5.0 < r.ci_high and r.n == 5 and r.p_value < 0.01
    assert set(r.detail["fault_model"]) == set(SMOKE.fault_models) and len(r.detail) == 3 * len(SMOKE.rates)
    assert evaluate_case(Case("saq_gain_standard", "acc_gain", 1, ""), tables, SMOKE).effect == pytest.approx(
        2, abs=0.3
    )
    assert evaluate_case(Case("saq_sparse_beats_standard", "acc_gap", 1, ""), tables, SMOKE).effect == pytest.approx(
        -1.0, abs=0.3
    )
    assert evaluate_case(Case("sparse_vs_standard", "drop_gap", 1, ""), tables, SMOKE).effect == pytest.approx(
        5, abs=0.3
    )


def test_informative_rates_are_the_only_ones_averaged_and_windows_shift():
    camp = _campaign()
    outside = ~camp["rate"].isin(SMOKE.informative_rates["bitflip"]) & (camp["fault_model"] == "bitflip")
    camp.loc[outside & (camp["variant"] == "sparse-sgd"), "accuracy"] -= 100  # must not move the primary effect
    camp_s = camp[(camp["fault_model"] != "bitflip") | ~outside]
    case = Case("sparse_vs_standard", "acc_gap", 1, "")
    assert evaluate_case(case, {"campaign": camp}, SMOKE).effect == pytest.approx(
        evaluate_case(case, {"campaign": camp_s}, SMOKE).effect
    )
    assert evaluate_case(case, {"campaign": camp}, SMOKE, "all_rates").effect > 20
    up_to = evaluate_case(Case("sparse_vs_standard", "up_to", 0, ""), {"campaign": camp}, SMOKE)
    assert up_to.effect > 100 and "bitflip" in up_to.note
    rates = list(SMOKE.rates)
    for fm, inf in SMOKE.informative_rates.items():
        down, up = window_rates(SMOKE, "window_down")[fm], window_rates(SMOKE, "window_up")[fm]
        assert [rates.index(r) + 1 for r in down] == [rates.index(r) for r in inf][: len(down)]
        assert [rates.index(r) - 1 for r in up] == [rates.index(r) for r in inf][: len(up)]


def test_evaluate_all_verdicts_holm_and_equivalence():
    claims, _ = evaluate_all({"campaign": _campaign()}, SMOKE)
    assert set(claims["claim"]) == {
        "sparse_vs_standard",
        "saq_gain_sparse",
        "saq_gain_standard",
        "saq_sparse_beats_standard",
    }
    row = claims.set_index("case")
    assert row.loc["sparse_vs_standard[acc_gap]", "verdict"] == "supported"
    assert row.loc["saq_sparse_beats_standard[acc_gap]", "verdict"] == "contradicted"
    assert not row["family_complete"].any()  # sharpness cases missing: Bonferroni over the 16-case family
    p = row.loc["sparse_vs_standard[acc_gap]"]
    assert p["p_holm"] == pytest.approx(min(1.0, len(hypothesis_family()) * p["p_value"]))
    assert row.loc["sparse_vs_standard[up_to]", "magnitude"] == "below published"
    # no difference at all between two variants: equivalent within the declared SESOI
    flat = _campaign(shift={"standard-sgd": 0.0, "sparse-sgd": 0.0, "standard-saq": 0.0, "sparse-saq": 0.0})
    eq = evaluate_all({"campaign": flat}, SMOKE)[0].set_index("case")
    assert eq.loc["saq_gain_standard[acc_gain]", "verdict"] == "equivalent"
    assert eq.loc["saq_gain_standard[acc_gain]", "sesoi"] == pytest.approx(0.25 * 15.82)


def test_holm_when_the_family_is_complete():
    fam = hypothesis_family()
    p = {c: 0.001 * (i + 1) for i, c in enumerate(fam)}
    adj, complete = adjust(p)
    m = len(fam)
    assert complete and adj[fam[0]] == pytest.approx(m * 0.001) and adj[fam[1]] == pytest.approx((m - 1) * 0.002)


def test_claims_are_complete_data_and_sesoi_declared():
    ids = {c.claim for c in cases()}
    assert ids == set(CLAIMS) and len(cases()) == len({c.id for c in cases()})
    assert CLAIMS["sparse_vs_standard"].paper_values == (17.32, 11.13)
    assert CLAIMS["saq_gain_sparse"].paper_values == (36.71, 19.50)
    assert CLAIMS["saq_gain_standard"].paper_values == (24.76, 15.82)
    for c in cases():
        if c.direction and "spearman" not in c.metric and not c.metric.startswith("diff_"):
            assert c.sesoi > 0, c.id
    assert "correlates" in CLAIMS["sharper_minima"].text


def test_paper_expectations_come_from_the_paper():
    bands = load_bands("paper_resnet20")
    assert bands["sparse_vs_standard[up_to]"]["expected_magnitude"] == "reaches published"
    assert bands["saq_gain_sparse[acc_gain]"]["expected_verdict"] == "supported"
