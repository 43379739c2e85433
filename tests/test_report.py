from flatenn.claims import evaluate_all
from flatenn.report import build_report
from flatenn.results import read_table, write_schema_table, write_table
from flatenn.scales import SCALES
from flatenn.stats import summarize_campaign

from .test_claims import _campaign


def test_report_from_csvs_alone(tmp_path):
    d = tmp_path / "smoke"
    camp = _campaign(trials=5)
    write_schema_table(camp, d / "campaign.csv", "campaign")
    camp = read_table(d / "campaign.csv", "campaign")
    summ = summarize_campaign(camp).merge(camp.drop_duplicates("model_id")[["model_id", "variant", "train_seed"]])
    write_table(summ, d / "campaign_summary.csv")
    claims, detail = evaluate_all({"campaign": camp}, SCALES["smoke"])
    write_table(claims, d / "claims.csv")
    write_table(detail, d / "claims_detail.csv")
    made = build_report(tmp_path)
    names = {p.name for p in made}
    assert {"accuracy_vs_rate.png", "claim_gaps.png", "README.md"} <= names
    assert all(p.stat().st_size > 1000 for p in made)
    text = (tmp_path / "README.md").read_text()
    assert "| sparse_vs_standard[acc_gap] |" in text and "## smoke" in text
