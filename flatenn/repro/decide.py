"""Analysis plan v2 (``plans/v2.toml``): group-sequential primary family, gatekept views, claim 2 within strata.

The plan's text is the contract; this module implements it from the recorded tables alone:

* :func:`load_plan` reads ``plans/v2.toml``.
* :func:`sequential` replays the looks: after each complete block of seeds every open primary case is
  tested (seed-level t test against the look's nominal level from O'Brien-Fleming alpha spending, graphical
  Holm over the four primary cases for direction and, separately, for equivalence) and stops when decisive.
  The recording asks it which claims are still open before it adds a block (so the seeds a claim gets are a
  function of the recorded rows, and ``verify`` replays the same decisions).
* :func:`evaluate_v2` writes one row per case: primary, its secondary views (tested only where the primary
  is decisive), magnitude (simultaneous bounds on the largest per-point effect, in points and in relative
  percent), the claim 2 family and the exploratory cases.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.power import seeds_for_power
from ..analysis.sequential import nominal_p
from ..analysis.stats import (
    holm,
    mean_ci,
    sign_flip_p,
    simultaneous_t_limits,
    spearman_rho,
    spearman_rows,
    spearman_subsets,
    t_test,
    tost,
)
from .claims import CLAIMS, Case, evaluate_case, split_case, window_rates
from .estimators import main_rows, model_drop, paired_points, paired_seed_effects, per_point_accuracy
from .scales import ScaleConfig

PLAN_V2 = Path(__file__).parent / "plans" / "v2.toml"


@dataclass(frozen=True)
class Primary:
    case: str
    relative_to: str
    views: tuple[str, ...]

    @property
    def claim(self) -> str:
        return split_case(self.case)[0]

    @property
    def metric(self) -> str:
        return split_case(self.case)[1]


@dataclass(frozen=True)
class ScalePlan:
    looks: tuple[int, ...]
    full_seeds: int
    reproduce_seeds: tuple[int, ...]
    eval: str = ""


@dataclass(frozen=True)
class AnalysisPlan:
    """plans/v2.toml as data (see the comments in that file for what each field means and why)."""

    alpha: float
    spending: str
    permutation_exact_max: int
    permutation_resamples: int
    bootstrap_min_clusters: int
    window_min_drop: float
    power: float
    scales: dict[str, ScalePlan]
    primary: tuple[Primary, ...]
    claim2: dict = field(default_factory=dict, hash=False, compare=False)
    exploratory: tuple[str, ...] = ()


def load_plan(path: str | Path = PLAN_V2) -> AnalysisPlan:
    """The v2 analysis plan from its TOML file; a missing or unknown field is a named error."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        d = tomllib.load(f)
    try:
        primary = tuple(Primary(p["case"], p["relative_to"], tuple(p["views"])) for p in d["primary"])
        for p in primary:
            if p.claim not in CLAIMS:
                raise ValueError(f"{path}: primary case {p.case} names an unknown claim")
        return AnalysisPlan(
            alpha=float(d["alpha"]),
            spending=d["spending"],
            permutation_exact_max=int(d["permutation_exact_max"]),
            permutation_resamples=int(d["permutation_resamples"]),
            bootstrap_min_clusters=int(d["bootstrap_min_clusters"]),
            window_min_drop=float(d["window_min_drop"]),
            power=float(d["power"]),
            scales={
                k: ScalePlan(tuple(v["looks"]), int(v["full_seeds"]), tuple(v["reproduce_seeds"]), v.get("eval", ""))
                for k, v in d["scales"].items()
            },
            primary=primary,
            claim2=dict(d["claim2"]),
            exploratory=tuple(d["exploratory"]),
        )
    except KeyError as e:
        raise ValueError(f"{path}: the analysis plan needs the field {e}") from None


PLAN: AnalysisPlan = load_plan()


def first_seeds(scale: ScaleConfig, n: int) -> ScaleConfig:
    """The scale with its seeds cut to the first ``n`` (the seeds of a look)."""
    return dataclasses.replace(scale, seeds=tuple(range(n)))


def block_complete(tables: dict[str, pd.DataFrame], scale: ScaleConfig, claim: str, seeds) -> bool:
    """Whether every campaign row the claim's models need at these seeds is recorded."""
    camp = tables.get("campaign")
    if camp is None or not len(camp):
        return False
    counts = main_rows(camp).groupby(["model_id", "fault_model"]).size()
    want = len(scale.rates) * scale.trials
    return all(
        counts.get((scale.model_id(v, s), fm), 0) >= want
        for v in CLAIMS[claim].variants
        for s in seeds
        for fm in scale.fault_models
    )


