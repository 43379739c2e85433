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
import zlib
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
from .claims import (
    BANDS_DIR,
    CLAIM_COLUMNS,
    CLAIMS,
    DETAIL_COLUMNS,
    Case,
    cases_in_scope,
    evaluate_all,
)
from .experiment import campaign_summary, git_state
from .folder import MEASURED_TABLES
from .scales import SCALES
from .tolerances import ACCURACY_FLIPS, RTOL, accuracy_agrees, metric_rtol

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout whose history the run records name
MIN_TRIALS = 50
SHIPPED_TOLERANCE = 0.05  # shipped models: |fresh - recorded| <= 5% of the recorded CI half-width (float noise)
FAMILYWISE_ALPHA = 0.05  # retrained: compatibility test per case at level 0.05 / number of cases (Bonferroni)
NUMERIC_RTOL = RTOL  # %.6g in the CSVs; another CPU's float kernels


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


def _same_cell(tracked, fresh) -> bool:
    """One cell of a mixed column: numbers to ``NUMERIC_RTOL`` (a number read back from text is still one), the
    rest as text."""
    if isinstance(fresh, (int, float, np.number)) and not isinstance(fresh, (bool, np.bool_)):
        try:
            return _close(tracked, fresh)
        except (TypeError, ValueError):
            return False
    return text_or_empty(tracked) == text_or_empty(fresh)


