"""The tracked results/ must re-derive from their own CSVs and sit inside their bands."""

from pathlib import Path

import pytest

from flatenn.results import read_table
from flatenn.verify import verify_all, verify_scale

RESULTS = Path(__file__).resolve().parent.parent / "results"
SCALE_DIRS = sorted(p for p in RESULTS.glob("*") if (p / "claims.csv").is_file())


@pytest.mark.parametrize("d", SCALE_DIRS, ids=[p.name for p in SCALE_DIRS])
def test_tracked_results_verify(d):
    assert verify_scale(d) == []


def test_smoke_results_are_tracked():
    assert (RESULTS / "smoke" / "claims.csv").is_file() and (RESULTS / "smoke" / "provenance.json").is_file()


def test_verify_catches_a_tampered_effect(tmp_path):
    import shutil

    src = RESULTS / "smoke"
    dst = tmp_path / "smoke"
    shutil.copytree(src, dst)
    claims = read_table(dst / "claims.csv")
    claims.loc[0, "effect"] = claims.loc[0, "effect"] + 10
    claims.to_csv(dst / "claims.csv", index=False)
    problems = verify_all(tmp_path)
    assert any("in claims.csv but" in p for p in problems)