@dataclass
class LookRow:
    look: int
    n: int
    case: str
    effect: float
    sd: float
    p_value: float
    p_signflip: float
    p_equivalence: float
    alpha_direction: float
    nominal_direction: float
    alpha_equivalence: float
    nominal_equivalence: float
    decision: str


SEQUENTIAL_COLUMNS = [f.name for f in dataclasses.fields(LookRow)]


@dataclass
class SequentialState:
    """What the replay found: one row per (look, open primary case), the open cases, the next look."""

    rows: list[LookRow]
    open: list[str]  # primary cases not yet decided
    next_look: int  # index of the first look whose block is not complete (len(looks): all done)
    decided_at: dict[str, int]  # case -> index of the look it stopped at
    levels: dict[str, tuple[float, float]]  # case -> (alpha, nominal p) of its last test


def _holm_levels(alpha: float, family: list[str], rejected: set[str]) -> dict[str, float]:
    left = [c for c in family if c not in rejected]
    return {c: alpha / len(left) for c in left} if left else {}


def _graphical_holm(
    pvalues: dict[str, float], family: list[str], rejected: set[str], alpha: float, nominal
) -> dict[str, tuple[float, bool]]:
    """One look of graphical Holm (Maurer & Bretz 2013) with equal weights: every hypothesis not yet rejected
    holds alpha / (number not rejected); a rejection passes its share on and the look is tested again.

    ``nominal(level)`` is the look's nominal p for a hypothesis holding ``level``. Returns, per tested case,
    (the level it was last tested at, whether it was rejected).
    """
    out: dict[str, tuple[float, bool]] = {}
    done = set(rejected)
    while True:
        lv = _holm_levels(alpha, family, done)
        hits = {c for c, p in pvalues.items() if c not in done and not np.isnan(p) and p <= nominal(lv[c])}
        for c in pvalues:
            if c not in done:
                out[c] = (lv[c], c in hits)
        if not hits:
            return out
        done |= hits


def sequential(tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: AnalysisPlan = PLAN) -> SequentialState:
    """Replay the group-sequential looks of a scale from its recorded rows (see the module docstring)."""
    sp = plan.scales[scale.name]
    cap = sp.looks[-1]
    fractions = [n / cap for n in sp.looks]
    family = [p.case for p in plan.primary if scale.claims is None or p.claim in scale.claims]
    rejected, equivalent = set(), set()
    open_ = list(family)
    rows: list[LookRow] = []
    decided: dict[str, int] = {}
    levels: dict[str, tuple[float, float]] = {}
    for k, n in enumerate(sp.looks):
        if not open_:
            return SequentialState(rows, [], k, decided, levels)
        seeds = range(n)
        if not all(block_complete(tables, scale, c.split("[")[0], seeds) for c in open_):
            return SequentialState(rows, open_, k, decided, levels)
        sub = first_seeds(scale, n)
        stats_of = {}
        for c in open_:
            claim, metric = split_case(c)
            v = paired_seed_effects(CLAIMS[claim].args, metric, tables, sub, dict(scale.informative_rates)).to_numpy()
            sesoi = float(CLAIMS[claim].sesoi)
            stats_of[c] = (v, t_test(v), tost(v, sesoi))
        # direction: graphical Holm with spending; a rejection passes its alpha on and the look is re-tested
        at = fractions[: k + 1]
        a_dir = _graphical_holm(
            {c: stats_of[c][1] for c in open_},
            family,
            rejected,
            plan.alpha,
            lambda a, at=at: nominal_p(at, a, plan.spending)[-1],
        )
        new_rej = {c for c, (_, hit) in a_dir.items() if hit}
        a_eq = _graphical_holm(
            {c: stats_of[c][2] for c in open_ if c not in new_rej},
            family,
            equivalent,
            plan.alpha,
            lambda a, at=at: nominal_p(at, 2 * a, plan.spending)[-1] / 2,  # one-sided level a: two-sided boundary at 2a
        )
        new_eq = {c for c, (_, hit) in a_eq.items() if hit}
        last = k == len(sp.looks) - 1
        for c in list(open_):
            v, p, peq = stats_of[c]
            a = a_dir[c][0]
            ae = a_eq[c][0] if c in a_eq else float("nan")
            nom = float(nominal_p(at, a, plan.spending)[-1])
            nom_eq = float(nominal_p(at, 2 * ae, plan.spending)[-1] / 2) if ae == ae else float("nan")
            if c in new_rej:
                decision = "supported" if v.mean() > 0 else "contradicted"
            elif c in new_eq:
                decision = "equivalent"
            else:
                decision = "undecided" if last else "continue"
            rows.append(
                LookRow(
                    k + 1,
                    n,
                    c,
                    float(v.mean()),
                    float(v.std(ddof=1)),
                    p,
                    sign_flip_p(v, plan.permutation_exact_max, plan.permutation_resamples),
                    peq,
                    a,
                    nom,
                    ae,
                    nom_eq,
                    decision,
                )
            )
            levels[c] = (a, nom)
            if decision != "continue":
                decided[c] = k
                open_.remove(c)
        rejected |= new_rej
        equivalent |= new_eq
    return SequentialState(rows, open_, len(sp.looks), decided, levels)


