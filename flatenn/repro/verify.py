"""Checks of recorded results: re-derive every derivable table, record reference values, compare runs.

* :func:`verify_scale` re-derives ``claims.csv`` (effects, CIs, p-values, verdicts), ``claims_detail.csv``
  and ``campaign_summary.csv`` from the raw tables, checks completeness (every model x fault model x
  rate x trial once), that every measured row's fingerprint is its model's in ``training.csv``, the
  recorded verdicts of ``flatenn/repro/bands/<scale>.json``, and the table checksums in ``provenance.json``.
* :func:`compatibility` is what a benchmark case asserts against the recorded reference.
* :func:`compare_runs` compares a fresh run folder with a tracked one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..core.results import (
    SUMMARY_COLUMNS,
    SUMMARY_KEY,
    ResultsTableError,
    read_result,
    read_table,
    table_checksums,
    text_or_empty,
)
from .claims import BANDS_DIR, CLAIM_COLUMNS, CLAIMS, DETAIL_COLUMNS, cases_in_scope, evaluate_all
from .experiment import campaign_summary, git_state
from .folder import MEASURED_TABLES
from .scales import SCALES

MIN_TRIALS = 50
SHIPPED_TOLERANCE = 0.05  # shipped models: |fresh - recorded| <= 5% of the recorded CI half-width (float noise)
FAMILYWISE_ALPHA = 0.05  # retrained: compatibility test per case at level 0.05 / number of cases (Bonferroni)
NUMERIC_RTOL = 1e-4  # %.6g in the CSVs


def _halfwidth(lo: float, hi: float) -> float:
    return (hi - lo) / 2 if not (np.isnan(lo) or np.isnan(hi)) else float("nan")


def compatibility(ref: dict, row, retrained: bool, n_cases: int) -> list[str]:
    """Problems of a fresh claims row against the recorded reference (empty: compatible).

    Shipped models re-measure the recorded models, so effects must agree to float noise
    (``SHIPPED_TOLERANCE`` of the CI half-width) and verdicts exactly. Retrained models are a new
    replicate: the difference of the two effects must be within a t bound on sqrt(se_ref² + se_new²)
    at level 0.05 / n_cases, and decisive direction verdicts must not conflict.
    """
    if "effect" not in ref:
        return []
    problems = []
    e_ref, e_new = float(ref["effect"]), float(row.effect)
    h_ref, h_new = _halfwidth(ref["ci_low"], ref["ci_high"]), _halfwidth(row.ci_low, row.ci_high)
    diff = abs(e_new - e_ref)
    if "n" in ref and int(ref["n"]) != int(row.n):
        problems.append(f"n is {int(row.n)}, recorded {int(ref['n'])} (a different design: seeds or models)")
    if not retrained:
        if "window_stable" in ref and text_or_empty(ref["window_stable"]) != text_or_empty(
            getattr(row, "window_stable", "")
        ):
            problems.append(f"window_stable is {row.window_stable}, recorded {ref['window_stable']}")
        tol = max(SHIPPED_TOLERANCE * (h_ref if not np.isnan(h_ref) else 0.0), NUMERIC_RTOL * max(1.0, abs(e_ref)))
        if diff > tol:
            problems.append(f"differs from the recorded {e_ref:.4g} by {diff:.3g} (> {tol:.3g}; shipped models)")
        if row.verdict != ref.get("expected_verdict", row.verdict):
            problems.append(f"verdict {row.verdict}, recorded {ref['expected_verdict']}")
        if ref.get("expected_magnitude") and row.magnitude != ref["expected_magnitude"]:
            problems.append(f"magnitude {row.magnitude}, recorded {ref['expected_magnitude']}")
        return problems
    n = max(int(ref.get("n", row.n)), 2)
    df = 2 * (n - 1)
    se = [h / stats.t.ppf(0.975, n - 1) for h in (h_ref, h_new)]
    if not any(np.isnan(se)):
        crit = stats.t.ppf(1 - FAMILYWISE_ALPHA / (2 * n_cases), df) * float(np.hypot(*se))
        if diff > crit:
            problems.append(
                f"differs from the recorded {e_ref:.4g} by {diff:.3g} (> {crit:.3g}: two replicates "
                f"disagree at familywise level {FAMILYWISE_ALPHA})"
            )
    pair = {row.verdict, ref.get("expected_verdict", "")}
    if pair == {"supported", "contradicted"}:
        problems.append(f"decisive verdicts conflict: {row.verdict} here, {ref['expected_verdict']} recorded")
    return problems


# ---- verify a recorded folder -----------------------------------------------------------------


def _close(a, b) -> bool:
    a, b = float(a), float(b)
    return (np.isnan(a) and np.isnan(b)) or bool(np.isclose(a, b, rtol=NUMERIC_RTOL, atol=1e-6))


def compare_frames(name: str, tracked: pd.DataFrame, fresh: pd.DataFrame, key: list[str]) -> list[str]:
    """Every row and column of a tracked derived table equals its re-derivation."""
    problems = []
    t, f = tracked.set_index(key), fresh.set_index(key)
    missing, extra = f.index.difference(t.index), t.index.difference(f.index)
    if len(missing):
        problems.append(f"{name}: {len(missing)} row(s) missing, e.g. {list(missing[:2])}")
    if len(extra):
        problems.append(f"{name}: {len(extra)} row(s) that the tables do not give, e.g. {list(extra[:2])}")
    common = t.index.intersection(f.index)
    for col in f.columns:
        if col not in t.columns:
            problems.append(f"{name}: column {col} is missing")
            continue
        for k in common:
            a, b = t.at[k, col], f.at[k, col]
            same = (
                _close(a, b)
                if isinstance(b, (int, float, np.number)) and not isinstance(b, bool)
                else text_or_empty(a) == text_or_empty(b)
            )
            if not same:
                problems.append(f"{name}: {k} {col} is {a!r} but the tables give {b!r}")
                break
    return problems


def _guarded(problems: list[str], what: str, check, *args) -> None:
    """Run one check; a damaged table it trips over is one problem line, and the other checks still run."""
    try:
        problems += check(*args)
    except ResultsTableError as e:
        problems.append(str(e))
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        problems.append(f"{what}: cannot be checked ({type(e).__name__}: {e})")


def _read_all(d: Path, problems: list[str]) -> dict[str, pd.DataFrame]:
    """Every raw table; a damaged one is reported and read as empty, so the rest is still checked."""
    from ..core.results import RESULT_TABLES

    tables = {}
    for t in RESULT_TABLES:
        try:
            tables[t] = read_result(d, t)
        except ResultsTableError as e:
            problems.append(str(e))
            tables[t] = pd.DataFrame()
    return tables


def verify_scale(d: Path, remeasure: int | str = 0, notes: list[str] | None = None) -> list[str]:
    """Problems with one tracked ``results/<scale>`` folder (empty list: all good); every check runs.

    ``remeasure``: also re-measure the sharpness, landscape and sparsity rows of that many models (``"all"``:
    every measured model; a seeded choice otherwise) from the shipped models, where the data set is here;
    what could not be re-measured is said in ``notes``.
    """
    from .integrity import check_campaign_counts, check_measured, check_provenance, check_training

    name = d.name
    if name not in SCALES:
        return [f"{d}: unknown scale folder"]
    scale = SCALES[name]
    problems: list[str] = []
    try:
        prov = json.loads((d / "provenance.json").read_text())
        if not isinstance(prov, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        problems.append(f"provenance.json is missing or unreadable ({e})")
        prov = {}
    recorded_sums = prov.get("tables_sha256", {})
    for f, digest in table_checksums(d).items():
        if recorded_sums.get(f) != digest:
            problems.append(f"{f} does not match its checksum in provenance.json (edited after the run?)")
    for f in recorded_sums:
        if not (d / f).is_file():
            problems.append(f"{f} is listed in provenance.json but missing")
    n_before = len(problems)
    tables = _read_all(d, problems)
    if len(problems) > n_before and not len(tables["training"]) and (d / "training.csv").is_file():
        problems.append(
            "training.csv is damaged: the checks that link rows and models to it are skipped until it is restored"
        )
        _guarded(problems, "claims.csv", _check_claims, d, name, tables, scale)
        return [p if p.startswith(name) else f"{name}: {p}" for p in problems]
    training = tables["training"]
    from .plan import planned_units

    try:  # plan v2: the looks replayed from the rows; units of the look in progress may be present, not required
        units, required = planned_units(scale, tables, "next"), planned_units(scale, tables, "complete")
    except (KeyError, ValueError, TypeError, IndexError, LookupError) as e:
        problems.append(f"the scale's plan cannot be replayed from the tables ({type(e).__name__}: {e})")
        units = required = None
    _guarded(problems, "provenance.json", check_provenance, prov, scale, training)
    _guarded(problems, "training.csv", check_training, d, scale, training, units, required)
    _guarded(problems, "fingerprints", _fingerprints, tables)
    runs = {r.get("run_id") for r in prov.get("runs", [])}
    for t, tab in tables.items():
        if len(tab) and "run_id" in tab.columns and not set(tab["run_id"].astype(str)) <= runs:
            problems.append(f"{t}.csv names runs that provenance.json does not list")
    camp = tables["campaign"]
    if len(camp):
        _guarded(problems, "campaign.csv", _campaign_completeness, name, camp, scale)
        _guarded(problems, "campaign.csv", check_campaign_counts, d, scale, camp, training)
        _guarded(
            problems,
            "campaign_summary.csv",
            lambda: compare_frames(
                "campaign_summary.csv",
                read_result(d, "campaign_summary")[SUMMARY_COLUMNS],
                campaign_summary(camp),
                SUMMARY_KEY,
            ),
        )
    _guarded(problems, "measurements", check_measured, scale, tables, required)
    _guarded(problems, "claims.csv", _check_claims, d, name, tables, scale)
    if remeasure:
        _guarded(
            problems, "re-measurement", _remeasure, d, scale, tables, remeasure, notes if notes is not None else []
        )
    return [p if p.startswith(name) else f"{name}: {p}" for p in problems]


def _remeasure(d: Path, scale, tables: dict[str, pd.DataFrame], how: int | str, notes: list[str]) -> list[str]:
    from ..core.data import DatasetNotFoundError
    from .integrity import remeasure

    measured = sorted(set().union(*(set(tables[t]["model_id"]) for t in ("sharpness", "sparsity") if len(tables[t]))))
    if how != "all":
        rng = np.random.default_rng(20261205)
        measured = (
            sorted(rng.choice(measured, size=min(int(how), len(measured)), replace=False).tolist()) if measured else []
        )
    if not measured:
        return []
    try:
        problems = remeasure(d, scale, tables, measured)
    except DatasetNotFoundError:
        notes.append(f"{d.name}: not re-measured: its data set ({scale.dataset}) is not on this machine")
        return []
    notes.append(
        f"{d.name}: re-measured sharpness, landscape and sparsity of {len(measured)} model(s): "
        f"{', '.join(measured[:6])}{' …' if len(measured) > 6 else ''}"
    )
    return problems


def _fingerprints(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Every measured row's fingerprint is its model's in training.csv."""
    training = tables["training"]
    fps = training.set_index("model_id")["fingerprint"] if len(training) else pd.Series(dtype=str)
    problems = []
    for t in MEASURED_TABLES:
        tab = tables[t]
        if not len(tab):
            continue
        wrong = tab[tab["model_id"].map(fps) != tab["fingerprint"]]
        if len(wrong):
            problems.append(
                f"{len(wrong)} {t} row(s) measured on a model other than training.csv's, "
                f"e.g. {wrong['model_id'].iloc[0]}"
            )
    return problems


