"""Analysis plan v3 (``plans/v3.toml``) on the tables recorded under plan v2: one graphical closed testing
procedure over the direction and equivalence nodes of the primary contrasts, the sign-flip test inside each local
test, replayed over v2's looks with v2's spending function; per contrast the clean-vs-drop decomposition, the
per-rate effects with a simultaneous max-t band, the window label, and the seeds an undecided contrast needs.

At a look, a node holding weight ``w`` is tested at the spending boundary of level ``w alpha`` (equivalence: the
one-sided boundary of that level), rejected nodes leave the graph and pass their weight on, and the look is tested
again until nothing more is rejected (Maurer & Bretz 2013). A contrast is decided by its first rejected node (a
direction node rejected together with its equivalence node reads ``supported (within the SESOI)``); one whose
variants v2 stopped recording before v3 decides it is ``undecided (data stop ...)``. v3 trains nothing. The seeds an
undecided contrast needs are for 80% power at the SESOI at its node's initial level (weight x alpha), at the point
SD and at both ends of the SD's 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.bands import max_t_band
from ..analysis.graphical import remove
from ..analysis.power import sd_interval, seeds_for_power, tost_seeds_for_power
from ..analysis.sequential import nominal_p
from ..analysis.stats import mean_ci, sign_flip_p, t_test, tost, tost_sign_flip_p
from .claims import CLAIMS, magnitude_verdict
from .decide import PLAN as V2_PLAN
from .decide import block_complete, first_seeds, robust_rates
from .estimators import main_rows, paired_by_seed, paired_points, paired_seed_effects, per_point_accuracy, with_drop
from .plan_v3 import Contrast, load_v3
from .rate_window import in_window
from .scales import ScaleConfig

PLAN3, CONTRASTS, GRAPH = load_v3()

MAGNITUDE = [
    "max_effect",
    "max_low",
    "max_high",
    "magnitude_points",
    "relative_max",
    "relative_low",
    "relative_high",
    "magnitude_relative",
]
V3_COLUMNS = [
    "contrast",
    "case",
    "look",
    "n",
    "effect",
    "ci_low",
    "ci_high",
    "p_t",
    "p_signflip",
    "p_direction",
    "level_direction",
    "nominal_direction",
    "p_tost",
    "p_tost_signflip",
    "p_equivalence",
    "level_equivalence",
    "nominal_equivalence",
    "verdict",
    "clean_effect",
    "clean_ci_low",
    "clean_ci_high",
    "drop_effect",
    "drop_ci_low",
    "drop_ci_high",
    "window",
    "sign_pattern",
    "band_max_high",
    *MAGNITUDE,
    "seeds_needed",
    "tost_seeds_needed",
    "sensitivity_n",
    "sensitivity_effect",
    "sensitivity_ci_low",
    "sensitivity_ci_high",
    "sensitivity_p",
]
PER_RATE_COLUMNS = ["contrast", "fault_model", "rate", "n", "effect", "band_low", "band_high", "sign", "critical"]


@dataclass(frozen=True)
class Local:
    """The local tests of one contrast at one look: each node's p is the larger of its t and sign-flip p."""

    values: np.ndarray
    p_t: float
    p_signflip: float
    p_tost: float
    p_tost_signflip: float

    @property
    def p_direction(self) -> float:
        return max(self.p_t, self.p_signflip)

    @property
    def p_equivalence(self) -> float:
        return max(self.p_tost, self.p_tost_signflip)


def local_tests(values: np.ndarray, sesoi: float, plan: dict = PLAN3) -> Local:
    exact, draws = plan["permutation_exact_max"], plan["permutation_resamples"]
    return Local(
        values,
        t_test(values),
        sign_flip_p(values, exact, draws),
        tost(values, sesoi),
        tost_sign_flip_p(values, sesoi, exact, draws),
    )


def contrast_values(tables: dict[str, pd.DataFrame], scale: ScaleConfig, c: Contrast, n: int) -> np.ndarray:
    """Per-seed effects of a contrast over the informative window, seeds 0..n-1."""
    args = CLAIMS[c.claim].args
    return paired_seed_effects(args, c.metric, tables, first_seeds(scale, n), dict(scale.informative_rates)).to_numpy()


def _nominal(at: list[float], level: float, kind: str, spending: str) -> float:
    if level <= 0:
        return 0.0
    if kind == "D":
        return float(nominal_p(at, level, spending)[-1])
    return float(nominal_p(at, 2 * level, spending)[-1] / 2)  # one-sided level: the two-sided boundary at 2 level


@dataclass
class Decision:
    """Where the replay left a contrast: its last look, seeds, local tests, node levels and verdict."""

    look: int
    n: int
    local: Local
    levels: dict[str, tuple[float, float]]  # "D"/"E" -> (level, nominal p) it was last tested at
    verdict: str