def open_claims(tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: AnalysisPlan = PLAN) -> list[str]:
    """Claims whose primary case is still open after the complete looks (they get the next block)."""
    return [c.split("[")[0] for c in sequential(tables, scale, plan).open]


# ---- the v2 verdict table --------------------------------------------------------------------------

VERDICT_COLUMNS = [
    "family",
    "case",
    "claim",
    "metric",
    "unit",
    "n",
    "look",
    "effect",
    "ci_low",
    "ci_high",
    "rci_low",
    "rci_high",
    "p_value",
    "p_signflip",
    "alpha_local",
    "p_nominal",
    "p_equivalence",
    "verdict",
    "signflip_agrees",
    "relative_effect",
    "relative_ci_low",
    "relative_ci_high",
    "paper_values",
    "magnitude_points",
    "magnitude_relative",
    "window_verdicts",
    "window_stable",
    "seeds_needed",
    "note",
]


def _row(**kw) -> dict:
    out = dict.fromkeys(VERDICT_COLUMNS, np.nan)
    for k in ("verdict", "signflip_agrees", "paper_values", "magnitude_points", "magnitude_relative"):
        out[k] = ""
    out.update(window_verdicts="", window_stable="", note="")
    out.update(kw)
    return out


def _direction(effect: float, p: float, level: float) -> str:
    if np.isnan(p) or p > level:
        return "not significant"
    return "supported" if effect > 0 else "contradicted"


def robust_rates(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, seeds, window: str, min_drop: float
) -> dict[str, tuple[float, ...]]:
    """A robustness window's rates, keeping only those where standard SGD loses at least ``min_drop`` points."""
    camp = main_rows(tables["campaign"])
    std = camp[camp["model_id"].isin([scale.model_id("standard-sgd", s) for s in seeds])]
    drop = (std["clean_accuracy"] - std["accuracy"]).groupby([std["fault_model"], std["rate"].round(12)]).mean()
    out = {}
    for fm, rates in window_rates(scale, window).items():
        keep = tuple(r for r in rates if drop.get((fm, round(r, 12)), 0.0) >= min_drop)
        if keep:
            out[fm] = keep
    return out


