"""The FlatENN paper's claims as data (``claims.toml``), and their evaluation from recorded tables.

A claim has one or more *cases* (claim id + metric). Each case computes an effect with a 95% CI
from the tables of one scale. This module implements analysis plan v1 (``plans/v1.md``, summarized
below; ``claims.csv``, on a scale's first 5 seeds); plan v2 (``plans/v2.toml``, ``verdicts.csv``) is
:mod:`flatenn.repro.decide`, which reuses the estimators and cases defined here.

* **Replication unit.** The training seed. Models of one seed are evaluated under that seed's fault
  maps (common random numbers within a seed; maps differ between seeds), so the per-seed paired
  effect averages over fault trials and the *informative* rates of all fault models, and the t
  interval over seeds contains training *and* fault-map variation. Correlations over models use the
  seed as a cluster (bootstrap over seeds for the CI, permutation within seeds for p).
* **Direction verdict** (hypothesis cases, ``direction=+1``): p-values are Holm-adjusted over the
  scale's hypothesis cases (Bonferroni over the same family size when a run computed only part of
  it). ``supported`` / ``contradicted``: adjusted p < 0.05 with the effect on the claimed / opposite
  side; ``equivalent``: not different, and a Holm-adjusted TOST shows the effect lies within ±SESOI
  (the smallest effect of interest declared per claim below); else ``inconclusive``. Context cases
  (``direction=0``) are ``reported``.
* **Magnitude verdict** (cases compared with a published number, like with like: our ``up_to``, the
  largest per-point effect over all fault models and rates, against the paper's "up to X%"):
  ``reaches published`` (CI upper bound ≥ the smaller published value), ``below published`` (CI
  upper bound below it), ``above published`` (CI lower bound above the larger one).
* **Window robustness.** Every verdict is recomputed over all rates and over the informative window
  shifted one rate down and one up; ``window_stable`` says whether all four agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.stats import ALPHA, holm
from .estimators import ESTIMATORS, Result
from .scales import ScaleConfig

BANDS_DIR = Path(__file__).parent / "bands"
CLAIMS_FILE = Path(__file__).parent / "claims.toml"
SHARP_METRICS = ("lambda_max_fn", "trace_fn", "avg_sharpness")
RHO_SESOI = 0.3  # correlations: |rho| < 0.3 counts as no meaningful association (declared before the runs)
TABLES = ("campaign", "training", "sharpness", "sparsity", "landscape")


@dataclass(frozen=True)
class Claim:
    """One claim as declared in claims.toml (see the comments at the top of that file)."""

    id: str
    text: str
    source: str
    estimator: str
    metrics: tuple[tuple[str, int, str], ...]  # (metric, direction, unit)
    needs: tuple[str, ...] = ()
    paper_values: tuple[float, ...] = ()
    paper_unit: str = ""
    tier: str = "context"
    marks: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    campaign: bool = True
    sharpness: bool = False
    sparsity: bool = False
    sweep: bool = False
    args: dict = field(default_factory=dict, hash=False, compare=False)
    sesoi: float | None = None  # smallest effect of interest of the accuracy cases (points)
    sesoi_reason: str = ""
    title: str = ""
    headline: tuple[tuple[str, str, str], ...] = ()  # (metric, text, plan-v2 metric) rows of the README's summary
    ablation: tuple[str, ...] = ()  # metrics the ablation re-evaluates at every level
    opt_in: bool = False  # evaluated only at scales that name it in ScaleConfig.claims (e.g. the mitigations family)

    @property
    def family(self) -> tuple[str, ...]:
        """Kept for 0.2 callers: the pytest marks."""
        return self.marks


_FIELDS = {
    "statement": "text",
    "source": "source",
    "estimator": "estimator",
    "needs": "needs",
    "paper_values": "paper_values",
    "paper_unit": "paper_unit",
    "tier": "tier",
    "marks": "marks",
    "variants": "variants",
    "campaign": "campaign",
    "sharpness": "sharpness",
    "sparsity": "sparsity",
    "sweep": "sweep",
    "args": "args",
    "sesoi": "sesoi",
    "sesoi_reason": "sesoi_reason",
    "title": "title",
    "headline": "headline",
    "ablation": "ablation",
    "metrics": "metrics",
    "opt_in": "opt_in",
}
TIERS = ("primary", "secondary", "mechanism", "context", "mitigations")


def parse_claims(doc: dict, where: str = "claims") -> dict[str, Claim]:
    """Claims from a parsed claims file (``{"claims": {id: {...}}}``); a wrong entry is a named error."""
    out = {}
    for cid, e in doc.get("claims", {}).items():
        unknown = sorted(set(e) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: claim {cid}: unknown field(s) {unknown}; fields: {sorted(_FIELDS)}")
        for req in ("statement", "source", "estimator", "metrics"):
            if req not in e:
                raise ValueError(f"{where}: claim {cid} needs {req!r}")
        if e["estimator"] not in ESTIMATORS:
            raise ValueError(f"{where}: claim {cid}: unknown estimator {e['estimator']!r}; known: {sorted(ESTIMATORS)}")
        if e.get("tier", "context") not in TIERS:
            raise ValueError(f"{where}: claim {cid}: tier must be one of {TIERS}")
        bad = sorted(set(e.get("needs", ())) - set(TABLES))
        if bad:
            raise ValueError(f"{where}: claim {cid}: needs unknown tables {bad}; tables: {TABLES}")
        kw = {_FIELDS[k]: v for k, v in e.items()}
        kw["metrics"] = tuple((m["name"], int(m["direction"]), m["unit"]) for m in e["metrics"])
        kw["headline"] = tuple(
            (h["metric"], h.get("text", ""), h.get("v2", h["metric"])) for h in e.get("headline", ())
        )
        for k in ("needs", "paper_values", "marks", "variants", "ablation"):
            if k in kw:
                kw[k] = tuple(kw[k])
        out[cid] = Claim(id=cid, **kw)
    return out


def load_claims(path: str | Path = CLAIMS_FILE) -> dict[str, Claim]:
    """The claims of one claims file (TOML)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    with open(path, "rb") as f:
        return parse_claims(tomllib.load(f), str(path))


