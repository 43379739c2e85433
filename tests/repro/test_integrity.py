"""verify catches edits of the shipped models, provenance and every table (issue 19.1, 19.2, 19.8).

Each edit is made on a copy of ``results/smoke`` the way a careful forger (or a buggy rerun) would:
where a table is changed, the checksums in provenance.json are rewritten too, so only the content
checks can catch it. Most tests call the one check that must catch the edit (a full verify of smoke
takes ~20 s); one test runs the whole verify on a folder with many edits at once.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flatenn.core.results import read_result, read_table, table_checksums, table_file, write_schema_table, write_table
from flatenn.repro.integrity import check_campaign_counts, check_measured, check_provenance, check_training, remeasure
from flatenn.repro.scales import SCALES
from flatenn.repro.verify import compare_runs, verify_all

RESULTS = Path(__file__).resolve().parents[2] / "results"
SMOKE = SCALES["smoke"]


@pytest.fixture
def smoke(tmp_path) -> Path:
    d = tmp_path / "smoke"
    shutil.copytree(RESULTS / "smoke", d, ignore=shutil.ignore_patterns("figures"))
    return d


def _tables(d: Path) -> dict[str, pd.DataFrame]:
    from flatenn.core.results import read_results

    return read_results(d)


def _reseal(d: Path) -> None:
    """Rewrite the table checksums in provenance.json (what a careful edit does)."""
    prov = json.loads((d / "provenance.json").read_text())
    prov["tables_sha256"] = table_checksums(d)
    (d / "provenance.json").write_text(json.dumps(prov))


def _key(d: Path, model_id: str) -> str:
    t = read_result(d, "training")
    return str(t.loc[t["model_id"] == model_id, "key"].iloc[0])


def _training_problems(d: Path) -> list[str]:
    return check_training(d, SMOKE, read_result(d, "training"))


def test_the_tracked_smoke_models_and_tables_pass_every_check(smoke):
    t = _tables(smoke)
    assert _training_problems(smoke) == []
    assert check_measured(SMOKE, t) == []
    assert check_provenance(json.loads((smoke / "provenance.json").read_text()), SMOKE, t["training"]) == []


def test_a_flipped_byte_in_a_shipped_model_is_caught(smoke):
    pt = smoke / "models" / f"{_key(smoke, 'sparse-sgd-s0')}.pt"
    blob = bytearray(pt.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    pt.write_bytes(bytes(blob))
    assert any("sparse-sgd-s0" in p and "checksum" in p for p in _training_problems(smoke))


def test_an_edited_model_record_is_caught_even_with_its_checksum_rewritten(smoke):
    from flatenn.core.zoo import _record_digest

    meta_path = smoke / "models" / f"{_key(smoke, 'standard-saq-s2')}.json"
    meta = json.loads(meta_path.read_text())
    meta["record"]["clean_accuracy"] = 99.99
    meta_path.write_text(json.dumps(meta))
    assert any("standard-saq-s2" in p and "record" in p for p in _training_problems(smoke))
    meta["record_sha256"] = _record_digest(meta["record"], meta["fingerprint"])  # a careful forger
    meta_path.write_text(json.dumps(meta))
    assert any("clean_accuracy" in p and "standard-saq-s2" in p for p in _training_problems(smoke))


def test_a_deleted_model_is_caught(smoke):
    (smoke / "models" / f"{_key(smoke, 'sparse-saq-s4')}.pt").unlink()
    assert any("sparse-saq-s4" in p and "no entry" in p for p in _training_problems(smoke))


@pytest.mark.parametrize("what", ["pt", "both", "swap"])
def test_seed_1_entry_copied_over_or_swapped_with_seed_0_is_caught(smoke, what):
    m = smoke / "models"
    k0, k1 = _key(smoke, "standard-sgd-s0"), _key(smoke, "standard-sgd-s1")
    if what == "swap":
        for ext in ("pt", "json"):
            a, b = (m / f"{k0}.{ext}").read_bytes(), (m / f"{k1}.{ext}").read_bytes()
            (m / f"{k0}.{ext}").write_bytes(b)
            (m / f"{k1}.{ext}").write_bytes(a)
    else:
        for ext in ("pt",) if what == "pt" else ("pt", "json"):
            shutil.copy(m / f"{k1}.{ext}", m / f"{k0}.{ext}")
    problems = _training_problems(smoke)
    assert any("standard-sgd-s0" in p for p in problems)
    if what == "swap":
        assert any("standard-sgd-s1" in p for p in problems)


def test_edited_fingerprints_in_provenance_and_an_edited_scale_config_are_caught(smoke):
    prov = json.loads((smoke / "provenance.json").read_text())
    training = read_result(smoke, "training")
    prov["models"]["sparse-saq-s1"]["fingerprint"] = "0" * 16
    prov["scale_config"]["trials"] = 10
    problems = check_provenance(prov, SMOKE, training)
    assert any("sparse-saq-s1" in p for p in problems)
    assert any("scale_config" in p and "trials" in p for p in problems)


@pytest.mark.parametrize(
    "column,value,match",
    [
        ("key", "0123456789abcdef", "key"),
        ("epochs", 19, "epochs"),
        ("source", "downloaded", "source"),
        ("sparsity", 0.1, "sparsity"),
        ("width", 16, "width"),
    ],
)
def test_edited_training_rows_are_caught(smoke, column, value, match):
    t = read_table(smoke / "training.csv")
    t.loc[3, column] = value
    write_table(t, smoke / "training.csv")
    assert any(match in p for p in _training_problems(smoke))


def test_an_edited_changed_weights_count_is_caught(smoke):
    camp = read_result(smoke, "campaign")
    mine = camp[camp["model_id"] == "standard-sgd-s3"].copy()
    i = mine.index[(mine["fault_model"] == "stuck1") & (mine["changed_weights"] > 2)][0]
    mine.loc[i, "changed_weights"] -= 1  # still <= faulty_bits: only a re-derivation sees it
    problems = check_campaign_counts(smoke, SMOKE, mine.reset_index(drop=True), read_result(smoke, "training"))
    assert any("changed_weights" in p and "standard-sgd-s3" in p for p in problems)
    untouched = camp[camp["model_id"] == "standard-sgd-s3"].reset_index(drop=True)
    assert check_campaign_counts(smoke, SMOKE, untouched, read_result(smoke, "training")) == []


def test_a_changed_train_seed_in_one_campaign_row_is_caught(smoke):
    camp = read_result(smoke, "campaign")
    mine = camp[camp["model_id"] == "sparse-sgd-s2"].reset_index(drop=True)
    mine.loc[5, "train_seed"] = 4
    problems = check_campaign_counts(smoke, SMOKE, mine, read_result(smoke, "training"))
    assert any("train_seed" in p for p in problems)


def test_sharpness_edits_are_caught(smoke):
    t = _tables(smoke)
    sharp = t["sharpness"]
    renamed = sharp.copy()
    renamed.loc[0, "metric"] = "lambda_maximum"
    assert any("sharpness.csv" in p for p in check_measured(SMOKE, {**t, "sharpness": renamed}))
    deleted = sharp.drop(index=7)
    assert any("missing" in p for p in check_measured(SMOKE, {**t, "sharpness": deleted}))
    land = sharp.copy()
    i = land.index[land["metric"] == "landscape1d"][0]
    land.loc[i, "value"] *= 1.5
    assert any("landscape1d" in p for p in check_measured(SMOKE, {**t, "sharpness": land}))


def test_a_duplicated_sharpness_row_is_one_clear_line(smoke):
    from flatenn.core.results import ResultsTableError

    text = (smoke / "sharpness.csv").read_text().splitlines(keepends=True)
    (smoke / "sharpness.csv").write_text("".join([*text, text[3]]))
    with pytest.raises(ResultsTableError, match="sharpness.csv, lines .* appears more than once"):
        read_result(smoke, "sharpness")


def test_a_re_measurement_catches_an_edited_sharpness_value(smoke):
    t = _tables(smoke)
    sharp = t["sharpness"].copy()
    mine = sharp[(sharp["model_id"] == "sparse-sgd-s0") & sharp["metric"].isin(["avg_sharpness"])]
    one = {
        **t,
        "sharpness": mine.assign(value=mine["value"] * 1.3),
        "sparsity": t["sparsity"].iloc[:0],
        "landscape": t["landscape"].iloc[:0],
    }
    problems = remeasure(smoke, SMOKE, one, ["sparse-sgd-s0"])
    assert any("avg_sharpness" in p and "re-measured" in p for p in problems)
    assert remeasure(smoke, SMOKE, {**one, "sharpness": mine}, ["sparse-sgd-s0"]) == []


def test_sparsity_and_landscape_edits_are_caught(smoke):
    t = _tables(smoke)
    sp = t["sparsity"].copy()
    sp.loc[2, "sparsity"] = sp.loc[2, "sparsity"] + 0.01
    assert any("zeros / total" in p for p in check_measured(SMOKE, {**t, "sparsity": sp}))
    assert any("different layers" in p for p in check_measured(SMOKE, {**t, "sparsity": t["sparsity"].drop(index=4)}))
    land = t["landscape"].copy()
    j = land.index[land["model_id"] == "standard-sgd-s1"]
    land.loc[j[land.loc[j, "loss"].argmax()], "loss"] *= 2  # the curve's maximum: landscape1d no longer derives
    assert any("landscape1d" in p for p in check_measured(SMOKE, {**t, "landscape": land}))
    assert any("different alphas" in p for p in check_measured(SMOKE, {**t, "landscape": t["landscape"].drop(index=3)}))


@pytest.mark.slow
def test_whole_verify_lists_every_problem_of_a_damaged_folder_without_a_crash(smoke):
    training = (smoke / "training.csv").read_text().splitlines(keepends=True)
    (smoke / "training.csv").write_text("".join([*training, training[2]]))  # duplicated row
    claims = (smoke / "claims.csv").read_text().splitlines(keepends=True)
    (smoke / "claims.csv").write_text("".join([*claims, claims[5]]))
    summary = read_result(smoke, "campaign_summary")
    write_table(summary.drop(index=11), smoke / "campaign_summary.csv")  # a deleted row
    camp = read_result(smoke, "campaign")
    camp.loc[100, "train_seed"] = (camp.loc[100, "train_seed"] + 1) % 5
    write_schema_table(camp, table_file(smoke, "campaign"), "campaign")
    _reseal(smoke)
    problems = verify_all(smoke.parent)
    text = "\n".join(problems)
    assert "training.csv, lines" in text and "claims.csv, lines" in text, text
    (smoke / "training.csv").write_text("".join(training))  # the rest is reported once training.csv is whole
    _reseal(smoke)
    problems = verify_all(smoke.parent)
    text = "\n".join(problems)
    assert "campaign_summary.csv: 1 row(s) missing" in text
    assert "train_seed" in text
    assert not any("Traceback" in p or "Invalid call for scalar access" in p for p in problems)
    assert all(len(p.splitlines()) == 1 for p in problems)


def test_compare_names_a_duplicated_claims_row_and_checks_n_and_window(smoke, tmp_path):
    fresh = tmp_path / "fresh" / "smoke"
    fresh.mkdir(parents=True)
    claims = read_table(smoke / "claims.csv")
    write_table(claims, fresh / "claims.csv")
    assert compare_runs(smoke, fresh) == ["claims_detail.csv: missing from the fresh run " + str(fresh)]
    shutil.copy(smoke / "claims_detail.csv", fresh / "claims_detail.csv")
    assert compare_runs(smoke, fresh) == []
    changed = claims.copy()
    changed.loc[0, "n"] = changed.loc[0, "n"] + 1
    i = changed.index[changed["window_stable"].astype(str) == "True"][0]
    changed.loc[i, "window_stable"] = False
    write_table(changed, fresh / "claims.csv")
    problems = compare_runs(smoke, fresh)
    assert any("n is" in p for p in problems) and any("window_stable" in p for p in problems)
    text = (smoke / "claims.csv").read_text().splitlines(keepends=True)
    (fresh / "claims.csv").write_text("".join([*text, text[1]]))
    from flatenn.core.results import ResultsTableError

    with pytest.raises(ResultsTableError, match="claims.csv, lines"):
        compare_runs(smoke, fresh)


# ---- edits behind rewritten checksums: what default verify re-measures ----------------------------------------


def _verify_measured(d: Path, remeasure: int | str = 0, seed: int = 1) -> tuple[list[str], list[str]]:
    """The re-measurement part of default verify on one folder (every landscape and sparsity row, and the
    sharpness rows of ``remeasure`` drawn models)."""
    from flatenn.repro.verify import _remeasure

    notes: list[str] = []
    return _remeasure(d, SMOKE, _tables(d), remeasure, True, seed, notes), notes


def test_a_sparsity_row_edited_consistently_is_caught_by_default_verify(smoke):
    sp = read_result(smoke, "sparsity")
    i = sp.index[sp["layer"] != "overall"][3]
    sp.loc[i, "zeros"] += 1000
    sp.loc[i, "sparsity"] = sp.loc[i, "zeros"] / sp.loc[i, "total"]  # the derived column updated to match
    write_table(sp, smoke / "sparsity.csv")
    _reseal(smoke)
    assert check_measured(SMOKE, _tables(smoke)) == []  # consistent: only re-measuring can tell
    problems, notes = _verify_measured(smoke)
    assert any("sparsity.csv" in p and sp.loc[i, "model_id"] in p for p in problems), problems
    assert any("every landscape and sparsity row" in n for n in notes)


def test_a_landscape_loss_times_1_001_is_caught_by_default_verify(smoke):
    land = read_result(smoke, "landscape")
    j = land.index[(land["model_id"] == "standard-saq-s2") & (land["alpha"].abs() > 0.3)][0]
    land.loc[j, "loss"] *= 1.001  # not the curve's maximum: landscape1d still derives
    write_table(land, smoke / "landscape.csv")
    _reseal(smoke)
    assert check_measured(SMOKE, _tables(smoke)) == []
    problems, _ = _verify_measured(smoke)
    assert any("landscape.csv: standard-saq-s2" in p for p in problems), problems


def test_a_sharpness_value_times_1_01_is_caught_when_its_model_is_drawn(smoke):
    sharp = read_result(smoke, "sharpness")
    k = sharp.index[(sharp["model_id"] == "sparse-saq-s1") & (sharp["metric"] == "trace_fn")][0]
    sharp.loc[k, "value"] *= 1.01
    write_table(sharp, smoke / "sharpness.csv")
    _reseal(smoke)
    t = _tables(smoke)
    ids = sorted(set(t["sharpness"]["model_id"]) | set(t["sparsity"]["model_id"]))
    drawn = {}
    for seed in range(1000):  # a seed whose draw of 3 models holds the edited one (the draw verify makes)
        if "sparse-saq-s1" in np.random.default_rng([seed, zlib.crc32(b"smoke")]).choice(ids, size=3, replace=False):
            drawn = {"seed": seed}
            break
    problems, notes = _verify_measured(smoke, remeasure=3, seed=drawn["seed"])
    assert any("sparse-saq-s1 trace_fn" in p for p in problems), problems
    assert any(f"--remeasure-seed {drawn['seed']}" in n for n in notes)


def test_cross_cpu_tolerances_catch_a_one_percent_edit_of_every_metric():
    from flatenn.repro.tolerances import METRIC_RTOL, SHARPNESS_RTOL, metric_rtol

    for m in ("lambda_max", "lambda_max_fn", "trace_fn", "avg_sharpness", "eps_sharpness", "bit_sensitivity"):
        assert metric_rtol(m) < 0.01
    assert METRIC_RTOL["eps_sharpness"] > SHARPNESS_RTOL  # 2.3e-3 measured between two CPUs


# ---- provenance run records and stray models -----------------------------------------------------------------


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda r: r["git"].update(commit="0" * 40), "is not the commit its run id names"),
        (lambda r: r["git"].update(commit="e50858f37280" + "0" * 28), "is not the commit its run id names"),
        (lambda r: r.update(git={}), "git record is missing"),
        (lambda r: r["git"].update(dirty=True), "dirty"),
        (lambda r: r["versions"].update(torch=""), "versions of ['torch']"),
        (lambda r: r.update(versions=None), "versions record"),
        (lambda r: r.update(time_utc="2020-01-01T00:00:00+00:00"), "before the run started"),
        (lambda r: r.update(run_id="20261205T132650Z-deadbeef-c22a"), "is not the commit its run id names"),
    ],
)
def test_a_zeroed_or_replaced_run_record_is_caught(smoke, edit, match):
    prov = json.loads((smoke / "provenance.json").read_text())
    edit(prov["runs"][0])
    problems = check_provenance(prov, SMOKE, read_result(smoke, "training"))
    assert any(match in p for p in problems), problems


def test_a_run_that_records_another_flatenn_version_than_its_commit_is_caught(smoke):
    from flatenn.repro.integrity import run_commit_notes

    prov = json.loads((smoke / "provenance.json").read_text())
    assert run_commit_notes(prov, RESULTS.parent) == ([], [])
    prov["runs"][0]["versions"]["flatenn"] = "9.9.9"
    problems, _ = run_commit_notes(prov, RESULTS.parent)
    assert any("9.9.9" in p and "0.3.0" in p for p in problems)
    prov["runs"][0]["git"]["commit"] = "1" * 40  # a commit this history does not hold: a note, not a problem
    assert run_commit_notes(prov, RESULTS.parent)[1]


def test_a_copied_model_under_a_new_key_is_reported(smoke):
    key = _key(smoke, "sparse-sgd-s0")
    for ext in (".pt", ".json"):
        shutil.copy(smoke / "models" / f"{key}{ext}", smoke / "models" / f"0123456789abcdef{ext}")
    problems = _training_problems(smoke)
    assert any("models/: 2 file(s) that no row of training.csv names" in p for p in problems), problems


# ---- compare: every number and verdict, both ways ---------------------------------------------------------------


@pytest.fixture
def fresh_copy(smoke, tmp_path) -> Path:
    fresh = tmp_path / "fresh" / "smoke"
    fresh.mkdir(parents=True)
    for f in ("claims.csv", "claims_detail.csv"):
        shutil.copy(smoke / f, fresh / f)
    assert compare_runs(smoke, fresh) == []
    return fresh


def _edit_claims(fresh: Path, edit) -> list[str]:
    claims = read_table(fresh / "claims.csv")
    edit(claims)
    write_table(claims, fresh / "claims.csv")
    return claims


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: c.__setitem__("ci_high", c["ci_high"] * 2), "ci_high is"),
        (lambda c: c.loc.__setitem__((c["direction"] == 1, "p_holm"), 0.9), "p_holm is 0.9"),
        (lambda c: c.loc.__setitem__((c.index[0], "verdict_all_rates"), "contradicted"), "verdict_all_rates"),
        (lambda c: c.loc.__setitem__((c["magnitude"].isna(), "magnitude"), "below published"), "compares no published"),
    ],
)
def test_compare_refuses_an_edited_number_or_label(smoke, fresh_copy, edit, match):
    _edit_claims(fresh_copy, edit)
    assert any(match in p for p in compare_runs(smoke, fresh_copy))


def test_compare_refuses_an_invented_row_and_a_missing_one(smoke, fresh_copy):
    claims = read_table(fresh_copy / "claims.csv")
    invented = claims.iloc[[0]].assign(case="sparse_vs_standard[invented]")
    write_table(pd.concat([claims.iloc[1:], invented]), fresh_copy / "claims.csv")
    problems = compare_runs(smoke, fresh_copy)
    assert any("invented" in p and "does not have" in p for p in problems)
    assert any(claims["case"].iloc[0] in p and "missing" in p for p in problems)


def test_compare_refuses_an_empty_claims_table(smoke, fresh_copy):
    write_table(read_table(fresh_copy / "claims.csv").iloc[:0], fresh_copy / "claims.csv")
    assert any("nothing was compared" in p for p in compare_runs(smoke, fresh_copy, only_fresh=True))


def test_compare_wants_the_plan_v2_tables_of_a_run_that_measured_every_seed(smoke, fresh_copy):
    shutil.copy(table_file(smoke, "campaign"), fresh_copy / table_file(smoke, "campaign").name)
    problems = compare_runs(smoke, fresh_copy)
    assert any("verdicts.csv: missing" in p for p in problems)
    for f in ("verdicts.csv", "sequential.csv"):
        shutil.copy(smoke / f, fresh_copy / f)
    assert compare_runs(smoke, fresh_copy) == []
    v = read_table(fresh_copy / "verdicts.csv")
    v.loc[v.index[0], "p_value"] = 0.5
    write_table(v, fresh_copy / "verdicts.csv")
    assert any("p_value is 0.5" in p for p in compare_runs(smoke, fresh_copy))


def test_accuracy_agrees_within_one_evaluation_example():
    from flatenn.repro.tolerances import accuracy_agrees

    assert accuracy_agrees([61.9444], [62.2222], [360]).all()  # one of 360 examples, both rounded to %.6g
    assert not accuracy_agrees([61.6667], [62.2222], [360]).any()  # two
    assert not accuracy_agrees([99.0], [100.0], [1000]).any()  # ten of 1000


def test_a_partial_run_is_not_held_to_the_whole_familys_adjusted_values(smoke, fresh_copy):
    """A -k run computes part of the family: its Holm-adjusted p-values and verdicts are over fewer cases, so the
    summary (only_fresh) leaves them out; the raw numbers are still compared, and a full compare checks all."""
    claims = read_table(fresh_copy / "claims.csv")
    part = claims.iloc[:3].assign(family_complete=False, p_holm=claims["p_holm"].iloc[:3] * 3)
    write_table(part, fresh_copy / "claims.csv")
    assert compare_runs(smoke, fresh_copy, only_fresh=True) == []
    assert any("p_holm" in p for p in compare_runs(smoke, fresh_copy))
    write_table(part.assign(p_value=part["p_value"] + 0.2), fresh_copy / "claims.csv")
    assert any("p_value" in p for p in compare_runs(smoke, fresh_copy, only_fresh=True))