def _primary_rows(tables, scale, plan: AnalysisPlan, state: SequentialState) -> list[dict]:
    sp = plan.scales[scale.name]
    last = {}
    for r in state.rows:
        last[r.case] = r  # the decisive look, or the last complete one
    out = []
    for p in plan.primary:
        if p.case not in last:
            continue
        r = last[p.case]
        claim = CLAIMS[p.claim]
        sub = first_seeds(scale, r.n)
        v = paired_seed_effects(claim.args, p.metric, tables, sub, dict(scale.informative_rates)).to_numpy()
        _, _, lo, hi, _ = mean_ci(v, 0.95)
        _, _, rlo, rhi, _ = mean_ci(v, 1 - r.nominal_direction)
        verdict = r.decision if r.decision != "continue" else f"open (look {r.look} of {len(sp.looks)})"
        sign_ok = (r.p_signflip <= r.nominal_direction) == (r.p_value <= r.nominal_direction)
        if r.decision == "supported" and claim.sesoi and r.p_equivalence <= r.nominal_equivalence:
            verdict = "supported (smaller than the SESOI)"
        windows, stable = [], True
        base = _direction(r.effect, r.p_value, r.nominal_direction)
        for w in ("all_rates", "window_down", "window_up"):
            rates = robust_rates(tables, scale, sub.seeds, w, plan.window_min_drop)
            if not rates or rates == dict(scale.informative_rates):
                windows.append(f"{w}: same rates")
                continue
            wv = paired_seed_effects(claim.args, p.metric, tables, sub, rates).to_numpy()
            d = _direction(float(wv.mean()), t_test(wv), r.nominal_direction)
            windows.append(f"{w}: {d} ({wv.mean():.3g})")
            stable &= d == base
        need = ""
        if r.decision in ("continue", "undecided") and r.sd > 0:
            n = seeds_for_power(float(claim.sesoi), r.sd, r.alpha_direction, plan.power)
            need = n if n is not None else ">10000"
        out.append(
            _row(
                family="primary",
                case=p.case,
                claim=p.claim,
                metric=p.metric,
                unit="accuracy points",
                n=r.n,
                look=r.look,
                effect=float(v.mean()),
                ci_low=lo,
                ci_high=hi,
                rci_low=rlo,
                rci_high=rhi,
                p_value=r.p_value,
                p_signflip=r.p_signflip,
                alpha_local=r.alpha_direction,
                p_nominal=r.nominal_direction,
                p_equivalence=r.p_equivalence,
                verdict=verdict + ("" if sign_ok else " (t and sign-flip disagree)"),
                signflip_agrees="yes" if sign_ok else "no",
                window_verdicts="; ".join(windows),
                window_stable="yes" if stable else "no",
                seeds_needed=need,
                note=f"SESOI {claim.sesoi:g} points; TOST nominal level {r.nominal_equivalence:.3g}",
            )
        )
        out += _view_rows(tables, scale, p, r)
        if claim.paper_values:
            out.append(_magnitude_row(tables, scale, p, r))
    return out


def _view_rows(tables, scale, p: Primary, r: LookRow) -> list[dict]:
    """Secondary views of a primary: tested (Holm at the primary's nominal level) only when it is decisive."""
    claim = CLAIMS[p.claim]
    sub = first_seeds(scale, r.n)
    tested = r.decision in ("supported", "contradicted")
    vals = {}
    for view in p.views:
        if view.startswith("acc_"):
            fm = view.split("_", 1)[1]
            rates = {fm: scale.informative_rates[fm]}
            vals[view] = paired_seed_effects(claim.args, p.metric, tables, sub, rates).to_numpy()
        else:
            vals[view] = paired_seed_effects(claim.args, view, tables, sub, dict(scale.informative_rates)).to_numpy()
    ps = {k: t_test(v) for k, v in vals.items()}
    adj = dict(zip(ps, holm(list(ps.values())), strict=True))
    out = []
    for view, v in vals.items():
        _, _, lo, hi, _ = mean_ci(v, 0.95)
        if tested:
            verdict = _direction(float(v.mean()), adj[view], r.nominal_direction)
            sf = sign_flip_p(v)
            agrees = (sf * len(vals) <= r.nominal_direction) == (adj[view] <= r.nominal_direction)
        else:
            verdict, sf, agrees = "not tested (primary not decisive)", sign_flip_p(v), True
        out.append(
            _row(
                family="secondary",
                case=f"{p.claim}[{view}]",
                claim=p.claim,
                metric=view,
                unit="accuracy points",
                n=r.n,
                look=r.look,
                effect=float(v.mean()),
                ci_low=lo,
                ci_high=hi,
                p_value=adj[view] if tested else ps[view],
                p_signflip=sf,
                alpha_local=r.alpha_direction if tested else np.nan,
                p_nominal=r.nominal_direction if tested else np.nan,
                verdict=verdict + ("" if agrees else " (t and sign-flip disagree)"),
                signflip_agrees="yes" if agrees else "no",
                note="Holm-adjusted over the claim's views (p_value)" if tested else "raw p",
            )
        )
    return out


