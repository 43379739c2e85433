"""verify catches edits of the shipped models, provenance and every table (issue 19.1, 19.2, 19.8).

Each edit is made on a copy of ``results/smoke`` the way a careful forger (or a buggy rerun) would:
where a table is changed, the checksums in provenance.json are rewritten too, so only the content
checks can catch it. Most tests call the one check that must catch the edit (a full verify of smoke
takes ~20 s); one test runs the whole verify on a folder with many edits at once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flatenn.core.results import read_result, read_table, table_checksums, write_schema_table, write_table
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
    camp = read_table(smoke / "campaign.csv", "campaign")
    mine = camp[camp["model_id"] == "standard-sgd-s3"].copy()
    i = mine.index[(mine["fault_model"] == "stuck1") & (mine["changed_weights"] > 2)][0]
    mine.loc[i, "changed_weights"] -= 1  # still <= faulty_bits: only a re-derivation sees it
    problems = check_campaign_counts(smoke, SMOKE, mine.reset_index(drop=True), read_result(smoke, "training"))
    assert any("changed_weights" in p and "standard-sgd-s3" in p for p in problems)
    untouched = camp[camp["model_id"] == "standard-sgd-s3"].reset_index(drop=True)
    assert check_campaign_counts(smoke, SMOKE, untouched, read_result(smoke, "training")) == []


def test_a_changed_train_seed_in_one_campaign_row_is_caught(smoke):
    camp = read_table(smoke / "campaign.csv", "campaign")
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


def test_whole_verify_lists_every_problem_of_a_damaged_folder_without_a_crash(smoke):
    training = (smoke / "training.csv").read_text().splitlines(keepends=True)
    (smoke / "training.csv").write_text("".join([*training, training[2]]))  # duplicated row
    claims = (smoke / "claims.csv").read_text().splitlines(keepends=True)
    (smoke / "claims.csv").write_text("".join([*claims, claims[5]]))
    summary = read_result(smoke, "campaign_summary")
    write_table(summary.drop(index=11), smoke / "campaign_summary.csv")  # a deleted row
    camp = read_table(smoke / "campaign.csv", "campaign")
    camp.loc[100, "train_seed"] = (camp.loc[100, "train_seed"] + 1) % 5
    write_schema_table(camp, smoke / "campaign.csv", "campaign")
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
