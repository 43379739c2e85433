from flatenn.core.results import read_result, table_file, write_schema_table, write_table
from flatenn.repro.claims import evaluate_all
from flatenn.repro.experiment import campaign_summary
from flatenn.repro.report import build_report
from flatenn.repro.scales import SCALES

from .test_claims import _campaign


def test_report_from_csvs_alone(tmp_path):
    d = tmp_path / "smoke"
    camp = _campaign(trials=5)
    write_schema_table(camp, table_file(d, "campaign"), "campaign")
    camp = read_result(d, "campaign")
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


def test_a_run_folders_readme_lists_only_what_the_run_holds(tmp_path):
    """A run folder's README: its scales, no 'not run' for what it ran, no link to a figure it does not have."""
    import re

    from flatenn.core.results import read_table
    from flatenn.repro.report import headline

    test_report_from_csvs_alone(tmp_path)
    text = (tmp_path / "README.md").read_text()
    ran = set(read_table(tmp_path / "smoke" / "claims.csv")["case"])
    assert "smoke, plan v2" not in text  # the run wrote no verdicts.csv: no column of empty cells
    assert ("not run" in text) == any(c1 not in ran for _, c1, _ in headline())  # only what it did not compute
    assert "not recorded" not in text
    assert "| smoke |" in text and "| cpu |" not in text and "| paper_" not in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (tmp_path / link).is_file(), link
    assert "## Ablation" not in text  # the run has no ablation level


def test_figure_titles_count_the_seeds_the_figure_shows():
    import pandas as pd

    from flatenn.repro.report import scale_title

    five = pd.DataFrame({"train_seed": [0, 1, 2, 3, 4, 4]})
    assert "5 training seeds" in scale_title(SCALES["smoke"], five)
    assert "up to" not in scale_title(SCALES["smoke"], five)
    per_case = pd.DataFrame({"n_seeds": [10, 20, 20]})
    assert "10–20 training seeds" in scale_title(SCALES["smoke"], per_case)


def test_the_package_version_is_the_changelog_head_and_the_metadata():
    import re
    from importlib.metadata import version
    from pathlib import Path

    import flatenn

    root = Path(__file__).resolve().parents[2]
    head = re.search(r"^## (\S+)", (root / "CHANGELOG.md").read_text(), re.M)[1]
    assert flatenn.__version__ == head == version("flatenn")