def _magnitude_row(tables, scale, p: Primary, r: LookRow) -> dict:
    """``up_to``: the largest per-point effect with simultaneous bounds, in points and relative percent."""
    from .claims import magnitude_verdict

    claim = CLAIMS[p.claim]
    seeds = tuple(range(r.n))
    camp = tables["campaign"]
    diff = paired_points(camp, claim.args["better"], claim.args["worse"], seeds)
    ref = per_point_accuracy(camp, p.relative_to, seeds).set_index(["train_seed", "fault_model", "rate"])
    diff = diff.join(ref, on=["train_seed", "fault_model", "rate"])
    diff["relative"] = 100 * diff["diff"] / diff["accuracy"]
    points = list(diff.groupby(["fault_model", "rate"]))
    res = {}
    for col in ("diff", "relative"):
        per = [g[col].to_numpy() for _, g in points]
        means = np.array([x.mean() for x in per])
        lows, highs = simultaneous_t_limits(per, 0.95)
        res[col] = (float(means.max()), float(np.nanmax(lows)), float(np.nanmax(highs)), int(means.argmax()))
    (fm, rate), _ = points[res["diff"][3]]
    pv = claim.paper_values
    return _row(
        family="magnitude",
        case=f"{p.claim}[up_to]",
        claim=p.claim,
        metric="up_to",
        unit="accuracy points",
        n=r.n,
        look=r.look,
        effect=res["diff"][0],
        ci_low=res["diff"][1],
        ci_high=res["diff"][2],
        relative_effect=res["relative"][0],
        relative_ci_low=res["relative"][1],
        relative_ci_high=res["relative"][2],
        paper_values="/".join(f"{x:g}" for x in pv),
        magnitude_points=magnitude_verdict(pv, res["diff"][1], res["diff"][2]),
        magnitude_relative=magnitude_verdict(pv, res["relative"][1], res["relative"][2]),
        verdict="reported",
        note=(
            f"largest of {len(points)} per-point means ({fm} at rate {rate:g} in points); bounds: max over points "
            f"of simultaneous 95% Bonferroni-t limits; relative = 100 x effect / accuracy({p.relative_to})"
        ),
    )


def within_strata_spearman(
    sharp: pd.Series, drop: pd.Series, seed_of: pd.Series, act_of: pd.Series, permutations: int, seed: int = 0
) -> tuple[float, float, int]:
    """Mean over activation types of Spearman(sharpness, drop) over that type's models, and its permutation p.

    The null (no association within a type) makes sharpness exchangeable among the models of one
    (seed, activation) stratum, so p shuffles it within those strata (two-sided, (1 + hits) / (1 + B)).
    Returns (statistic, p, number of models).
    """
    ids = sharp.index.intersection(drop.index)
    x, y = sharp[ids].to_numpy(float), drop[ids].to_numpy(float)
    acts, seeds = act_of[ids].to_numpy(), seed_of[ids].to_numpy()
    types = sorted(set(acts))
    obs = float(np.nanmean([spearman_rho(x[acts == a], y[acts == a]) for a in types]))
    strata = [np.flatnonzero((acts == a) & (seeds == s)) for a in types for s in sorted(set(seeds))]
    rng = np.random.default_rng(seed)
    shuffled = np.empty((permutations, len(x)))
    for b in range(permutations):  # the draws in the order they were always made: the same p for a seed
        shuffled[b] = x
        for idx in strata:
            shuffled[b, idx] = x[rng.permutation(idx)]
    per_type = (
        np.column_stack(
            [
                spearman_rows(
                    shuffled[:, acts == a], np.broadcast_to(y[acts == a], (permutations, int((acts == a).sum())))
                )
                for a in types
            ]
        )
        if permutations
        else np.empty((0, len(types)))
    )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a permutation with every type's rho undefined: NaN
        stats_ = np.nanmean(per_type, axis=1)
    hits = int(np.sum(np.abs(stats_) >= abs(obs) - 1e-12))
    return obs, (1 + hits) / (1 + permutations), len(ids)


