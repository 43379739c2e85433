"""verify catches edits of a tracked folder (the slow tier: each re-derives a copy of results/smoke).

That every tracked folder verifies is `nox -s verify` itself (a CI step of its own), not repeated here.
"""

from pathlib import Path

import pytest

from flatenn.core.results import read_result, read_table, table_file
from flatenn.repro.verify import verify_all, verify_scale

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_smoke_results_are_tracked():
    assert (RESULTS / "smoke" / "claims.csv").is_file() and (RESULTS / "smoke" / "provenance.json").is_file()


@pytest.mark.slow
def test_verify_catches_a_tampered_effect(tmp_path):
    import shutil

    src = RESULTS / "smoke"
    dst = tmp_path / "smoke"
    shutil.copytree(src, dst)
    claims = read_table(dst / "claims.csv")
    claims.loc[0, "effect"] = claims.loc[0, "effect"] + 10
    claims.to_csv(dst / "claims.csv", index=False)
    problems = verify_all(tmp_path)
    assert any("claims.csv: " in p and "effect is" in p for p in problems)
    assert any("checksum" in p for p in problems)


def _copy(tmp_path):
    import shutil

    shutil.copytree(RESULTS / "smoke", tmp_path / "smoke")
    return tmp_path / "smoke"


@pytest.mark.slow
def test_verify_catches_a_hand_edited_accuracy_even_with_a_fixed_checksum(tmp_path):
    import json

    from flatenn.core.results import table_checksums

    d = _copy(tmp_path)
    camp = read_result(d, "campaign")
    i = camp.index[len(camp) // 2]
    camp.loc[i, "accuracy"] = max(0.0, camp.loc[i, "accuracy"] - 7.0)
    from flatenn.core.results import write_schema_table

    write_schema_table(camp, table_file(d, "campaign"), "campaign")
    prov = json.loads((d / "provenance.json").read_text())
    prov["tables_sha256"] = table_checksums(d)  # a careful forger updates the checksums too
    (d / "provenance.json").write_text(json.dumps(prov))
    problems = verify_scale(d)
    assert any("campaign_summary.csv" in p for p in problems)


@pytest.mark.slow
def test_verify_catches_a_forged_verdict(tmp_path):
    d = _copy(tmp_path)
    claims = read_table(d / "claims.csv")
    i = claims.index[claims["direction"] == 1][0]
    claims.loc[i, "verdict"] = "supported" if claims.loc[i, "verdict"] != "supported" else "contradicted"
    claims.to_csv(d / "claims.csv", index=False)
    assert any("verdict is" in p for p in verify_scale(d))


@pytest.mark.slow
def test_verify_catches_swapped_accuracy_and_loss_headers(tmp_path):
    d = _copy(tmp_path)
    path = table_file(d, "campaign")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        swap = {"accuracy": "loss", "loss": "accuracy"}
        pq.write_table(t.rename_columns([swap.get(n, n) for n in t.column_names]), path)
    else:
        path.write_text(path.read_text().replace("accuracy,loss", "loss,accuracy", 1))
    problems = verify_all(tmp_path)
    assert any("campaign" in p for p in problems)