def replay(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: dict = PLAN3, contrasts=CONTRASTS, graph=GRAPH
) -> dict[str, Decision]:
    """The v3 procedure over v2's looks, per contrast id (see the module docstring)."""
    looks = plan["scales"][scale.name]["looks"]
    fractions = [n / looks[-1] for n in looks]
    alpha, spending = plan["alpha"], plan["spending"]
    w, g = graph.weights.copy(), graph.transitions.copy()
    active = np.ones(len(w), dtype=bool)
    node = {(kind, c.id): graph.index(f"{kind}_{c.id}") for c in contrasts for kind in ("D", "E")}
    out: dict[str, Decision] = {}
    decided: set[str] = set()
    stopped: set[str] = set()
    for k, n in enumerate(looks):
        todo = [c for c in contrasts if c.id not in decided and c.id not in stopped]
        ready = [c for c in todo if block_complete(tables, scale, c.claim, range(n))]
        stopped |= {c.id for c in todo if c not in ready}
        if not ready:
            break
        at = fractions[: k + 1]
        local = {
            c.id: local_tests(contrast_values(tables, scale, c, n), float(CLAIMS[c.claim].sesoi), plan) for c in ready
        }
        levels: dict[str, dict[str, tuple[float, float]]] = {c.id: {} for c in ready}
        verdicts: dict[str, str] = {}
        while True:
            hits = []
            for c in ready:
                if c.id in verdicts:
                    continue
                for kind in ("D", "E"):
                    i = node[(kind, c.id)]
                    if not active[i]:
                        continue
                    nominal = _nominal(at, w[i] * alpha, kind, spending)
                    levels[c.id][kind] = (float(w[i] * alpha), nominal)
                    p = local[c.id].p_direction if kind == "D" else local[c.id].p_equivalence
                    if w[i] > 0 and p <= nominal:
                        hits.append((c, kind, i))
            if not hits:
                break
            for _, _, i in hits:
                remove(w, g, active, i)
            for c in {c.id: c for c, _, _ in hits}.values():
                kinds = {kind for cc, kind, _ in hits if cc.id == c.id}
                effect = float(local[c.id].values.mean())
                if "D" in kinds:
                    verdicts[c.id] = ("supported" if effect > 0 else "contradicted") + (
                        " (within the SESOI)" if "E" in kinds else ""
                    )
                else:
                    verdicts[c.id] = "equivalent"
        last = k == len(looks) - 1
        for c in ready:
            verdict = verdicts.get(c.id, "undecided" if last else "open")
            out[c.id] = Decision(k + 1, n, local[c.id], levels[c.id], verdict)
            if c.id in verdicts:
                decided.add(c.id)
    for cid in stopped:
        if cid in out:
            out[cid].verdict = f"undecided (data stop at {out[cid].n} seeds)"
    return out


def decomposition(tables, scale: ScaleConfig, c: Contrast, n: int) -> dict[str, np.ndarray]:
    """Per-seed accuracy, clean and drop parts of a contrast's claim (acc = clean + drop exactly, per seed)."""
    args = CLAIMS[c.claim].args
    sub = first_seeds(scale, n)
    rates = dict(scale.informative_rates)
    camp = main_rows(tables["campaign"])
    clean = in_window(paired_by_seed(camp, args["better"], args["worse"], sub.seeds, "clean_accuracy"), rates)
    return {
        "acc": paired_seed_effects(args, "acc_gap", tables, sub, rates).to_numpy(),
        "clean": clean.groupby("train_seed")["diff"].mean().to_numpy(),
        "drop": paired_seed_effects(args, "drop_gap", tables, sub, rates).to_numpy(),
    }


def per_rate(tables, scale: ScaleConfig, c: Contrast, n: int, plan: dict = PLAN3) -> pd.DataFrame:
    """Per (fault model, rate) of the whole grid: the contrast's mean effect and its simultaneous max-t band."""
    args = CLAIMS[c.claim].args
    seeds = range(n)
    camp = main_rows(tables["campaign"])
    if c.metric.startswith("drop"):
        per = paired_by_seed(with_drop(camp), args["worse"], args["better"], seeds, "drop")
    else:
        per = paired_by_seed(camp, args["better"], args["worse"], seeds, "accuracy")
    wide = per.pivot_table(index="train_seed", columns=["fault_model", "rate"], values="diff")
    band = max_t_band(wide.to_numpy(), plan["band_level"], plan["band_draws"], plan["band_seed"])
    points = pd.DataFrame(list(wide.columns), columns=["fault_model", "rate"])
    return points.assign(
        contrast=c.id,
        n=n,
        effect=band.mean,
        band_low=band.low,
        band_high=band.high,
        sign=band.signs(),
        critical=band.critical,
    )[PER_RATE_COLUMNS]