def _check_claims(d: Path, name: str, tables: dict[str, pd.DataFrame], scale) -> list[str]:
    """claims.csv and claims_detail.csv re-derived from the raw tables; verdicts against the recorded bands."""
    problems: list[str] = []
    tracked = {}
    for f in ("claims.csv", "claims_detail.csv"):  # read first: a damaged file is named even if the tables are too
        if (d / f).is_file() or f == "claims.csv":
            try:
                tracked[f] = read_table(d / f)
            except ResultsTableError as e:
                problems.append(str(e))
    if not tracked:
        return problems
    try:
        claims, detail = evaluate_all(tables, scale)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        return problems + [
            f"claims.csv: cannot be re-derived from the tables ({type(e).__name__}: {e}); see the "
            "problems with the tables above"
        ]
    if "claims.csv" in tracked:
        problems += compare_frames("claims.csv", tracked["claims.csv"][CLAIM_COLUMNS], claims, ["case"])
    if "claims_detail.csv" in tracked:
        problems += compare_frames(
            "claims_detail.csv",
            tracked["claims_detail.csv"][DETAIL_COLUMNS],
            detail,
            ["claim", "metric", "fault_model", "rate"],
        )
    problems += _check_verdicts(d, tables, scale)
    ref = load_reference(name)
    for r in claims.itertuples():
        exp = ref.get(r.case, {}).get("expected_verdict")
        if exp and exp != r.verdict:
            problems.append(f"{r.case} verdict {r.verdict} but {exp} recorded in flatenn/repro/bands/{name}.json")
    return problems


