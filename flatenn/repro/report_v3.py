"""Plan v3 in the README and on the claims page, from the recorded ``verdicts_v3.csv``, ``per_rate_v3.csv`` and
``claim2_v3.csv`` alone: a headline cell per case and the page's table of every primary contrast (verdict,
effect, its clean and drop parts, per-rate signs, window label, seeds needed) and claim 2 within cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.results import read_result, text_or_empty
from .claims import split_case

V3_START, V3_END = "<!-- v3-summary:start -->", "<!-- v3-summary:end -->"
V3_TABLES = ("verdicts_v3", "claim2_v3")


def read_v3(folder: Path) -> dict[str, pd.DataFrame] | None:
    """A scale folder's plan-v3 tables, or None where it has none."""
    if not all((Path(folder) / f"{t}.csv").is_file() for t in V3_TABLES):
        return None
    return {t: read_result(Path(folder), t) for t in V3_TABLES}


def _ci(r, prefix: str = "") -> str:
    key = f"{prefix}effect" if prefix else "effect"
    return f"{r[key]:.3g} [{r[f'{prefix}ci_low']:.3g}, {r[f'{prefix}ci_high']:.3g}]"


def v3_cell(v3: dict[str, pd.DataFrame] | None, case: str) -> str:
    """A headline cell under plan v3 for a claims case (``claim[metric]``), or ``not run``."""
    if v3 is None:
        return "not run"
    claim, metric = split_case(case)
    if metric == "claim":
        c2 = v3["claim2_v3"].set_index("case")
        if case not in c2.index:
            return "not run"
        per = c2[c2["metric"] != "claim"]
        hits = ", ".join(per[per["verdict"] != "not significant"]["metric"]) or "none"
        return f"**{c2.loc[case, 'verdict']}** (within cells; significant: {hits})"
    v = v3["verdicts_v3"]
    if metric == "up_to":
        rows = v[v["case"].str.startswith(f"{claim}[acc_")]
        if not len(rows) or not text_or_empty(rows.iloc[0]["magnitude_points"]):
            return "not run"
        r = rows.iloc[0]
        return (
            f"{r['max_effect']:.3g} pts [{r['max_low']:.3g}, {r['max_high']:.3g}] **{r['magnitude_points']}**; "
            f"{r['relative_max']:.3g}% rel. [{r['relative_low']:.3g}, {r['relative_high']:.3g}] "
            f"**{r['magnitude_relative']}** (max-t band)"
        )
    rows = v[v["case"] == case]
    if not len(rows):
        return "not run"
    r = rows.iloc[0]
    window = "; window-sensitive" if r["window"] == "window-sensitive" else ""
    return f"{_ci(r)} **{r['verdict']}** (n={int(r['n'])}{window})"


def v3_markdown(root: Path, scales: dict[str, str]) -> str:
    """The claims page's plan-v3 tables, one per scale that has them."""
    out = []
    for scale, what in scales.items():
        v3 = read_v3(Path(root) / scale)
        if v3 is None:
            continue
        out += [
            f"`{scale}` ({what}):",
            "",
            "| contrast | verdict (plan v3) | effect [95% CI] | clean part | drop part | per-rate signs of the band | "
            "window | seeds needed (80% power at the SESOI: direction; TOST) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in v3["verdicts_v3"].itertuples(index=False):
            r = r._asdict()
            need = "; ".join(x for x in (text_or_empty(r["seeds_needed"]), text_or_empty(r["tost_seeds_needed"])) if x)
            out.append(
                f"| `{r['case']}` | **{r['verdict']}** (look {int(r['look'])}, n={int(r['n'])}) | {_ci(r)} | "
                f"{_ci(r, 'clean_')} | {_ci(r, 'drop_')} | {r['sign_pattern']} | {r['window']} | {need or '-'} |"
            )
        table = v3["verdicts_v3"]
        sens = table.dropna(subset=["sensitivity_n"]) if "sensitivity_n" in table.columns else table.iloc[:0]
        if len(sens):
            parts = [
                f"`{r.contrast}` {r.sensitivity_effect:.3g} [{r.sensitivity_ci_low:.3g}, {r.sensitivity_ci_high:.3g}] "
                f"(t p {r.sensitivity_p:.2g}, n={int(r.sensitivity_n)})"
                for r in sens.itertuples(index=False)
            ]
            out += [
                "",
                "Sensitivity, without the seeds the plan names for this scale (exploratory): " + "; ".join(parts) + ".",
            ]
        c2 = v3["claim2_v3"]
        cells = []
        for r in c2[c2["metric"] != "claim"].itertuples(index=False):
            names = [n.split(" (")[0] for n in str(r.cells).split("; ")]
            per = ", ".join(f"{n} {x}" for n, x in zip(names, str(r.cell_rhos).split("; "), strict=False))
            cells.append(f"`{r.metric}` rho {r.rho:.2f} ({per}; Holm p {r.p_holm:.2g}, {r.verdict})")
        verdict = c2[c2["metric"] == "claim"]["verdict"]
        out += [
            "",
            f"Claim 2 within (activation, method) cells: **{verdict.iloc[0] if len(verdict) else 'not run'}**; "
            + "; ".join(cells)
            + ".",
            "",
        ]
    if not out:
        return ""
    out += [
        "Accuracy points, mean [95% t-CI over training seeds]; effect = clean part + drop part for every seed. "
        "Per-rate signs: per fault model, in rate order, where the 95% max-t band over the whole grid lies above "
        "0 (+), below (-) or holds 0 (0). Verdicts, windows and seeds needed as `flatenn/repro/plans/v3.toml` "
        "defines them; `python -m flatenn verdicts --scale S --plan v3` re-derives them."
    ]
    return "\n".join(out).rstrip()