CLAIMS: dict[str, Claim] = load_claims()


@dataclass(frozen=True)
class Case:
    claim: str
    metric: str
    direction: int
    unit: str

    @property
    def id(self) -> str:
        return f"{self.claim}[{self.metric}]"

    @property
    def sesoi(self) -> float:
        """Smallest effect of interest: the claim's (accuracy cases) or RHO_SESOI (correlations); NaN if none."""
        if "spearman" in self.metric:
            return RHO_SESOI
        s = CLAIMS[self.claim].sesoi
        return float("nan") if s is None or self.metric == "up_to" else float(s)

    @property
    def compared_with_paper(self) -> bool:
        """Like with like: the largest per-point effect against the paper's 'up to' numbers."""
        return self.metric == "up_to" and bool(CLAIMS[self.claim].paper_values)


def split_case(case: str) -> tuple[str, str]:
    """``"claim[metric]"`` -> ``(claim, metric)``: how cases are named in the tables, plans and pages."""
    claim, _, rest = case.partition("[")
    return claim, rest.rstrip("]")


def cases() -> list[Case]:
    return [Case(c.id, m, d, u) for c in CLAIMS.values() for m, d, u in c.metrics]


def scale_claims(claims: tuple[str, ...] | None) -> tuple[str, ...]:
    """The claims a scale evaluates: the ones it names, or (None) every claim that is not opt-in."""
    return tuple(claims) if claims is not None else tuple(cid for cid, c in CLAIMS.items() if not c.opt_in)


def claim_variants(claim_id: str, scale: ScaleConfig | None = None) -> tuple[str, ...]:
    """The variants a claim needs at ``scale``. An opt-in family (the mitigations) is evaluated on the methods
    the scale lists (a larger scale may afford only some); every other claim needs all of its variants."""
    c = CLAIMS[claim_id]
    if scale is None or not c.opt_in:
        return c.variants
    return tuple(v for v in c.variants if v in scale.variants)


def case_in_scale(case: Case, scale: ScaleConfig | None) -> bool:
    """Whether ``scale`` measures a case: not when the case is about a variant of an opt-in family the scale
    leaves out (``gain:standard-sam`` at a scale without ``standard-sam``)."""
    c = CLAIMS[case.claim]
    target = case.metric.partition(":")[2]
    return not (scale is not None and c.opt_in and target in c.variants and target not in scale.variants)