def _check_verdicts(d: Path, tables: dict[str, pd.DataFrame], scale) -> list[str]:
    """Plan v2 scales: verdicts.csv and sequential.csv re-derived from the raw tables (the looks replayed)."""
    from .decide import SEQUENTIAL_COLUMNS, VERDICT_COLUMNS, evaluate_v2
    from .plan import is_sequential

    if not is_sequential(scale):
        return []
    problems = []
    try:
        tracked = {f: read_table(d / f) for f in ("verdicts.csv", "sequential.csv")}
    except (ResultsTableError, OSError) as e:
        return [f"plan v2 tables: {e}"]
    try:
        verdicts, seq = evaluate_v2(tables, scale)
    except (KeyError, ValueError, TypeError, IndexError, LookupError) as e:
        return [f"verdicts.csv: cannot be re-derived from the tables ({type(e).__name__}: {e})"]
    problems += compare_frames("verdicts.csv", tracked["verdicts.csv"][VERDICT_COLUMNS], verdicts, ["case"])
    problems += compare_frames("sequential.csv", tracked["sequential.csv"][SEQUENTIAL_COLUMNS], seq, ["look", "case"])
    return problems


def _campaign_completeness(name: str, camp: pd.DataFrame, scale) -> list[str]:
    """Every (model, fault model, rate) of the scale's design has trials 0..T-1 exactly once."""
    problems = []
    main = camp[camp["layers"] == "all"]  # whole-network rows of every protection (sign-bit: bits 0..b-2)
    dup = main.duplicated(["model_id", "fault_model", "rate", "trial"])
    if dup.any():
        problems.append(f"{int(dup.sum())} duplicated campaign rows")
    unknown = ~np.isin(main["rate"].round(12), np.round(scale.rates, 12))
    if unknown.any():
        problems.append(f"{int(unknown.sum())} campaign rows at rates the scale does not define")
    for (mid, fm), g in main.groupby(["model_id", "fault_model"]):
        for r in scale.rates:
            trials = set(g.loc[np.isclose(g["rate"], r), "trial"])
            if trials != set(range(scale.trials)):
                problems.append(f"campaign {mid} {fm} rate {r:g}: trials {len(trials)} of {scale.trials}")
                break
    for col, lo, hi in (("accuracy", 0, 100), ("clean_accuracy", 0, 100), ("loss", 0, np.inf)):
        bad = ~main[col].between(lo, hi)
        if bad.any():
            problems.append(f"{int(bad.sum())} campaign rows with {col} outside [{lo}, {hi}]")
    if main["train_seed"].nunique() < len(scale.seeds):
        problems.append(f"campaigns cover {main['train_seed'].nunique()} training seeds of {len(scale.seeds)}")
    if main["trial"].nunique() < MIN_TRIALS and scale.trials >= MIN_TRIALS:
        problems.append(f"fewer than {MIN_TRIALS} trials per point")
    return problems