def _claim2_rows(tables, scale, plan: AnalysisPlan) -> list[dict]:
    c2 = plan.claim2
    sp = plan.scales[scale.name]
    sharp = tables.get("sharpness")
    if sharp is None or not len(sharp) or not len(tables.get("campaign", [])):
        return []
    claim = CLAIMS[c2["claim"]]
    seeds = tuple(range(sp.full_seeds))
    models = sharp.drop_duplicates("model_id").set_index("model_id")
    models = models[models["train_seed"].isin(seeds)]
    act_of = models["variant"].map(lambda v: scale.variants.get(v, ("fatrelu", ""))[0])
    drop = model_drop(tables["campaign"], scale.informative_rates)["drop"]
    rows, tests = [], {}
    for m in c2["metrics"]:
        vals = sharp[sharp["metric"] == m].set_index("model_id")["value"]
        a, b = claim.args["sparse"], claim.args["standard"]
        ids = [(scale.model_id(a, s), scale.model_id(b, s)) for s in seeds]
        if not all(i in vals.index and j in vals.index for i, j in ids):
            return []
        d = np.array([vals[i] - vals[j] for i, j in ids])
        _, _, lo, hi, _ = mean_ci(d, 0.95)
        tests[f"diff_{m}"] = (float(d.mean()), t_test(d), sign_flip_p(d), lo, hi, len(d), "metric units")
        inside = vals[vals.index.isin(models.index)]
        rho, p, n = within_strata_spearman(
            inside, drop, models["train_seed"], act_of, int(c2["permutations"]), seed=len(rows)
        )
        boot = (np.nan, np.nan)
        if len(seeds) >= plan.bootstrap_min_clusters:
            boot = _cluster_bootstrap(inside, drop, models["train_seed"], act_of)
        tests[f"within_{m}"] = (rho, p, np.nan, boot[0], boot[1], n, "Spearman rho (within activation type)")
        rows.append(m)
    adj = dict(zip(tests, holm([t[1] for t in tests.values()]), strict=True))
    out, verdicts = [], {}
    for case, (eff, _, sf, lo, hi, n, unit) in tests.items():
        verdict = _direction(eff, adj[case], plan.alpha)
        agrees = np.isnan(sf) or ((sf * len(tests) <= plan.alpha) == (adj[case] <= plan.alpha))
        verdicts[case] = verdict
        out.append(
            _row(
                family="claim2",
                case=f"{c2['claim']}[{case}]",
                claim=c2["claim"],
                metric=case,
                unit=unit,
                n=n,
                effect=eff,
                ci_low=lo,
                ci_high=hi,
                p_value=adj[case],
                p_signflip=sf,
                alpha_local=plan.alpha,
                verdict=verdict + ("" if agrees else " (t and sign-flip disagree)"),
                signflip_agrees="yes" if agrees else "no",
                note=(
                    "sparse SGD - standard SGD per seed, Holm over claim 2's cases"
                    if case.startswith("diff")
                    else f"permutation within (seed, activation) strata, Holm over claim 2's cases; CI: "
                    f"{'seed-cluster bootstrap' if len(seeds) >= plan.bootstrap_min_clusters else 'none (< 10 seeds)'}"
                ),
            )
        )
    both = sum(verdicts[f"diff_{m}"] == "supported" and verdicts[f"within_{m}"] == "supported" for m in rows)
    contra = max(
        sum(verdicts[f"diff_{m}"] == "contradicted" for m in rows),
        sum(verdicts[f"within_{m}"] == "contradicted" for m in rows),
    )
    overall = "supported" if both >= 2 else "contradicted" if contra >= 2 else "mixed"
    out.append(
        _row(
            family="claim2",
            case=f"{c2['claim']}[claim]",
            claim=c2["claim"],
            metric="claim",
            unit="",
            n=len(seeds),
            verdict=overall,
            note=f"rule: {c2['rule']}; {both} of {len(rows)} metrics with diff and within supported",
        )
    )
    return out


def _cluster_bootstrap(sharp, drop, seed_of, act_of, resamples: int = 2000) -> tuple[float, float]:
    """Percentile interval of the within-strata statistic, resampling whole seeds (>= 10 clusters only)."""
    ids = sharp.index.intersection(drop.index)
    seeds = seed_of[ids]
    labels = np.array(sorted(set(seeds)))
    x, y, a = sharp[ids].to_numpy(float), drop[ids].to_numpy(float), act_of[ids].to_numpy()
    members = {s: np.flatnonzero(seeds.to_numpy() == s) for s in labels}
    rng = np.random.default_rng(0)
    samples = [np.concatenate([members[s] for s in rng.choice(labels, len(labels))]) for _ in range(resamples)]
    types = sorted(set(a))
    per_type = np.column_stack([spearman_subsets(x, y, [r[a[r] == t] for r in samples]) for t in types])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sample with every type's rho undefined: NaN
        vals = np.nanmean(per_type, axis=1)
    lo, hi = np.nanquantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def _exploratory_rows(tables, scale, plan: AnalysisPlan) -> list[dict]:
    sp = plan.scales[scale.name]
    sub = first_seeds(scale, sp.full_seeds)
    out = []
    names = list(plan.exploratory) + [plan.claim2["claim"]]
    for cid in names:
        c = CLAIMS[cid]
        for metric, _, unit in c.metrics:
            if cid == plan.claim2["claim"] and not metric.startswith("spearman"):
                continue  # claim 2's diffs are in its family; its pooled correlations are exploratory (v1's view)
            try:
                r = evaluate_case(Case(cid, metric, 0, unit), tables, sub)
            except (LookupError, KeyError):
                continue
            sf = sign_flip_p(r.values) if r.values is not None else np.nan
            out.append(
                _row(
                    family="exploratory",
                    case=f"{cid}[{metric}]",
                    claim=cid,
                    metric=metric,
                    unit=unit,
                    n=r.n,
                    effect=r.effect,
                    ci_low=r.ci_low
                    if ("spearman" not in metric or sp.full_seeds >= plan.bootstrap_min_clusters)
                    else np.nan,
                    ci_high=r.ci_high
                    if ("spearman" not in metric or sp.full_seeds >= plan.bootstrap_min_clusters)
                    else np.nan,
                    p_value=r.p_value,
                    p_signflip=sf,
                    verdict="reported",
                    note=("pooled over activation types (v1's view); " if cid == plan.claim2["claim"] else "")
                    + (r.note or "")
                    + "; raw p, in no family",
                )
            )
    return out