def compare_frames(name: str, tracked: pd.DataFrame, fresh: pd.DataFrame, key: list[str]) -> list[str]:
    """Every row and column of a tracked derived table equals its re-derivation (numbers to ``NUMERIC_RTOL``,
    text exactly); per column the first differing row is named."""
    problems = []
    t, f = tracked.set_index(key), fresh.set_index(key)
    missing, extra = f.index.difference(t.index), t.index.difference(f.index)
    if len(missing):
        problems.append(f"{name}: {len(missing)} row(s) missing, e.g. {list(missing[:2])}")
    if len(extra):
        problems.append(f"{name}: {len(extra)} row(s) that the tables do not give, e.g. {list(extra[:2])}")
    common = f.index[f.index.isin(t.index)]
    if t.index.has_duplicates or f.index.has_duplicates:
        dup = t.index[t.index.duplicated()] if t.index.has_duplicates else f.index[f.index.duplicated()]
        return problems + [f"{name}: the key {key} = {dup[0]} appears more than once"]
    tc, fc = t.loc[common], f.loc[common]
    for col in f.columns:
        if col not in t.columns:
            problems.append(f"{name}: column {col} is missing")
            continue
        a, b = tc[col], fc[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            conv = pd.to_numeric(a, errors="coerce")
            av, bv = conv.to_numpy(float), b.to_numpy(float)
            same = (np.isnan(av) & np.isnan(bv)) | np.isclose(av, bv, rtol=NUMERIC_RTOL, atol=1e-6)
            same &= ~(conv.isna() & a.notna()).to_numpy()  # a text where a number belongs differs
        else:
            same = np.array([_same_cell(x, y) for x, y in zip(a, b, strict=True)], dtype=bool)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(f"{name}: {common[i]} {col} is {a.iloc[i]!r} but the tables give {b.iloc[i]!r}")
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


def verify_scale(
    d: Path,
    remeasure: int | str = 0,
    notes: list[str] | None = None,
    measured_tables: bool = False,
    sample_seed: int = 20261205,
) -> list[str]:
    """Problems with one tracked ``results/<scale>`` folder (empty list: all good); every check runs.

    ``remeasure``: also re-measure every sharpness, landscape and sparsity row of that many models (``"all"``:
    every measured model; otherwise drawn with ``sample_seed``) from the shipped models; ``measured_tables``:
    also re-measure every landscape and sparsity row of every model (cheap: forward passes). Both where the data
    set is here; what could not be re-measured, and which models were drawn, is said in ``notes``.
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
    _guarded(problems, "provenance.json", _run_commits, name, prov, notes if notes is not None else [])
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
    if remeasure or measured_tables:
        _guarded(
            problems,
            "re-measurement",
            _remeasure,
            d,
            scale,
            tables,
            remeasure,
            measured_tables,
            sample_seed,
            notes if notes is not None else [],
        )
    return [p if p.startswith(name) else f"{name}: {p}" for p in problems]


def _run_commits(name: str, prov: dict, notes: list[str]) -> list[str]:
    from .integrity import run_commit_notes

    problems, found = run_commit_notes(prov, REPO_ROOT)
    notes += [f"{name}: {n}" for n in found]
    return problems


def _remeasure(
    d: Path, scale, tables: dict[str, pd.DataFrame], how: int | str, every: bool, sample_seed: int, notes: list[str]
) -> list[str]:
    from ..core.data import DatasetNotFoundError
    from .integrity import ALL_PARTS, remeasure

    have = {t: set(tables[t]["model_id"]) if len(tables[t]) else set() for t in ("sharpness", "landscape", "sparsity")}
    measured = sorted(have["sharpness"] | have["sparsity"])
    if how != "all":
        rng = np.random.default_rng([int(sample_seed), zlib.crc32(d.name.encode())])
        measured = (
            sorted(rng.choice(measured, size=min(int(how), len(measured)), replace=False).tolist()) if measured else []
        )
    todo: dict[str, tuple[str, ...]] = dict.fromkeys(measured, ALL_PARTS)
    if every:
        for mid in sorted(have["landscape"] | have["sparsity"]):
            todo.setdefault(mid, ("landscape", "sparsity"))
    if not todo:
        return []
    try:
        problems = remeasure(d, scale, tables, todo)
    except DatasetNotFoundError:
        notes.append(f"{d.name}: not re-measured: its data set ({scale.dataset}) is not on this machine")
        return []
    if every and (have["landscape"] or have["sparsity"]):
        notes.append(
            f"{d.name}: re-measured every landscape and sparsity row ({len(have['landscape'])} and "
            f"{len(have['sparsity'])} models)"
        )
    if measured:
        drawn = "every model" if how == "all" else f"drawn with --remeasure-seed {sample_seed}"
        notes.append(
            f"{d.name}: re-measured every sharpness, landscape and sparsity row of {len(measured)} model(s), "
            f"{drawn}: {', '.join(measured[:6])}{' …' if len(measured) > 6 else ''}"
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
    return problems + _check_v3(d, tables, scale, verdicts)


def _check_v3(d: Path, tables: dict[str, pd.DataFrame], scale, v2: pd.DataFrame) -> list[str]:
    """Plan v3 tables (verdicts_v3.csv, per_rate_v3.csv, claim2_v3.csv) re-derived from the raw tables."""
    from .decide_v3 import v3_tables

    try:
        derived = v3_tables(tables, scale, v2)
    except (KeyError, ValueError, TypeError, IndexError, LookupError) as e:
        return [f"plan v3 tables: cannot be re-derived from the tables ({type(e).__name__}: {e})"]
    problems = []
    for name, (rows, columns, key) in derived.items():
        path = d / f"{name}.csv"
        if not path.is_file():
            problems.append(f"{name}.csv: missing (plan v3; `python -m flatenn record --scale {scale.name}` writes it)")
            continue
        try:
            tracked = read_table(path)
        except (ResultsTableError, OSError) as e:
            problems.append(f"{name}.csv: {e}")
            continue
        missing = [c for c in columns if c not in tracked.columns]
        if missing:
            problems.append(f"{name}.csv: lacks columns {missing}")
            continue
        problems += compare_frames(f"{name}.csv", tracked[columns], rows[columns], key)
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
            if not np.allclose(f["loss"], r["loss"], rtol=NUMERIC_RTOL, atol=1e-6):
                worst = float(np.max(np.abs(f["loss"].to_numpy() - r["loss"].to_numpy())))
                problems.append(f"campaign {mid} {u.fault_model}: loss differs by up to {worst:.3g}")
            ok = accuracy_agrees(f["accuracy"].to_numpy(), r["accuracy"].to_numpy(), r["n_eval"].to_numpy())
            if not ok.all():
                worst = float(np.max(np.abs(f["accuracy"].to_numpy() - r["accuracy"].to_numpy())))
                problems.append(
                    f"campaign {mid} {u.fault_model}: accuracy of {int((~ok).sum())} trial(s) differs by up to "
                    f"{worst:.3g} points (more than {ACCURACY_FLIPS} evaluation example)"
                )
        elif u.kind == "sharpness" and not retrained:
            f, r = (
                t[t["model_id"] == mid].set_index("metric")["value"]
                for t in (fresh["sharpness"], reference["sharpness"])
            )
            common = f.index.intersection(r.index)
            tol = np.array([metric_rtol(m) for m in common])
            close = np.abs(f[common].to_numpy() - r[common].to_numpy()) <= tol * np.abs(r[common].to_numpy()) + 1e-7
            if len(common) < len(r) or not close.all():
                bad = [m for m, c in zip(common, close, strict=True) if not c] or ["a metric missing"]
                problems.append(f"sharpness {mid}: {', '.join(bad)} differ(s) from the recorded value")
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


def verify_all(
    root: Path,
    remeasure: int | str = 0,
    notes: list[str] | None = None,
    measured_tables: bool = False,
    sample_seed: int = 20261205,
) -> list[str]:
    """Verify every ``results/<scale>`` folder that has a claims.csv (a damaged table is a problem, not a crash);
    the re-measurement options are :func:`verify_scale`'s."""
    dirs = sorted(p for p in Path(root).iterdir() if p.is_dir() and (p / "claims.csv").is_file())
    if not dirs:
        return [f"{root}: no results/<scale>/claims.csv to verify"]
    out = []
    for d in dirs:
        try:
            out += verify_scale(d, remeasure, notes, measured_tables, sample_seed)
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


P_TOLERANCE = 1e-3  # shipped models: p-values agree to this (absolute and relative): float noise, not a design change
VERDICT_TEXT = (  # the verdict itself: compatibility
    "verdict_unadjusted",
    "magnitude",
    "verdict_all_rates",
    "verdict_window_down",
    "verdict_window_up",
    "window_stable",
    "family_complete",
    "unit",
    "paper_values",
)


def _rows_both_ways(what: str, tracked: pd.Index, fresh: pd.Index, only_fresh: bool) -> list[str]:
    problems = [f"{what} {c}: missing from the fresh run" for c in tracked.difference(fresh) if not only_fresh]
    return problems + [f"{what} {c}: a row the tracked run does not have" for c in fresh.difference(tracked)]


FAMILY_COLUMNS = (  # adjusted over the family of cases: a run that computed only some cases (-k) differs here
    "p_holm",
    "p_equivalence_holm",
    "verdict",
    "verdict_all_rates",
    "verdict_window_down",
    "verdict_window_up",
    "window_stable",
    "family_complete",
)


def _claims_numbers(t: pd.Series, f: pd.Series, partial: bool) -> list[str]:
    """Shipped models: every number and verdict of a claims row beyond the effect (which compatibility checks);
    ``partial``: a run that computed part of the family, whose adjusted columns are left out."""
    problems = []
    skip = FAMILY_COLUMNS if partial else ()
    for col in (c for c in ("p_value", "p_holm", "p_equivalence", "p_equivalence_holm") if c not in skip):
        a, b = float(t[col]), float(f[col])
        if not ((np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=P_TOLERANCE, atol=P_TOLERANCE)):
            problems.append(f"{col} is {b:.4g}, recorded {a:.4g}")
    for col in ("direction", "sesoi"):
        a, b = float(t[col]), float(f[col])
        if not ((np.isnan(a) and np.isnan(b)) or a == b):
            problems.append(f"{col} is {b:g}, recorded {a:g}")
    for col in (c for c in VERDICT_TEXT if c not in skip):
        if text_or_empty(t[col]) != text_or_empty(f[col]):
            problems.append(f"{col} is {text_or_empty(f[col])!r}, recorded {text_or_empty(t[col])!r}")
    return problems


def _expects_all_seeds(tracked: Path, fresh: Path) -> bool:
    """Whether the fresh run re-measured every training seed the tracked run recorded (then it derives the plan-v2
    tables too)."""
    t, f = read_result(tracked, "campaign"), read_result(fresh, "campaign")
    return bool(len(t) and len(f)) and set(t["train_seed"]) <= set(f["train_seed"])


def compare_runs(tracked: Path, fresh: Path, retrained: bool = False, only_fresh: bool = False) -> list[str]:
    """Differences between a fresh run folder and the tracked one beyond the stated tolerances.

    Every case of claims.csv both ways (a missing or an extra row is a difference). Shipped models: the effect
    and CI to float tolerance (:func:`compatibility`), every p-value to ``P_TOLERANCE``, every verdict and label
    exactly, and claims_detail.csv row by row. Retrained models: the effects statistically, decisive verdicts
    must not conflict. Both: a magnitude label only where the claim compares a published number; the plan-v2
    tables (verdicts.csv, sequential.csv) when the fresh run re-measured every recorded seed, a missing one
    being a difference. ``only_fresh``: compare just the cases the fresh run computed (a ``-k`` run).
    """
    problems = []
    for f in ("claims.csv", "claims_detail.csv"):
        if (tracked / f).is_file() and not (fresh / f).is_file():
            problems.append(f"{f}: missing from the fresh run {fresh}")
    if not (fresh / "claims.csv").is_file():
        return problems
    tc = read_table(tracked / "claims.csv").set_index("case")
    fc = read_table(fresh / "claims.csv").set_index("case")
    if not len(fc):
        return problems + [f"claims.csv of {fresh} has no case: nothing was compared (an interrupted run?)"]
    problems += _rows_both_ways("claims.csv case", tc.index, fc.index, only_fresh)
    named = {c.split("[")[0] for c in tc.index}
    n_cases = len(
        cases_in_scope(
            tuple(named) if any(CLAIMS[c].opt_in for c in named if c in CLAIMS) else None, SCALES.get(tracked.name)
        )
    )
    for case in tc.index.intersection(fc.index, sort=False):
        t, row = tc.loc[case], fc.loc[case].copy()
        row["magnitude"] = text_or_empty(row["magnitude"])
        # a -k run computed part of the family: its adjusted p-values and verdicts are over fewer cases
        partial = only_fresh and text_or_empty(row["family_complete"]) != "True"
        ref = {
            "effect": t["effect"],
            "ci_low": t["ci_low"],
            "ci_high": t["ci_high"],
            "n": t["n"],
            "expected_magnitude": text_or_empty(t["magnitude"]),
        }
        if not partial:
            ref.update(expected_verdict=t["verdict"], window_stable=t["window_stable"])
        found = compatibility(ref, row, retrained, n_cases)
        if not retrained:
            h = _halfwidth(float(t["ci_low"]), float(t["ci_high"]))
            tol = max(SHIPPED_TOLERANCE * (h if not np.isnan(h) else 0.0), NUMERIC_RTOL * max(1.0, abs(t["effect"])))
            for col in ("ci_low", "ci_high"):
                a, b = float(t[col]), float(row[col])
                if not ((np.isnan(a) and np.isnan(b)) or abs(a - b) <= tol):
                    found.append(f"{col} is {b:.4g}, recorded {a:.4g} (> {tol:.3g}; shipped models)")
            found += _claims_numbers(t, row, partial)
        known = str(t["claim"]) in CLAIMS
        if row["magnitude"] and known and not Case(str(t["claim"]), str(t["metric"]), 0, "").compared_with_paper:
            found.append(f"magnitude {row['magnitude']!r}, but this case compares no published number")
        problems += [f"{case}: {p}" for p in dict.fromkeys(found)]
    if not retrained and (tracked / "claims_detail.csv").is_file() and (fresh / "claims_detail.csv").is_file():
        problems += _compare_detail(tracked, fresh, set(fc.index) if only_fresh else None)
    problems += _compare_v2(tracked, fresh, retrained, only_fresh)
    return problems


def _compare_detail(tracked: Path, fresh: Path, cases: set[str] | None) -> list[str]:
    key = ["claim", "metric", "fault_model", "rate"]
    t, f = (read_table(d / "claims_detail.csv") for d in (tracked, fresh))
    if cases is not None:  # a -k run: the rows of the cases it computed
        t, f = (x[(x["claim"] + "[" + x["metric"] + "]").isin(cases)] for x in (t, f))
    t, f = (x.assign(rate=x["rate"].round(12)).set_index(key) for x in (t, f))
    problems = _rows_both_ways("claims_detail.csv row", t.index, f.index, False)
    common = t.index.intersection(f.index, sort=False)
    for col in ("effect", "ci_low", "ci_high", "n_seeds"):
        a, b = t.loc[common, col].to_numpy(float), f.loc[common, col].to_numpy(float)
        h = (t.loc[common, "ci_high"] - t.loc[common, "ci_low"]).to_numpy(float) / 2
        tol = np.maximum(SHIPPED_TOLERANCE * np.nan_to_num(h), NUMERIC_RTOL * np.maximum(1.0, np.abs(a)))
        bad = ~((np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tol))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"claims_detail.csv {common[i]}: {col} is {b[i]:.4g}, recorded {a[i]:.4g}")
    return problems