def compare_units(
    fresh: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame], scale, units, retrained: bool, n_cases: int
) -> list[str]:
    """Re-measured rows of ``units`` against the reference's rows of the same units (a plan-v2 reproduction).

    Shipped models: every campaign row (accuracy, loss, faulty bits, changed weights), sharpness value and
    sparsity count equals the reference's to float noise. Retrained models are new replicates: per claim
    whose models these are, the re-measured per-seed paired effects must be compatible with the reference's
    at the same seeds (Welch t test at level 0.05 / ``n_cases``); rows are not compared one by one.
    """
    problems: list[str] = []
    mids = {scale.model_id(u.variant, u.seed) for u in units}
    for u in units:
        mid = scale.model_id(u.variant, u.seed)
        if u.kind == "campaigns" and not retrained:
            key = ["fault_model", "bits", "layers", "protection", "rate", "trial"]
            f, r = (
                t[(t["model_id"] == mid) & (t["fault_model"] == u.fault_model)].set_index(key)
                for t in (fresh["campaign"], reference["campaign"])
            )
            if len(f) != len(r) or not f.index.sort_values().equals(r.index.sort_values()):
                problems.append(f"campaign {mid} {u.fault_model}: {len(f)} rows re-measured, {len(r)} recorded")
                continue
            r = r.loc[f.index]
            for col in ("faulty_bits", "changed_weights"):
                if not (f[col].to_numpy() == r[col].to_numpy()).all():
                    problems.append(f"campaign {mid} {u.fault_model}: {col} differs from the recorded rows")
            for col in ("accuracy", "loss"):
                if not np.allclose(f[col], r[col], rtol=NUMERIC_RTOL, atol=1e-6):
                    worst = float(np.max(np.abs(f[col].to_numpy() - r[col].to_numpy())))
                    problems.append(f"campaign {mid} {u.fault_model}: {col} differs by up to {worst:.3g}")
        elif u.kind == "sharpness" and not retrained:
            f, r = (
                t[t["model_id"] == mid].set_index("metric")["value"]
                for t in (fresh["sharpness"], reference["sharpness"])
            )
            common = f.index.intersection(r.index)
            if len(common) < len(r) or not np.allclose(f[common], r[common], rtol=1e-4, atol=1e-7):
                problems.append(f"sharpness {mid}: values differ from the recorded ones")
        elif u.kind == "sparsity" and not retrained:
            f, r = (
                t[t["model_id"] == mid].set_index("layer")["zeros"] for t in (fresh["sparsity"], reference["sparsity"])
            )
            if not f.sort_index().equals(r.sort_index()):
                problems.append(f"sparsity {mid}: zeros differ from the recorded ones")
    if retrained:
        from .claims import CLAIMS, Case, seed_effects

        seeds = sorted({u.seed for u in units})
        for cid, c in CLAIMS.items():
            if (
                c.estimator != "paired_contrast"
                or not set(scale.model_id(v, s) for v in c.variants for s in seeds) <= mids
            ):
                continue
            metric = c.metrics[0][0]
            sub = dataclasses.replace(scale, seeds=tuple(seeds))
            a = seed_effects(Case(cid, metric, 1, ""), fresh, sub).to_numpy()
            b = seed_effects(Case(cid, metric, 1, ""), reference, sub).to_numpy()
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if len(a) > 1 and len(b) > 1 else 1.0
            if p < FAMILYWISE_ALPHA / n_cases:
                problems.append(
                    f"{cid}[{metric}]: retrained per-seed effects {a.mean():.3g} vs recorded {b.mean():.3g} at seeds "
                    f"{seeds} (Welch p {p:.2g} < {FAMILYWISE_ALPHA / n_cases:.2g})"
                )
    return problems


