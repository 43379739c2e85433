"""The mitigations family on campaign tables built by hand, checked against the definitions (scipy's t interval,
Holm's step-down rule, Pareto dominance)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from flatenn.repro.mitigations import family_table, method_of, pareto_front, seed_gains
from flatenn.repro.scales import MITIGATION_VARIANTS, SCALES, VARIANTS

SEEDS = [0, 1, 2, 3, 4]
SCALE = dataclasses.replace(SCALES["smoke"], seeds=tuple(SEEDS), variants={**VARIANTS, **MITIGATION_VARIANTS})
GAIN = {"standard-sam": [1.0, 2.0, 0.5, 3.0, 1.5], "standard-sgd+secded": [4.0, 6.0, 5.0, 7.0, 5.5]}
CLEAN = {"standard-sgd": 95.0, "standard-sam": 94.0, "standard-sgd+secded": 95.0}


def _camp() -> pd.DataFrame:
    rows = []
    for variant in ("standard-sgd", *GAIN):
        for i, s in enumerate(SEEDS):
            for fm, window in SCALE.informative_rates.items():
                for rate in (*window, 0.2):  # 0.2: outside every window, must not count
                    for trial in range(3):
                        base = 70.0 - 10 * trial + s
                        inside = rate in window
                        acc = base + (GAIN[variant][i] if variant in GAIN else 0.0) + (0.0 if inside else 50.0)
                        rows.append(
                            {
                                "model_id": f"{variant}-s{s}",
                                "variant": variant,
                                "train_seed": s,
                                "fault_model": fm,
                                "bits": "0,1,2,3,4,5,6" if variant.endswith("sign-bit") else "all",
                                "layers": "all",
                                "protection": SCALE.protection(variant),
                                "n_eval": 360,
                                "rate": rate,
                                "count": -1,
                                "seed": 1000 + s,
                                "trial": trial,
                                "accuracy": acc,
                                "clean_accuracy": CLEAN[variant],
                            }
                        )
    return pd.DataFrame(rows)


def test_gains_are_window_means_of_paired_differences():
    per = seed_gains(_camp(), "standard-sam", "standard-sgd", SEEDS, SCALE.informative_rates)
    pooled = per.groupby("train_seed")[["gain", "drop_gain", "clean_cost"]].mean()
    assert np.allclose(pooled["gain"], GAIN["standard-sam"])
    assert np.allclose(pooled["clean_cost"], 1.0)
    assert np.allclose(pooled["drop_gain"], np.array(GAIN["standard-sam"]) + 1.0)  # (cb - ab) - (cv - av)


def test_family_table_intervals_and_holm():
    t = family_table(_camp(), SCALE, list(GAIN))
    fam = t[t["family"]].set_index("variant")
    for v, d in GAIN.items():
        d = np.array(d)
        lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert fam.loc[v, "effect"] == pytest.approx(d.mean())
        assert (fam.loc[v, "ci_low"], fam.loc[v, "ci_high"]) == pytest.approx((lo, hi))
        assert fam.loc[v, "p_value"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    p = fam["p_value"].sort_values()
    expect = np.maximum.accumulate([min(1.0, (len(p) - i) * q) for i, q in enumerate(p)])
    assert fam.loc[p.index, "p_adjusted"].to_numpy() == pytest.approx(expect)
    assert fam.loc["standard-sgd+secded", "overhead"] == pytest.approx(0.125)
    assert fam.loc["standard-sam", "overhead"] == 0.0
    per_fm = t[(t["measure"] == "gain") & (t["fault_model"] == "bitflip")].set_index("variant")
    assert per_fm.loc["standard-sam", "effect"] == pytest.approx(np.mean(GAIN["standard-sam"]))
    assert t.loc[~t["family"], "p_adjusted"].isna().all()


def test_a_missing_baseline_is_a_lookup_error():
    camp = _camp()
    with pytest.raises(LookupError, match="standard-sgd-s0"):
        seed_gains(
            camp[camp["variant"] != "standard-sgd"], "standard-sam", "standard-sgd", SEEDS, SCALE.informative_rates
        )


def test_pareto_front_by_dominance():
    pts = pd.DataFrame(
        {
            "variant": ["a", "b", "c", "d", "e"],
            "clean_cost": [0.0, 1.0, 1.0, -0.5, 2.0],
            "gain": [1.0, 3.0, 2.0, 0.5, 3.0],
        }
    )
    # c is dominated by b (same cost, less gain); e by b (more cost, same gain); a, b, d trade off
    assert pareto_front(pts) == ["a", "b", "d"]


def test_sharpness_aware_table_reads_the_window_ends_of_each_fault_model():
    from flatenn.repro.mitigations import sharpness_aware_markdown

    rows = []
    for fm, window in SCALE.informative_rates.items():
        for k, rate in enumerate(window):
            for v, shift in (
                ("standard-sam", 0.0),
                ("sparse-sam", 100.0),
                ("standard-clip", 50.0),
                ("sparse-hessian", 7.0),
            ):
                e = shift + 10 * k + len(fm)
                rows.append(["mitigations", f"gain:{v}", fm, rate, e, e - 1, e + 1, 5])
    rows.append(
        ["mitigations", "clean_cost:standard-sam", "bitflip", SCALE.informative_rates["bitflip"][0], 9, 8, 10, 5]
    )
    detail = pd.DataFrame(
        rows, columns=["claim", "metric", "fault_model", "rate", "effect", "ci_low", "ci_high", "n_seeds"]
    )
    table = sharpness_aware_markdown(detail, SCALE).splitlines()
    assert len(table) == 2 + 3  # header, rule, sam standard and sparse, hessian sparse (clip seeks no flat minimum)
    assert table[-1].startswith("| hessian | sparse |")
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:2] == ["sam", "standard"]
    expect = []
    for fm in SCALE.fault_models:
        n = len(SCALE.informative_rates[fm])
        expect += [f"+{len(fm):.2f} [+{len(fm) - 1:.2f}, +{len(fm) + 1:.2f}]"]
        e = 10 * (n - 1) + len(fm)
        expect += [f"+{e:.2f} [+{e - 1:.2f}, +{e + 1:.2f}]"]
    assert cells[2:] == expect


def test_variant_names():
    assert method_of("sparse-sgd+secded") == ("sparse", "sgd+secded")
    assert method_of("standard-saq-rho0.1") == ("standard", "saq-rho0.1")
    with pytest.raises(ValueError, match="kind"):
        method_of("dense-sgd")


def test_pareto_figure_names_the_front_of_each_kind(tmp_path):
    from flatenn.repro.mitigations import pareto_figure

    t = family_table(_camp(), SCALE, list(GAIN))
    fronts = pareto_figure(t, tmp_path / "pareto.png", "test")
    # secded: no clean cost and the larger gain; sam: costs a point and gains less -> dominated
    assert fronts == {"standard": ["standard-sgd+secded"]}
    assert (tmp_path / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_tiny_mitigations_scale_records_claims_that_verify(tmp_path, monkeypatch):
    """End to end on a tiny scale: every mitigation variant trained or protected, its claims (Holm over the 24
    gains) and the Pareto figure from the recorded tables, and `verify` re-deriving all of it."""
    from flatenn.core.results import read_result, read_table
    from flatenn.core.zoo import Zoo
    from flatenn.repro import scales
    from flatenn.repro.experiment import Experiment
    from flatenn.repro.report import scale_figures
    from flatenn.repro.verify import verify_scale

    tiny = dataclasses.replace(
        SCALES["mitigations_smoke"],
        name="mitigations_tiny",
        width=4,
        epochs=1,
        seeds=(0, 1, 2),
        rates=(0.05,),
        fault_models=("bitflip",),
        informative_rates={"bitflip": (0.05,)},
        trials=2,
        sharpness_examples=32,
        sharpness_probes=2,
        ranger_examples=64,
        clipact_examples=48,
        clipact_trials=1,
    )
    monkeypatch.setitem(scales.SCALES, "mitigations_tiny", tiny)
    d = tmp_path / "mitigations_tiny"
    with Experiment(
        tiny, d, zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False), device="cpu", progress=False
    ) as e:
        e.ensure_all()
        e.finish()
    claims = read_table(d / "claims.csv").set_index("case")
    family = claims[claims["direction"] == 1]
    assert len(family) == 24 and family["family_complete"].all()
    camp = read_result(d, "campaign")
    for v in ("standard-randbet", "sparse-sgd+secded"):  # the recorded gain is the definition's, from the rows
        kind = v.split("-")[0]
        gains = [
            camp[camp["model_id"] == f"{v}-s{s}"]["accuracy"].mean()
            - camp[camp["model_id"] == f"{kind}-sgd-s{s}"]["accuracy"].mean()
            for s in tiny.seeds
        ]
        assert claims.loc[f"mitigations[gain:{v}]", "effect"] == pytest.approx(np.mean(gains), rel=1e-5)  # %.6g
    assert [p.name for p in scale_figures(d)] == ["pareto.png"]
    assert verify_scale(d) == []
    from flatenn.repro.report import mitigations_markdown

    text = mitigations_markdown(tmp_path)
    tables = [b.splitlines() for b in text.split("\n\n") if b.startswith("| ")]
    assert [len(t) for t in tables] == [
        2 + 12,  # header, rule, one row per method (SAQ x3, SAM, ASAM, RandBET, clip, Hessian trace, 4 protections)
        2 + 12,  # the flatness-seeking table: SAQ x3, SAM, ASAM, Hessian trace for each activation type
    ]
    assert "| sgd+secded | 12.5% | 1 |" in text and "| sgd+sign-bit | 12.5% | 1 |" in text
    assert text.count("Pareto front (") == 2 and "Hessian trace vs accuracy drop (standard" in text


def test_a_scale_with_part_of_the_family_adjusts_over_its_part():
    """A scale that lists only some methods (``mitigations_cpu``) evaluates their gains, Holm over those alone."""
    from flatenn.analysis.stats import holm
    from flatenn.repro.claims import claim_variants, evaluate_all, hypothesis_family
    from flatenn.repro.plan import plan

    part = dataclasses.replace(
        SCALE, claims=("mitigations",), variants={v: SCALE.variants[v] for v in ("standard-sgd", *GAIN)}
    )
    camp = _camp()
    sharp = pd.DataFrame(
        {"model_id": camp["model_id"].unique(), "metric": "trace_fn", "value": 1.0, "variant": "", "train_seed": 0}
    )
    claims = evaluate_all({"campaign": camp, "sharpness": sharp}, part)[0].set_index("case")
    gains = claims[claims["direction"] == 1]
    assert sorted(gains.index) == sorted(f"mitigations[gain:{v}]" for v in GAIN)
    assert gains["family_complete"].all()
    assert list(gains["p_holm"]) == pytest.approx(holm(list(gains["p_value"])))
    assert claim_variants("mitigations", part) == ("standard-sgd", *GAIN)
    assert {u.variant for u in plan(part)} == {"standard-sgd", *GAIN}
    assert len(hypothesis_family(("mitigations",), SCALES["mitigations_smoke"])) == 24  # the whole family there
    cpu = SCALES["mitigations_cpu"]
    assert len(hypothesis_family(cpu.claims, cpu)) == 12
    # the cpu family's SGD and SAQ models are the cpu scale's own (the same cache keys)
    for v in VARIANTS:
        assert cpu.train_config(v, 3).key() == SCALES["cpu"].train_config(v, 3).key()