def magnitude(tables, scale: ScaleConfig, c: Contrast, n: int, points: pd.DataFrame, plan: dict = PLAN3) -> dict:
    """``up_to`` under v3 (accuracy contrasts with published values only): the largest per-point mean and the
    max-t band's bounds on the largest true per-point effect (max over points of the band's low and high), in
    points (the contrast's per-rate band, ``points``) and in percent of the reference model's accuracy under the
    same faults (v2's ``relative_to``)."""
    claim = CLAIMS[c.claim]
    ref_variant = next((p.relative_to for p in V2_PLAN.primary if p.case == c.case), None)
    if not claim.paper_values or ref_variant is None:
        return {}
    seeds = tuple(range(n))
    camp = tables["campaign"]
    diff = paired_points(camp, claim.args["better"], claim.args["worse"], seeds)
    ref = per_point_accuracy(camp, ref_variant, seeds).set_index(["train_seed", "fault_model", "rate"])
    diff = diff.join(ref, on=["train_seed", "fault_model", "rate"])
    wide = (
        (100 * diff["diff"] / diff["accuracy"]).to_frame("relative").join(diff[["train_seed", "fault_model", "rate"]])
    )
    wide = wide.pivot_table(index="train_seed", columns=["fault_model", "rate"], values="relative")
    band = max_t_band(wide.to_numpy(), plan["band_level"], plan["band_draws"], plan["band_seed"])
    out = {
        "max_effect": float(points["effect"].max()),
        "max_low": float(points["band_low"].max()),
        "max_high": float(points["band_high"].max()),
        "relative_max": float(band.mean.max()),
        "relative_low": float(band.low.max()),
        "relative_high": float(band.high.max()),
    }
    out["magnitude_points"] = magnitude_verdict(claim.paper_values, out["max_low"], out["max_high"])
    out["magnitude_relative"] = magnitude_verdict(claim.paper_values, out["relative_low"], out["relative_high"])
    return out


def sensitivity(tables, scale: ScaleConfig, c: Contrast, n: int, plan: dict = PLAN3) -> dict:
    """The contrast again without the seeds the plan names for the scale (``sensitivity_without_seeds``: at
    ``cpu`` the seeds whose v1 results were seen before v2 was written): mean, 95% t-CI and t p over the rest of
    its seeds. Exploratory: no verdict."""
    drop = set(plan["scales"].get(scale.name, {}).get("sensitivity_without_seeds", []))
    if not drop:
        return {}
    args = CLAIMS[c.claim].args
    per = paired_seed_effects(args, c.metric, tables, first_seeds(scale, n), dict(scale.informative_rates))
    v = per[~per.index.isin(drop)].to_numpy()
    m, _, lo, hi, k = mean_ci(v)
    return {
        "sensitivity_n": k,
        "sensitivity_effect": m,
        "sensitivity_ci_low": lo,
        "sensitivity_ci_high": hi,
        "sensitivity_p": t_test(v),
    }


def sign_pattern(points: pd.DataFrame) -> str:
    """The band's signs per fault model in rate order, e.g. ``bitflip 00++; stuck0 -0++``."""
    sym = {1: "+", 0: "0", -1: "-"}
    return "; ".join(
        f"{fm} " + "".join(sym[int(s)] for s in grp.sort_values("rate")["sign"])
        for fm, grp in points.groupby("fault_model", sort=True)
    )


def window_label(tables, scale: ScaleConfig, c: Contrast, d: Decision, points: pd.DataFrame, v2: pd.DataFrame) -> str:
    """``window-sensitive`` where plan v2's robustness windows disagree (its ``window_stable`` of the same case; a
    contrast that is not a v2 primary case gets v2's rule at its own last nominal level) or where the band holds a
    point of the opposite sign to the effect; else ``stable``."""
    effect = float(d.local.values.mean())
    opposite = -1 if effect > 0 else 1
    if effect != 0 and (points["sign"] == opposite).any():
        return "window-sensitive"
    row = v2[(v2["family"] == "primary") & (v2["case"] == c.case)] if len(v2) else v2
    if len(row):
        return "window-sensitive" if str(row["window_stable"].iloc[0]) == "no" else "stable"
    level = d.levels.get("D", (0.0, 0.0))[1]

    def direction(v: np.ndarray) -> str:
        p = t_test(v)
        return "none" if np.isnan(p) or p > level else ("+" if v.mean() > 0 else "-")

    base = direction(d.local.values)
    args = CLAIMS[c.claim].args
    for w in ("all_rates", "window_down", "window_up"):
        rates = robust_rates(tables, scale, range(d.n), w, 1.0)
        if rates and rates != dict(scale.informative_rates):
            v = paired_seed_effects(args, c.metric, tables, first_seeds(scale, d.n), rates).to_numpy()
            if direction(v) != base:
                return "window-sensitive"
    return "stable"