def evaluate_v2(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: AnalysisPlan = PLAN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdicts, sequential): every case of plan v2 from the recorded tables (see the module docstring)."""
    state = sequential(tables, scale, plan)
    rows = _primary_rows(tables, scale, plan, state)
    rows += _claim2_rows(tables, scale, plan)
    rows += _exploratory_rows(tables, scale, plan)
    verdicts = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    seq = pd.DataFrame([dataclasses.asdict(r) for r in state.rows], columns=SEQUENTIAL_COLUMNS)
    return verdicts, seq


def v2_detail(tables: dict[str, pd.DataFrame], scale: ScaleConfig, verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per-point paired effects (acc and drop views) of each primary claim at the seeds of its last look."""
    from .claims import DETAIL_COLUMNS
    from .estimators import campaign_effect

    out = []
    prim = verdicts[verdicts["family"] == "primary"]
    for r in prim.itertuples():
        claim = CLAIMS[r.claim]
        sub = first_seeds(scale, int(r.n))
        for view, metric in (("acc", r.metric), ("drop", "drop" + r.metric[3:])):
            res = campaign_effect(
                tables["campaign"],
                sub,
                claim.args["better"],
                claim.args["worse"],
                view,
                dict(scale.informative_rates),
                1.0,
            )
            out.append(res.detail.assign(claim=r.claim, metric=metric))
    return pd.concat(out, ignore_index=True)[DETAIL_COLUMNS] if out else pd.DataFrame(columns=DETAIL_COLUMNS)


@dataclass(frozen=True)
class V2Case:
    """One row of verdicts.csv as a benchmark case."""

    family: str
    claim: str
    metric: str

    @property
    def id(self) -> str:
        return f"{self.claim}[{self.metric}]"


def v2_cases(scale: ScaleConfig, plan: AnalysisPlan = PLAN) -> list[V2Case]:
    """Every case plan v2 evaluates at a scale, in the order of verdicts.csv."""
    out = []
    for p in plan.primary:
        if scale.claims is not None and p.claim not in scale.claims:
            continue
        out.append(V2Case("primary", p.claim, p.metric))
        out += [V2Case("secondary", p.claim, v) for v in p.views]
        if CLAIMS[p.claim].paper_values:
            out.append(V2Case("magnitude", p.claim, "up_to"))
    c2 = plan.claim2
    out += [V2Case("claim2", c2["claim"], f"{k}_{m}") for m in c2["metrics"] for k in ("diff", "within")]
    out.append(V2Case("claim2", c2["claim"], "claim"))
    for cid in list(plan.exploratory) + [c2["claim"]]:
        for metric, _, _ in CLAIMS[cid].metrics:
            if cid != c2["claim"] or metric.startswith("spearman"):
                out.append(V2Case("exploratory", cid, metric))
    return out


def supports_paper(row) -> bool:
    """Whether a verdicts.csv row supports the paper (magnitude rows: either reading reaches the published value)."""
    if row["family"] == "exploratory":
        return True
    if row["family"] == "magnitude":
        return any(
            str(row[c]) in ("reaches published", "above published") for c in ("magnitude_points", "magnitude_relative")
        )
    return str(row["verdict"]).startswith("supported")
