"""Plan v3 on the pages: cells and tables read from the recorded v3 tables alone, and say `not run` without them."""

from __future__ import annotations

from pathlib import Path

from flatenn.core.results import read_result
from flatenn.repro.report_v3 import read_v3, v3_cell, v3_markdown

ROOT = Path(__file__).resolve().parents[2] / "results"


def test_a_folder_without_v3_tables_reads_not_run(tmp_path):
    assert read_v3(tmp_path) is None
    assert v3_cell(None, "saq_gain_sparse[acc_gain]") == "not run"
    assert v3_markdown(tmp_path, {"smoke": "digits"}) == ""


def test_cells_and_tables_carry_the_recorded_verdicts_and_parts():
    v3 = read_v3(ROOT / "cpu")
    rows = read_result(ROOT / "cpu", "verdicts_v3").set_index("case")
    for case, r in rows.iterrows():
        assert f"**{r['verdict']}**" in v3_cell(v3, case)
    assert "**below published**" in v3_cell(v3, "sparse_vs_standard[up_to]")
    claim2 = read_result(ROOT / "cpu", "claim2_v3").set_index("case").loc["sharper_minima[claim]", "verdict"]
    assert f"**{claim2}**" in v3_cell(v3, "sharper_minima[claim]")
    page = v3_markdown(ROOT, {"cpu": "Fashion-MNIST"})
    for case, r in rows.iterrows():
        line = next(x for x in page.splitlines() if x.startswith(f"| `{case}`"))
        assert r["sign_pattern"] in line and f"{r['clean_effect']:.3g}" in line and f"{r['drop_effect']:.3g}" in line