def cases_in_scope(claims: tuple[str, ...] | None = None, scale: ScaleConfig | None = None) -> list[Case]:
    """The cases of the claims a scale evaluates (see :func:`scale_claims`), less those about variants it
    leaves out (:func:`case_in_scale`)."""
    scope = scale_claims(claims)
    return [c for c in cases() if c.claim in scope and case_in_scale(c, scale)]


def hypothesis_family(claims: tuple[str, ...] | None = None, scale: ScaleConfig | None = None) -> list[str]:
    """The multiplicity family: every hypothesis case of a scale (of the scale's claims when it names them;
    of the variants it measures, :func:`case_in_scale`)."""
    return [c.id for c in cases_in_scope(claims, scale) if c.direction]


def direction_verdict(direction: int, effect: float, p_adj: float, p_eq_adj: float) -> str:
    """supported / contradicted / equivalent / inconclusive from adjusted p-values (see module docstring)."""
    if direction == 0:
        return "reported"
    if not np.isnan(p_adj) and p_adj < ALPHA:
        return "supported" if direction * effect > 0 else "contradicted"
    if not np.isnan(p_eq_adj) and p_eq_adj < ALPHA:
        return "equivalent"
    return "inconclusive"


def magnitude_verdict(paper_values: tuple[float, ...], ci_low: float, ci_high: float) -> str:
    """Our CI against the published number(s); '' when the case is not compared with the paper."""
    if not paper_values or np.isnan(ci_high):
        return ""
    if ci_low > max(paper_values):
        return "above published"
    return "reaches published" if ci_high >= min(paper_values) else "below published"


# ---- rate windows ----------------------------------------------------------------------------

WINDOWS = ("informative", "all_rates", "window_down", "window_up")


def window_rates(scale: ScaleConfig, window: str) -> dict[str, tuple[float, ...]]:
    """Rates per fault model of a window: the informative ones, all, or the informative ones shifted by one."""
    if window == "informative":
        return dict(scale.informative_rates)
    if window == "all_rates":
        return {fm: tuple(scale.rates) for fm in scale.fault_models}
    step = -1 if window == "window_down" else 1
    rates = list(np.round(scale.rates, 12))
    out = {}
    for fm, inf in scale.informative_rates.items():
        idx = [rates.index(round(r, 12)) + step for r in inf]
        out[fm] = tuple(scale.rates[i] for i in idx if 0 <= i < len(rates))
    return out


def evaluate_case(
    case: Case, tables: dict[str, pd.DataFrame], scale: ScaleConfig, window: str = "informative"
) -> Result:
    """Compute one case under one rate window with its claim's estimator; LookupError when inputs are missing."""
    claim = CLAIMS[case.claim]
    for name in claim.needs:
        if name not in tables or len(tables[name]) == 0:
            raise LookupError(f"{case.id} needs {name}.csv, which is not recorded")
    return ESTIMATORS[claim.estimator](case.metric, claim.args, tables, scale, window_rates(scale, window), case.sesoi)


def seed_effects(
    case: Case, tables: dict[str, pd.DataFrame], scale: ScaleConfig, window: str = "informative"
) -> pd.Series:
    """Per-training-seed effect of a paired-contrast case (acc/drop views), the values its t interval is over."""
    from .estimators import paired_seed_effects

    claim = CLAIMS[case.claim]
    if claim.estimator != "paired_contrast":
        raise ValueError(f"{case.id}: per-seed effects exist for paired contrasts, not {claim.estimator}")
    return paired_seed_effects(claim.args, case.metric, tables, scale, window_rates(scale, window))


# ---- reference values (recorded runs) and paper expectations --------------------------------


def load_bands(scale: str) -> dict[str, dict]:
    """Reference per case: the recorded effect, CI and verdicts (smoke/cpu), or the paper's expectation."""
    if scale.startswith("paper"):
        out = {}
        for case in cases():
            if case.compared_with_paper:
                out[case.id] = {
                    "expected_verdict": "reported",
                    "expected_magnitude": "reaches published",
                    "source": f"paper values {CLAIMS[case.claim].paper_values}",
                }
            elif case.direction:
                out[case.id] = {
                    "expected_verdict": "supported",
                    "expected_magnitude": "",
                    "source": "the paper's claim (direction only)",
                }
        return out
    path = BANDS_DIR / f"{scale}.json"
    return json.loads(path.read_text())["bands"] if path.is_file() else {}


