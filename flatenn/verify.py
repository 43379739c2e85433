"""Checks of recorded results: re-derive claims from tracked CSVs, record bands, compare two runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .claims import BANDS_DIR, evaluate_all
from .experiment import Experiment, git_state
from .results import read_results, read_table
from .scales import SCALES

MIN_TRIALS, MIN_SEEDS = 50, 3
# compare_runs tolerances: clean accuracy of each model, and claims must land in the tracked bands
CLEAN_ACCURACY_TOLERANCE = 1.0  # accuracy points


def verify_scale(d: Path) -> list[str]:
    """Problems with one tracked ``results/<scale>`` folder (empty list: all good)."""
    name = d.name
    problems: list[str] = []
    if name not in SCALES:
        return [f"{d}: unknown scale folder"]
    tracked = read_table(d / "claims.csv")
    if not (d / "provenance.json").is_file():
        problems.append(f"{name}: provenance.json is missing")
    tables = read_results(d)
    camp = tables["campaign"]
    if len(camp):
        per_point = camp.groupby(["model_id", "fault_model", "rate"])["trial"].nunique()
        if per_point.min() < MIN_TRIALS:
            problems.append(f"{name}: a campaign point has {per_point.min()} trials (< {MIN_TRIALS})")
        if camp["train_seed"].nunique() < MIN_SEEDS:
            problems.append(f"{name}: campaigns cover {camp['train_seed'].nunique()} training seeds (< {MIN_SEEDS})")
    fresh, _ = evaluate_all(tables, SCALES[name], only=list(tracked["case"]))
    fresh = fresh.set_index("case")
    for row in tracked.itertuples():
        if row.case not in fresh.index:
            problems.append(f"{name}: {row.case} cannot be re-derived from the tracked CSVs")
            continue
        f = fresh.loc[row.case]
        for col in ("effect", "ci_low", "ci_high"):
            a, b = float(getattr(row, col)), float(f[col])
            if not (np.isnan(a) and np.isnan(b)) and not np.isclose(a, b, rtol=1e-4, atol=1e-6):
                problems.append(f"{name}: {row.case} {col} is {a:.6g} in claims.csv but {b:.6g} from the tables")
        if not bool(f["in_band"]):
            problems.append(f"{name}: {row.case} effect {f['effect']:.4g} outside its band "
                            f"[{f['band_low']:.4g}, {f['band_high']:.4g}]")  # fmt: skip
        exp = f["expected_verdict"]
        if isinstance(exp, str) and exp and exp != f["verdict"]:
            problems.append(f"{name}: {row.case} verdict {f['verdict']} but {exp} expected")
    return problems


def verify_all(root: Path) -> list[str]:
    """Verify every ``results/<scale>`` folder that has a claims.csv."""
    dirs = sorted(p for p in Path(root).iterdir() if p.is_dir() and (p / "claims.csv").is_file())
    if not dirs:
        return [f"{root}: no results/<scale>/claims.csv to verify"]
    return [p for d in dirs for p in verify_scale(d)]


def record_bands(d: Path, scale: str) -> Path:
    """Write ``flatenn/bands/<scale>.json`` from a recorded claims.csv, then re-derive claims.csv with them.

    Band = the recorded 95% CI of the effect; expected verdict = the recorded verdict.
    """
    if scale.startswith("paper"):
        raise ValueError("paper-scale bands come from the paper's numbers (flatenn/claims.py), not from runs")
    claims = read_table(d / "claims.csv")
    bands = {}
    for r in claims.itertuples():
        lo, hi = float(r.ci_low), float(r.ci_high)
        if np.isnan(lo) or np.isnan(hi) or hi - lo < 1e-9:
            pad = max(1e-6, 1e-3 * abs(float(r.effect)))
            lo, hi = float(r.effect) - pad, float(r.effect) + pad
        bands[r.case] = {"low": lo, "high": hi, "expected_verdict": r.verdict,
                         "recorded": f"effect {r.effect:.4g} {r.unit}, 95% CI [{r.ci_low:.4g}, {r.ci_high:.4g}], {r.verdict}"}  # fmt: skip
    BANDS_DIR.mkdir(exist_ok=True)
    path = BANDS_DIR / f"{scale}.json"
    doc = {"scale": scale, "source": f"results/{scale}/claims.csv at commit {git_state()['commit']}",
           "rule": "band = recorded 95% CI of the effect; expected_verdict = recorded verdict", "bands": bands}  # fmt: skip
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    Experiment(SCALES[scale], d, progress=False).record_claims(list(claims["case"]))
    return path


def compare_runs(tracked: Path, fresh: Path) -> list[str]:
    """Differences between a fresh run and the tracked one beyond the stated tolerances."""
    problems = []
    t_train, f_train = read_table(tracked / "training.csv"), read_table(fresh / "training.csv")
    j = t_train.set_index("model_id")["clean_accuracy"].to_frame("t").join(
        f_train.set_index("model_id")["clean_accuracy"].to_frame("f"), how="inner")
    for mid, r in j.iterrows():
        if abs(r.t - r.f) > CLEAN_ACCURACY_TOLERANCE:
            problems.append(f"{mid}: clean accuracy {r.f:.2f} vs tracked {r.t:.2f} (> {CLEAN_ACCURACY_TOLERANCE} points)")
    fc = read_table(fresh / "claims.csv").set_index("case")
    for r in read_table(tracked / "claims.csv").itertuples():
        if r.case not in fc.index:
            problems.append(f"{r.case}: missing from the fresh run")
            continue
        f = fc.loc[r.case]
        if not bool(f["in_band"]):
            problems.append(f"{r.case}: fresh effect {f['effect']:.4g} outside the band [{r.band_low:.4g}, {r.band_high:.4g}]")
        if f["verdict"] != r.verdict:
            problems.append(f"{r.case}: fresh verdict {f['verdict']} vs tracked {r.verdict}")
    return problems
