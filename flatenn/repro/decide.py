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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.sequential import nominal_p
from ..analysis.stats import sign_flip_p, t_test, tost
from .claims import CLAIMS
from .estimators import _main_rows, paired_seed_effects
from .scales import ScaleConfig

PLAN_V2 = Path(__file__).parent / "plans" / "v2.toml"


@dataclass(frozen=True)
class Primary:
    case: str
    relative_to: str
    views: tuple[str, ...]

    @property
    def claim(self) -> str:
        return self.case.split("[")[0]

    @property
    def metric(self) -> str:
        return self.case.split("[")[1].rstrip("]")


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


def _seeds(scale: ScaleConfig, n: int) -> ScaleConfig:
    return dataclasses.replace(scale, seeds=tuple(range(n)))


def _complete(tables: dict[str, pd.DataFrame], scale: ScaleConfig, claim: str, seeds) -> bool:
    """Whether every campaign row the claim's models need at these seeds is recorded."""
    camp = tables.get("campaign")
    if camp is None or not len(camp):
        return False
    counts = _main_rows(camp).groupby(["model_id", "fault_model"]).size()
    want = len(scale.rates) * scale.trials
    return all(
        counts.get((scale.model_id(v, s), fm), 0) >= want
        for v in CLAIMS[claim].variants
        for s in seeds
        for fm in scale.fault_models
    )


def _p_tost(values: np.ndarray, sesoi: float) -> float:
    return tost(values, sesoi)


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
        if not all(_complete(tables, scale, c.split("[")[0], seeds) for c in open_):
            return SequentialState(rows, open_, k, decided, levels)
        sub = _seeds(scale, n)
        stats_of = {}
        for c in open_:
            claim, metric = c.split("[")[0], c.split("[")[1].rstrip("]")
            v = paired_seed_effects(CLAIMS[claim].args, metric, tables, sub, dict(scale.informative_rates)).to_numpy()
            sesoi = float(CLAIMS[claim].sesoi)
            stats_of[c] = (v, t_test(v), _p_tost(v, sesoi))
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
