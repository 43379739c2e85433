"""The FlatENN paper's claims as data, and their evaluation from recorded tables.

A claim has one or more *cases* (claim id + metric). Each case computes an effect with a 95% CI
from the tables of one scale; the analysis plan below is fixed before a run.

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

from ..analysis.stats import ALPHA, clustered_spearman, holm, mean_ci, t_test, tost
from .scales import ScaleConfig

BANDS_DIR = Path(__file__).parent / "bands"
SHARP_METRICS = ("lambda_max_fn", "trace_fn", "avg_sharpness")
DECISIVE = ("supported", "contradicted", "equivalent")
MAGNITUDES = ("reaches published", "below published", "above published")
RHO_SESOI = 0.3  # correlations: |rho| < 0.3 counts as no meaningful association (declared before the runs)


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str
    paper_values: tuple[float, ...] = ()
    family: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    campaign: bool = True
    sharpness: bool = False
    sparsity: bool = False
    sweep: bool = False
    metrics: tuple[tuple[str, int, str], ...] = field(default_factory=tuple)  # (metric, direction, unit)
    sesoi: float | None = None  # smallest effect of interest of the accuracy cases (points)
    sesoi_reason: str = ""


def _quarter(values: tuple[float, ...]) -> float:
    return round(0.25 * min(values), 4)


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("sparse_vs_standard",
          "Activation-sparse QDNNs lose more accuracy under weight faults than standard QDNNs "
          "(accuracy(standard,SGD) - accuracy(sparse,SGD) under faults > 0).",
          "arXiv 2301.00675 abstract: 'up to 17.32% lower accuracy' (v1); 11.13% (revision)",
          (17.32, 11.13), ("sparse",), ("standard-sgd", "sparse-sgd"),
          metrics=(("acc_gap", 1, "accuracy points"), ("drop_gap", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points")),
          sesoi=_quarter((17.32, 11.13)), sesoi_reason="a quarter of the smaller published value (11.13)"),
    Claim("sharper_minima",
          "The accuracy loss of sparse models correlates with sharper minima: sparse models have sharper loss "
          "minima than standard ones, and sharpness tracks the accuracy lost under faults (v1 called sharpness "
          "'a main cause'; the revision says the loss correlates with it).",
          "arXiv 2301.00675, Sec. 4 (loss-landscape analysis), v1 and revision", (), ("sharp", "sparse"),
          ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"), sharpness=True,
          metrics=tuple((f"diff_{m}", 1, "metric units") for m in SHARP_METRICS)
          + tuple((f"spearman_{m}", 1, "Spearman rho") for m in SHARP_METRICS)),
    Claim("saq_gain_sparse",
          "SAQ training raises the accuracy of activation-sparse QDNNs under faults "
          "(accuracy(sparse,SAQ) - accuracy(sparse,SGD) > 0).",
          "arXiv 2301.00675 abstract: 'up to 36.71%' (v1); 19.50% (revision)", (36.71, 19.50),
          ("saq", "sparse"), ("sparse-sgd", "sparse-saq"),
          metrics=(("acc_gain", 1, "accuracy points"), ("drop_gain", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points")),
          sesoi=_quarter((36.71, 19.50)), sesoi_reason="a quarter of the smaller published value (19.50)"),
    Claim("saq_gain_standard",
          "SAQ training raises the accuracy of standard QDNNs under faults "
          "(accuracy(standard,SAQ) - accuracy(standard,SGD) > 0).",
          "arXiv 2301.00675 abstract: 'up to 24.76%' (v1); 15.82% (revision)", (24.76, 15.82),
          ("saq",), ("standard-sgd", "standard-saq"),
          metrics=(("acc_gain", 1, "accuracy points"), ("drop_gain", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points")),
          sesoi=_quarter((24.76, 15.82)), sesoi_reason="a quarter of the smaller published value (15.82)"),
    Claim("saq_sparse_beats_standard",
          "SAQ-trained sparse QDNNs beat conventionally trained standard QDNNs under faults "
          "(accuracy(sparse,SAQ) - accuracy(standard,SGD) > 0).",
          "arXiv 2301.00675 abstract and conclusion", (), ("saq", "sparse"), ("standard-sgd", "sparse-saq"),
          metrics=(("acc_gap", 1, "accuracy points"), ("drop_gap", 1, "accuracy points")),
          sesoi=1.0, sesoi_reason="no published number; 1 accuracy point, the smallest gain a deployment choice "
          "between two int8 models would hinge on"),
    Claim("clean_accuracy_cost",
          "Context: clean accuracy given up for sparsity and for SAQ (positive = cost).",
          "not a paper claim; reported beside every fault result", (), ("sparse", "saq"),
          ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"), campaign=False,
          metrics=(("sparsity_cost", 0, "accuracy points"), ("saq_cost_standard", 0, "accuracy points"),
                   ("saq_cost_sparse", 0, "accuracy points"))),
    Claim("sparsity_level",
          "Context: activation sparsity reached by each variant (percent zeros after activations).",
          "not a paper claim; the paper's AS models use FATReLU thresholds", (), ("sparse",),
          ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"), campaign=False, sparsity=True,
          metrics=tuple((v, 0, "percent") for v in ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"))),
    Claim("bit_sensitivity",
          "Link between curvature and faults: the Hessian-diagonal bit-error sensitivity predicts each model's "
          "mean loss increase under bit flips (ratio predicted/measured; Spearman rank agreement over models).",
          "not a paper claim; tests the mechanism behind claim 2 (second-order expansion of the loss)", (),
          ("sharp",), ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"), sharpness=True,
          metrics=(("ratio", 0, "predicted / measured"), ("spearman", 1, "Spearman rho"))),
    Claim("sparsity_sweep",
          "A high level of sparsity comes at the cost of larger vulnerability: accuracy drop under bit flips "
          "rises with activation sparsity across FATReLU thresholds.",
          "arXiv 2301.00675, Sec. 3-4", (), ("sparse",), (), sweep=True,
          metrics=(("spearman_sparsity_drop", 1, "Spearman rho"),)),
]}  # fmt: skip


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


def cases() -> list[Case]:
    return [Case(c.id, m, d, u) for c in CLAIMS.values() for m, d, u in c.metrics]


def hypothesis_family(claims: tuple[str, ...] | None = None) -> list[str]:
    """The multiplicity family: every hypothesis case of a scale (of the scale's claims when it names them)."""
    return [c.id for c in cases() if c.direction and (claims is None or c.claim in claims)]


@dataclass
class Result:
    """One case's numbers under one rate window."""

    effect: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float = float("nan")
    p_equivalence: float = float("nan")
    note: str = ""
    detail: pd.DataFrame | None = None


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


# ---- effect computations ---------------------------------------------------------------------

_PAIR = ["fault_model", "bits", "layers", "n_eval", "rate", "count", "seed", "trial"]


def _main_rows(camp: pd.DataFrame) -> pd.DataFrame:
    """The claims' campaign rows: every bit position, every layer."""
    return camp[(camp["bits"] == "all") & (camp["layers"] == "all")]


def _paired_by_seed(camp: pd.DataFrame, a: str, b: str, seeds, value: str) -> pd.DataFrame:
    """Per (train seed, fault model, rate): mean over shared fault maps of value(a) - value(b)."""
    frames = []
    for s in seeds:
        ra = camp[camp["model_id"] == f"{a}-s{s}"].set_index(_PAIR)[value]
        rb = camp[camp["model_id"] == f"{b}-s{s}"].set_index(_PAIR)[value]
        j = pd.concat({"a": ra, "b": rb}, axis=1, join="inner").dropna()
        if j.empty:
            raise LookupError(f"no shared campaign rows for {a}-s{s} and {b}-s{s}")
        d = (j["a"] - j["b"]).groupby(level=["fault_model", "rate"]).mean().reset_index(name="diff")
        frames.append(d.assign(train_seed=s))
    return pd.concat(frames, ignore_index=True)


def _with_drop(camp: pd.DataFrame) -> pd.DataFrame:
    return camp.assign(drop=camp["clean_accuracy"] - camp["accuracy"])


def _in_window(per: pd.DataFrame, rates: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    keep = np.zeros(len(per), bool)
    for fm, rs in rates.items():
        keep |= (per["fault_model"] == fm).to_numpy() & np.isin(per["rate"].round(12), np.round(rs, 12))
    return per[keep]


def _seed_level(values: np.ndarray, sesoi: float, note: str = "") -> Result:
    m, _, lo, hi, n = mean_ci(values)
    return Result(m, lo, hi, n, t_test(values), tost(values, sesoi), note)


def seed_effects(case: Case, tables: dict[str, pd.DataFrame], scale: ScaleConfig,
                 window: str = "informative") -> pd.Series:  # fmt: skip
    """Per-training-seed effect of a campaign case (acc/drop views), the values its t interval is over."""
    better, worse = _PAIRS[case.claim]
    camp = _main_rows(tables["campaign"])
    view = "drop" if case.metric.startswith("drop") else "acc"
    if view == "acc":
        per = _paired_by_seed(camp, better, worse, scale.seeds, "accuracy")
    else:
        per = _paired_by_seed(_with_drop(camp), worse, better, scale.seeds, "drop")
    return _in_window(per, window_rates(scale, window)).groupby("train_seed")["diff"].mean()


def _campaign_effect(camp, scale, better: str, worse: str, view: str, rates, sesoi: float) -> Result:
    """Effect that is positive when ``worse`` is the more fault-vulnerable model.

    view ``acc``: accuracy(better) - accuracy(worse); ``drop``: drop(worse) - drop(better).
    """
    camp = _main_rows(camp)
    if view == "acc":
        per = _paired_by_seed(camp, better, worse, scale.seeds, "accuracy")
    else:
        per = _paired_by_seed(_with_drop(camp), worse, better, scale.seeds, "drop")
    seed_means = _in_window(per, rates).groupby("train_seed")["diff"].mean()
    res = _seed_level(seed_means.to_numpy(), sesoi)
    detail = []
    for (fm, r), g in per.groupby(["fault_model", "rate"]):
        pm, _, plo, phi, pn = mean_ci(g["diff"].to_numpy())
        detail.append({"fault_model": fm, "rate": r, "effect": pm, "ci_low": plo, "ci_high": phi, "n_seeds": pn})
    res.detail = pd.DataFrame(detail)
    return res


def _up_to(detail: pd.DataFrame) -> Result:
    row = detail.loc[detail["effect"].idxmax()]
    return Result(float(row["effect"]), float(row["ci_low"]), float(row["ci_high"]), int(row["n_seeds"]),
                  note=f"largest per-point effect: {row['fault_model']} at rate {row['rate']:g}")  # fmt: skip


def _model_drop(camp: pd.DataFrame, rates, fault_models=None) -> pd.DataFrame:
    """Mean accuracy drop per model over a window's rates (of the given fault models), with its train seed."""
    per = _with_drop(_main_rows(camp)).groupby(["model_id", "train_seed", "fault_model", "rate"])["drop"]
    per = _in_window(per.mean().reset_index(), rates)
    if fault_models is not None:
        per = per[per["fault_model"].isin(fault_models)]
    return per.groupby(["model_id", "train_seed"])["drop"].mean().reset_index().set_index("model_id")


def _seed_diff(values: pd.Series, a: str, b: str, seeds, sesoi: float = float("nan")) -> Result:
    missing = [m for s in seeds for m in (f"{a}-s{s}", f"{b}-s{s}") if m not in values.index]
    if missing:
        raise LookupError(f"not recorded: {missing}")
    return _seed_level(np.array([values[f"{a}-s{s}"] - values[f"{b}-s{s}"] for s in seeds]), sesoi)


def _correlation(x: pd.Series, y: pd.Series, clusters: pd.Series, sesoi: float, note: str) -> Result:
    common = x.index.intersection(y.index).intersection(clusters.index)
    if len(common) < 4:
        raise LookupError("too few models for a correlation")
    c = clustered_spearman(x[common].to_numpy(), y[common].to_numpy(), clusters[common].to_numpy(), sesoi)
    return Result(c.rho, c.ci_low, c.ci_high, c.n_points, c.p_value, c.p_equivalence,
                  f"{note}; {c.n_points} models in {c.n_clusters} seed clusters")  # fmt: skip


_NEEDS = {"sparse_vs_standard": ("campaign",), "saq_gain_sparse": ("campaign",), "saq_gain_standard": ("campaign",),
          "saq_sparse_beats_standard": ("campaign",), "sharper_minima": ("sharpness", "campaign"),
          "clean_accuracy_cost": ("training",), "sparsity_level": ("sparsity",),
          "sparsity_sweep": ("sparsity", "campaign"), "bit_sensitivity": ("sharpness", "campaign")}  # fmt: skip
_PAIRS = {"sparse_vs_standard": ("standard-sgd", "sparse-sgd"), "saq_gain_sparse": ("sparse-saq", "sparse-sgd"),
          "saq_gain_standard": ("standard-saq", "standard-sgd"),
          "saq_sparse_beats_standard": ("sparse-saq", "standard-sgd")}  # fmt: skip


def evaluate_case(case: Case, tables: dict[str, pd.DataFrame], scale: ScaleConfig,
                  window: str = "informative") -> Result:  # fmt: skip
    """Compute one case under one rate window; raises LookupError when its inputs are not recorded."""
    for name in _NEEDS[case.claim]:
        if name not in tables or len(tables[name]) == 0:
            raise LookupError(f"{case.id} needs {name}.csv, which is not recorded")
    camp, training = tables.get("campaign"), tables.get("training")
    rates = window_rates(scale, window)
    if case.claim in _PAIRS:
        better, worse = _PAIRS[case.claim]
        view = "drop" if case.metric.startswith("drop") else "acc"
        res = _campaign_effect(camp, scale, better, worse, view, rates, case.sesoi)
        return _up_to(res.detail) if case.metric == "up_to" else res
    if case.claim in ("sharper_minima", "bit_sensitivity"):
        sharp = tables["sharpness"]
        seeds_of = sharp.drop_duplicates("model_id").set_index("model_id")["train_seed"]
    if case.claim == "sharper_minima":
        name = case.metric.split("_", 1)[1]
        vals = sharp[sharp["metric"] == name].set_index("model_id")["value"]
        if case.metric.startswith("diff_"):
            return _seed_diff(vals, "sparse-sgd", "standard-sgd", scale.seeds)
        drop = _model_drop(camp, rates)
        return _correlation(vals, drop["drop"], seeds_of, case.sesoi, f"{name} vs accuracy drop")
    if case.claim == "bit_sensitivity":
        pred = sharp[sharp["metric"] == "bit_sensitivity"].set_index("model_id")["value"]
        c = _main_rows(camp)
        c = c[(c["fault_model"] == "bitflip") & np.isclose(c["rate"], scale.sensitivity_rate)]
        measured = (c["loss"] - c["clean_loss"]).groupby(c["model_id"]).mean()
        common = pred.index.intersection(measured.index)
        if len(common) < 4:
            raise LookupError("bit_sensitivity or the campaign at the sensitivity rate is not recorded")
        if case.metric == "ratio":
            ratio = (pred[common] / measured[common]).groupby(seeds_of[common]).mean()
            res = _seed_level(ratio.to_numpy(), float("nan"))
            res.note = f"bitflip at rate {scale.sensitivity_rate:g}; per-seed mean over models, t over seeds"
            return res
        return _correlation(pred, measured, seeds_of, case.sesoi, "predicted vs measured loss increase")
    if case.claim == "clean_accuracy_cost":
        acc = training.set_index("model_id")["clean_accuracy"]
        a, b = {"sparsity_cost": ("standard-sgd", "sparse-sgd"), "saq_cost_standard": ("standard-sgd", "standard-saq"),
                "saq_cost_sparse": ("sparse-sgd", "sparse-saq")}[case.metric]  # fmt: skip
        return _seed_diff(acc, a, b, scale.seeds)
    if case.claim == "sparsity_level":
        sp = tables["sparsity"]
        overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"] * 100
        if not all(f"{case.metric}-s{s}" in overall.index for s in scale.seeds):
            raise LookupError(f"sparsity of {case.metric} not recorded")
        return _seed_level(np.array([overall[f"{case.metric}-s{s}"] for s in scale.seeds]), float("nan"))
    if case.claim == "sparsity_sweep":
        sp = tables["sparsity"]
        overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"]
        drop = _model_drop(camp, rates, [scale.sweep_fault_model])
        ids = [f"{v}-s{s}" for v in scale.sweep_variants() for s in scale.seeds]
        ids = [i for i in ids if i in overall.index and i in drop.index]
        if len(ids) < 4:
            raise LookupError("the threshold sweep is not recorded")
        return _correlation(overall[ids], drop.loc[ids, "drop"], drop.loc[ids, "train_seed"], case.sesoi,
                            f"sparsity vs {scale.sweep_fault_model} accuracy drop")  # fmt: skip
    raise KeyError(f"no evaluation for {case.id}")


# ---- reference values (recorded runs) and paper expectations --------------------------------


def load_bands(scale: str) -> dict[str, dict]:
    """Reference per case: the recorded effect, CI and verdicts (smoke/cpu), or the paper's expectation."""
    if scale.startswith("paper"):
        out = {}
        for case in cases():
            if case.compared_with_paper:
                out[case.id] = {"expected_verdict": "reported", "expected_magnitude": "reaches published",
                                "source": f"paper values {CLAIMS[case.claim].paper_values}"}  # fmt: skip
            elif case.direction:
                out[case.id] = {"expected_verdict": "supported", "expected_magnitude": "",
                                "source": "the paper's claim (direction only)"}  # fmt: skip
        return out
    path = BANDS_DIR / f"{scale}.json"
    return json.loads(path.read_text())["bands"] if path.is_file() else {}


CLAIM_COLUMNS = ["claim", "metric", "case", "effect", "ci_low", "ci_high", "n", "unit", "direction", "p_value",
                 "p_holm", "sesoi", "p_equivalence", "p_equivalence_holm", "verdict_unadjusted", "verdict",
                 "paper_values", "magnitude", "verdict_all_rates", "verdict_window_down", "verdict_window_up",
                 "window_stable", "family_complete", "note"]  # fmt: skip
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


def _verdicts(results: dict[str, Result], by_id: dict[str, Case], family: list[str]
              ) -> tuple[dict[str, str], dict, dict, bool]:  # fmt: skip
    p = {cid: r.p_value for cid, r in results.items() if by_id[cid].direction}
    pe = {cid: r.p_equivalence for cid, r in results.items() if by_id[cid].direction}
    p_adj, complete = adjust(p, family)
    pe_adj, _ = adjust(pe, family)
    out = {cid: direction_verdict(by_id[cid].direction, r.effect, p_adj.get(cid, np.nan), pe_adj.get(cid, np.nan))
           for cid, r in results.items()}  # fmt: skip
    return out, p_adj, pe_adj, complete


def evaluate_all(tables: dict[str, pd.DataFrame], scale: ScaleConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every case whose inputs exist, under every window: (claims, per-point details)."""
    by_id = {c.id: c for c in cases()}
    family = hypothesis_family(scale.claims)
    per_window: dict[str, dict[str, Result]] = {}
    for w in WINDOWS:
        res = {}
        for case in cases():
            if scale.claims is not None and case.claim not in scale.claims:
                continue
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
        rows.append({"claim": case.claim, "metric": case.metric, "case": cid, "effect": r.effect, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "n": r.n, "unit": case.unit, "direction": case.direction,
                     "p_value": r.p_value, "p_holm": p_adj.get(cid, np.nan), "sesoi": case.sesoi,
                     "p_equivalence": r.p_equivalence, "p_equivalence_holm": pe_adj.get(cid, np.nan),
                     "verdict_unadjusted": unadj, "verdict": v_main[cid],
                     "paper_values": "/".join(f"{v:g}" for v in paper),
                     "magnitude": magnitude_verdict(paper, r.ci_low, r.ci_high) if case.compared_with_paper else "",
                     "verdict_all_rates": others["all_rates"], "verdict_window_down": others["window_down"],
                     "verdict_window_up": others["window_up"],
                     "window_stable": all(v == v_main[cid] for v in others.values()),
                     "family_complete": complete, "note": r.note})  # fmt: skip
        if r.detail is not None and case.metric != "up_to":
            details.append(r.detail.assign(claim=case.claim, metric=case.metric))
    claims = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    detail = pd.concat(details, ignore_index=True) if details else pd.DataFrame(columns=DETAIL_COLUMNS)
    return claims, detail[DETAIL_COLUMNS]
