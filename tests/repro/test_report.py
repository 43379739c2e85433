from flatenn.core.results import read_table, write_schema_table, write_table
from flatenn.repro.claims import evaluate_all
from flatenn.repro.experiment import campaign_summary
from flatenn.repro.report import build_report
from flatenn.repro.scales import SCALES

from .test_claims import _campaign


def test_report_from_csvs_alone(tmp_path):
    d = tmp_path / "smoke"
    camp = _campaign(trials=5)
    write_schema_table(camp, d / "campaign.csv", "campaign")
    camp = read_table(d / "campaign.csv", "campaign")
    summ = campaign_summary(camp)
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


def test_landscape_plots(tmp_path):
    import numpy as np
    import pandas as pd

    from flatenn.repro.report import plot_landscape_2d, plot_landscapes_1d

    a = np.linspace(-1, 1, 5)
    line = pd.DataFrame(
        [
            {"model_id": m, "variant": v, "alpha": x, "loss": 0.1 + k * x**2}
            for m, v, k in (("a", "standard-sgd", 1.0), ("b", "sparse-sgd", 3.0))
            for x in a
        ]
    )
    plot_landscapes_1d(line, tmp_path / "l1.png")
    grid = pd.DataFrame([{"alpha": x, "beta": y, "loss": 0.1 + x**2 + 2 * y**2} for x in a for y in a])
    plot_landscape_2d(grid, tmp_path / "l2.png")
    assert (tmp_path / "l1.png").stat().st_size > 1000 and (tmp_path / "l2.png").stat().st_size > 1000