def verify_all(root: Path, remeasure: int | str = 0, notes: list[str] | None = None) -> list[str]:
    """Verify every ``results/<scale>`` folder that has a claims.csv (a damaged table is a problem, not a crash)."""
    dirs = sorted(p for p in Path(root).iterdir() if p.is_dir() and (p / "claims.csv").is_file())
    if not dirs:
        return [f"{root}: no results/<scale>/claims.csv to verify"]
    out = []
    for d in dirs:
        try:
            out += verify_scale(d, remeasure, notes)
        except (ResultsTableError, KeyError, ValueError) as e:
            out.append(f"{d.name}: {e}")
    from .ablation import verify_ablation

    return out + verify_ablation(Path(root))


# ---- reference values ---------------------------------------------------------------------------


def load_reference(scale: str) -> dict[str, dict]:
    path = BANDS_DIR / f"{scale}.json"
    return json.loads(path.read_text())["bands"] if path.is_file() else {}


def record_bands(d: Path, scale: str) -> Path:
    """Write ``flatenn/repro/bands/<scale>.json``: per case the recorded effect, CI, n and both verdicts."""
    if scale.startswith("paper"):
        raise ValueError(
            "paper-scale expectations come from the paper's numbers (flatenn/repro/claims.py), not from runs"
        )
    claims = read_table(d / "claims.csv")
    bands = {}
    for r in claims.itertuples():
        mag = r.magnitude if isinstance(r.magnitude, str) else ""
        paper = f"; published {r.paper_values}" if isinstance(r.paper_values, str) and r.paper_values else ""
        bands[r.case] = {
            "effect": float(r.effect),
            "ci_low": float(r.ci_low),
            "ci_high": float(r.ci_high),
            "n": int(r.n),
            "expected_verdict": r.verdict,
            "expected_magnitude": mag,
            "recorded": f"effect {r.effect:.4g} {r.unit}, 95% CI [{r.ci_low:.4g}, {r.ci_high:.4g}], "
            f"{r.verdict}" + (f", {mag}" if mag else "") + paper,
        }
    BANDS_DIR.mkdir(exist_ok=True)
    path = BANDS_DIR / f"{scale}.json"
    prov = json.loads((d / "provenance.json").read_text())
    doc = {
        "scale": scale,
        "source": f"results/{scale}/claims.csv, runs {[r['run_id'] for r in prov['runs']]}",
        "claims_sha256": hashlib.sha256((d / "claims.csv").read_bytes()).hexdigest(),
        "rule": "reference = the recorded effect, CI and verdicts; a reproduction from the shipped models must "
        "match them to float tolerance, a retrained one must be statistically compatible",
        "recorded_by": git_state()["commit"],
        "bands": bands,
    }
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