def _needed(sesoi: float, sd: float, level: float, power: float, n: int, tost_test: bool) -> str:
    """Seeds for ``power`` at the SESOI: at the point SD [and at both ends of its 95% interval]."""
    if not (sd > 0 and level > 0):
        return ""
    f = tost_seeds_for_power if tost_test else seeds_for_power
    got = [f(sesoi, s, level, power) for s in (sd, *sd_interval(sd, n))]
    txt = ["more than 10000" if x is None else str(x) for x in got]
    return f"{txt[0]} [{txt[1]}, {txt[2]}]"


def evaluate_v3(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: dict = PLAN3, v2: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdicts_v3, per_rate_v3) of a plan-v2 scale from its recorded tables; ``v2``: its plan-v2 verdicts
    (derived from the same tables when not given; the window label reads them)."""
    if v2 is None:
        from .decide import evaluate_v2

        v2 = evaluate_v2(tables, scale)[0]
    decisions = replay(tables, scale, plan)
    rows, bands = [], []
    for c in CONTRASTS:
        if c.id not in decisions:
            continue
        d = decisions[c.id]
        v = d.local.values
        m, sd, lo, hi, _ = mean_ci(v)
        parts = decomposition(tables, scale, c, d.n)
        clean, drop = mean_ci(parts["clean"]), mean_ci(parts["drop"])
        points = per_rate(tables, scale, c, d.n, plan)
        bands.append(points)
        mag = magnitude(tables, scale, c, d.n, points, plan)
        sens = sensitivity(tables, scale, c, d.n, plan)
        sesoi = float(CLAIMS[c.claim].sesoi)
        level_d, nominal_d = d.levels.get("D", (float("nan"), float("nan")))
        level_e, nominal_e = d.levels.get("E", (float("nan"), float("nan")))
        initial_d = float(GRAPH.weights[GRAPH.index(f"D_{c.id}")] * plan["alpha"])  # power at the initial level
        initial_e = float(GRAPH.weights[GRAPH.index(f"E_{c.id}")] * plan["alpha"])
        undecided = d.verdict.startswith(("undecided", "open"))
        rows.append(
            {
                "contrast": c.id,
                "case": c.case,
                "look": d.look,
                "n": d.n,
                "effect": m,
                "ci_low": lo,
                "ci_high": hi,
                "p_t": d.local.p_t,
                "p_signflip": d.local.p_signflip,
                "p_direction": d.local.p_direction,
                "level_direction": level_d,
                "nominal_direction": nominal_d,
                "p_tost": d.local.p_tost,
                "p_tost_signflip": d.local.p_tost_signflip,
                "p_equivalence": d.local.p_equivalence,
                "level_equivalence": level_e,
                "nominal_equivalence": nominal_e,
                "verdict": d.verdict,
                "clean_effect": clean[0],
                "clean_ci_low": clean[2],
                "clean_ci_high": clean[3],
                "drop_effect": drop[0],
                "drop_ci_low": drop[2],
                "drop_ci_high": drop[3],
                "window": window_label(tables, scale, c, d, points, v2),
                "sign_pattern": sign_pattern(points),
                "band_max_high": float(points["band_high"].max()),
                **{
                    k: mag.get(k, np.nan if k != "magnitude_points" and k != "magnitude_relative" else "")
                    for k in MAGNITUDE
                },
                "seeds_needed": _needed(sesoi, sd, initial_d, plan["power"], d.n, False) if undecided else "",
                "tost_seeds_needed": _needed(sesoi, sd, initial_e, plan["power"], d.n, True) if undecided else "",
                **{k: sens.get(k, np.nan) for k in V3_COLUMNS if k.startswith("sensitivity_")},
            }
        )
    return pd.DataFrame(rows, columns=V3_COLUMNS), pd.concat(bands, ignore_index=True)


def v3_tables(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, v2: pd.DataFrame | None = None
) -> dict[str, tuple[pd.DataFrame, list[str], list[str]]]:
    """Every plan-v3 table of a scale by file stem: (rows, columns, sort): verdicts_v3, per_rate_v3, claim2_v3."""
    from .claim2_v3 import CLAIM2_COLUMNS, claim2_v3

    verdicts, per = evaluate_v3(tables, scale, PLAN3, v2)
    claim2 = claim2_v3(tables, scale, PLAN3, V2_PLAN.scales[scale.name].full_seeds)
    return {
        "verdicts_v3": (verdicts, V3_COLUMNS, ["contrast"]),
        "per_rate_v3": (per, PER_RATE_COLUMNS, ["contrast", "fault_model", "rate"]),
        "claim2_v3": (claim2, CLAIM2_COLUMNS, ["case"]),
    }