CLAIM_COLUMNS = [
    "claim",
    "metric",
    "case",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "unit",
    "direction",
    "p_value",
    "p_holm",
    "sesoi",
    "p_equivalence",
    "p_equivalence_holm",
    "verdict_unadjusted",
    "verdict",
    "paper_values",
    "magnitude",
    "verdict_all_rates",
    "verdict_window_down",
    "verdict_window_up",
    "window_stable",
    "family_complete",
    "note",
]
DETAIL_COLUMNS = ["claim", "metric", "fault_model", "rate", "effect", "ci_low", "ci_high", "n_seeds"]


def adjust(pvalues: dict[str, float], family: list[str] | None = None) -> tuple[dict[str, float], bool]:
    """Holm over the whole hypothesis family when every p-value is known; else Bonferroni with the full
    family size (never less conservative than Holm). Returns (adjusted p per case, family complete)."""
    family = hypothesis_family() if family is None else family
    complete = all(c in pvalues and not np.isnan(pvalues[c]) for c in family)
    if complete:
        adj = holm([pvalues[c] for c in family])
        return dict(zip(family, adj, strict=True)), True
    return {c: min(1.0, len(family) * p) if not np.isnan(p) else np.nan for c, p in pvalues.items()}, False


def _verdicts(
    results: dict[str, Result], by_id: dict[str, Case], family: list[str]
) -> tuple[dict[str, str], dict, dict, bool]:
    p = {cid: r.p_value for cid, r in results.items() if by_id[cid].direction}
    pe = {cid: r.p_equivalence for cid, r in results.items() if by_id[cid].direction}
    p_adj, complete = adjust(p, family)
    pe_adj, _ = adjust(pe, family)
    out = {
        cid: direction_verdict(by_id[cid].direction, r.effect, p_adj.get(cid, np.nan), pe_adj.get(cid, np.nan))
        for cid, r in results.items()
    }
    return out, p_adj, pe_adj, complete


def evaluate_all(tables: dict[str, pd.DataFrame], scale: ScaleConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every case whose inputs exist, under every window: (claims, per-point details)."""
    tables = dict(tables)  # this evaluation's own dict: estimators keep what they derive from the tables in it
    by_id = {c.id: c for c in cases()}
    family = hypothesis_family(scale.claims, scale)
    per_window: dict[str, dict[str, Result]] = {}
    for w in WINDOWS:
        res = {}
        for case in cases_in_scope(scale.claims, scale):
            try:
                res[case.id] = evaluate_case(case, tables, scale, w)
            except LookupError:
                continue  # inputs for this case are not recorded at this scale
        per_window[w] = res
    main = per_window["informative"]
    verdicts = {w: _verdicts(r, by_id, family) for w, r in per_window.items()}
    v_main, p_adj, pe_adj, complete = verdicts["informative"]
    rows, details = [], []
    for cid, r in main.items():
        case = by_id[cid]
        unadj = direction_verdict(case.direction, r.effect, r.p_value, r.p_equivalence)
        others = {w: verdicts[w][0].get(cid, "") for w in WINDOWS[1:]}
        paper = CLAIMS[case.claim].paper_values
        rows.append(
            {
                "claim": case.claim,
                "metric": case.metric,
                "case": cid,
                "effect": r.effect,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "n": r.n,
                "unit": case.unit,
                "direction": case.direction,
                "p_value": r.p_value,
                "p_holm": p_adj.get(cid, np.nan),
                "sesoi": case.sesoi,
                "p_equivalence": r.p_equivalence,
                "p_equivalence_holm": pe_adj.get(cid, np.nan),
                "verdict_unadjusted": unadj,
                "verdict": v_main[cid],
                "paper_values": "/".join(f"{v:g}" for v in paper),
                "magnitude": magnitude_verdict(paper, r.ci_low, r.ci_high) if case.compared_with_paper else "",
                "verdict_all_rates": others["all_rates"],
                "verdict_window_down": others["window_down"],
                "verdict_window_up": others["window_up"],
                "window_stable": all(v == v_main[cid] for v in others.values()),
                "family_complete": complete,
                "note": r.note,
            }
        )
        if r.detail is not None and case.metric != "up_to":
            details.append(r.detail.assign(claim=case.claim, metric=case.metric))
    claims = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    detail = pd.concat(details, ignore_index=True) if details else pd.DataFrame(columns=DETAIL_COLUMNS)
    return claims, detail[DETAIL_COLUMNS]