# ---- compare a fresh run with the tracked one ---------------------------------------------------


def compare_runs(tracked: Path, fresh: Path, retrained: bool = False, only_fresh: bool = False) -> list[str]:
    """Differences between a fresh run folder and the tracked one beyond the stated tolerances.

    ``only_fresh``: compare just the cases the fresh run computed (a ``-k`` run), not report the rest missing.
    """
    problems = []
    ref = {
        r.case: {
            "effect": r.effect,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "n": r.n,
            "expected_verdict": r.verdict,
            "window_stable": r.window_stable,
            "expected_magnitude": r.magnitude if isinstance(r.magnitude, str) else "",
        }
        for r in read_table(tracked / "claims.csv").itertuples()
    }
    named = {c.split("[")[0] for c in ref}
    n_cases = len(
        cases_in_scope(
            tuple(named) if any(CLAIMS[c].opt_in for c in named if c in CLAIMS) else None, SCALES.get(tracked.name)
        )
    )
    fc = read_table(fresh / "claims.csv").set_index("case")
    for case, rv in ref.items():
        if case not in fc.index:
            if not only_fresh:
                problems.append(f"{case}: missing from the fresh run")
            continue
        row = fc.loc[case]
        row = row.copy()
        row["magnitude"] = row["magnitude"] if isinstance(row["magnitude"], str) else ""
        problems += [f"{case}: {p}" for p in compatibility(rv, row, retrained, n_cases)]
    if (fresh / "verdicts.csv").is_file() and (tracked / "verdicts.csv").is_file():  # plan v2, --all-seeds
        tv, fv = (read_table(d / "verdicts.csv").set_index("case") for d in (tracked, fresh))
        for case in tv.index:
            if case not in fv.index:
                if not only_fresh:
                    problems.append(f"v2 {case}: missing from the fresh run")
                continue
            t, f = tv.loc[case], fv.loc[case]
            want = (
                {} if np.isnan(t["effect"]) else {"effect": t["effect"], "ci_low": t["ci_low"], "ci_high": t["ci_high"]}
            )
            if want and not retrained:
                want.update(n=t["n"], expected_verdict=t["verdict"])
            problems += [f"v2 {case}: {p}" for p in compatibility(want, f, retrained, len(tv))]
    return problems


def summary_lines(fresh: Path, tracked: Path | None, retrained: bool) -> list[str]:
    """The measured claims table of a run, side by side with the tracked one, for the console."""
    claims = read_table(fresh / "claims.csv")
    ref = (
        read_table(tracked / "claims.csv").set_index("case")
        if tracked and (tracked / "claims.csv").is_file() and tracked.resolve() != fresh.resolve()
        else None
    )
    lines = [f"results: {fresh} (figures in {fresh / 'figures'}, all tables: {fresh.parent / 'README.md'})"]
    head = f"{'case':44s} {'effect [95% CI]':>28s}  {'verdict':13s} {'magnitude':18s}"
    lines += [head + ("  tracked" if ref is not None else ""), "-" * len(head)]
    for r in claims.itertuples():
        mag = r.magnitude if isinstance(r.magnitude, str) else ""
        line = f"{r.case:44s} {f'{r.effect:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]':>28s}  {r.verdict:13s} {mag:18s}"
        if ref is not None and r.case in ref.index:
            t = ref.loc[r.case]
            line += f"  {t['effect']:.3g} {t['verdict']}"
        lines.append(line)
    if ref is not None:
        diffs = compare_runs(tracked, fresh, retrained, only_fresh=True)
        kind = "retrained: statistical" if retrained else "shipped models: exact to float tolerance"
        lines.append(
            f"comparison with {tracked} ({kind}): "
            + ("all cases agree" if not diffs else f"{len(diffs)} difference(s)")
        )
        lines += [f"  {p}" for p in diffs]
    return lines