def _compare_v2(tracked: Path, fresh: Path, retrained: bool, only_fresh: bool) -> list[str]:
    """Plan v2: verdicts.csv of an all-seeds run against the tracked one, case by case (both ways)."""
    if not (tracked / "verdicts.csv").is_file():
        return []
    if not (fresh / "verdicts.csv").is_file():
        if _expects_all_seeds(tracked, fresh):
            return [f"verdicts.csv: missing from the fresh run {fresh}, which re-measured every recorded seed"]
        return []
    tv, fv = (read_table(d / "verdicts.csv").set_index("case") for d in (tracked, fresh))
    problems = _rows_both_ways("v2", tv.index, fv.index, only_fresh)
    for case in tv.index.intersection(fv.index, sort=False):
        t, f = tv.loc[case], fv.loc[case]
        want = {} if np.isnan(t["effect"]) else {"effect": t["effect"], "ci_low": t["ci_low"], "ci_high": t["ci_high"]}
        if want and not retrained:
            want.update(n=t["n"], expected_verdict=t["verdict"])
        found = compatibility(want, f, retrained, len(tv))
        if not retrained:
            for col in ("p_value", "p_signflip", "p_nominal", "p_equivalence", "alpha_local"):
                a, b = float(t[col]), float(f[col])
                if not ((np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=P_TOLERANCE, atol=P_TOLERANCE)):
                    found.append(f"{col} is {b:.4g}, recorded {a:.4g}")
            for col in ("verdict", "signflip_agrees", "magnitude_points", "magnitude_relative", "window_stable"):
                if text_or_empty(t[col]) != text_or_empty(f[col]):
                    found.append(f"{col} is {text_or_empty(f[col])!r}, recorded {text_or_empty(t[col])!r}")
        problems += [f"v2 {case}: {p}" for p in dict.fromkeys(found)]
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
