"""The FlatENN paper's claims as data, and their evaluation from recorded tables.

A claim has one or more *cases* (claim id + metric). Each case computes an effect with a 95% CI
from the tables of one scale. Hypothesis cases (``direction=+1``: the claim predicts a positive
effect) get a verdict: ``supported`` (CI above 0), ``contradicted`` (CI below 0) or
``inconclusive``. Context cases (``direction=0``) are ``reported`` only.

Effects compare models trained with the same seed and evaluated under the same fault maps
(common random numbers): for each training seed the paired difference is averaged over the fault
trials and the scale's *informative* rates of all fault models; the effect is the mean over seeds
and its CI a Student-t interval over seeds (so it contains training-seed variation). ``up_to``
cases take the largest mean paired difference over all (fault model, rate) points — the statistic
behind the paper's "up to X%" — and are context only (selected maxima are biased upward).

Bands: ``paper`` scales' bands come from the paper's numbers (tolerance stated in ``PAPER_BAND``);
``smoke``/``cpu`` bands come from our own recorded runs (``flatenn/bands/<scale>.json``, written by
``python -m flatenn bands``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .scales import ScaleConfig
from .stats import mean_ci, spearman

BANDS_DIR = Path(__file__).parent / "bands"
SHARP_METRICS = ("lambda_max_fn", "trace_fn", "avg_sharpness")
PAPER_BAND = (0.5, 1.5)  # paper scale: the effect must lie in [0.5 x min(paper values), 1.5 x max(...)]


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


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("sparse_vs_standard",
          "Activation-sparse QDNNs lose more accuracy under weight faults than standard QDNNs "
          "(accuracy(standard,SGD) - accuracy(sparse,SGD) under faults > 0).",
          "arXiv 2301.00675 abstract: 'up to 17.32% lower accuracy' (v1); 11.13% (revision)",
          (17.32, 11.13), ("sparse",), ("standard-sgd", "sparse-sgd"),
          metrics=(("acc_gap", 1, "accuracy points"), ("drop_gap", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points"))),
    Claim("sharper_minima",
          "A main cause is sharper minima: sparse models have sharper loss minima than standard ones, and "
          "sharpness tracks the accuracy lost under faults.",
          "arXiv 2301.00675, Sec. 4 (loss-landscape analysis)", (), ("sharp", "sparse"),
          ("standard-sgd", "sparse-sgd", "standard-saq", "sparse-saq"), sharpness=True,
          metrics=tuple((f"diff_{m}", 1, "metric units") for m in SHARP_METRICS)
          + tuple((f"spearman_{m}", 1, "Spearman rho") for m in SHARP_METRICS)),
    Claim("saq_gain_sparse",
          "SAQ training raises the accuracy of activation-sparse QDNNs under faults "
          "(accuracy(sparse,SAQ) - accuracy(sparse,SGD) > 0).",
          "arXiv 2301.00675 abstract: 'up to 36.71%' (v1); 19.50% (revision)", (36.71, 19.50),
          ("saq", "sparse"), ("sparse-sgd", "sparse-saq"),
          metrics=(("acc_gain", 1, "accuracy points"), ("drop_gain", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points"))),
    Claim("saq_gain_standard",
          "SAQ training raises the accuracy of standard QDNNs under faults "
          "(accuracy(standard,SAQ) - accuracy(standard,SGD) > 0).",
          "arXiv 2301.00675 abstract: 'up to 24.76%' (v1); 15.82% (revision)", (24.76, 15.82),
          ("saq",), ("standard-sgd", "standard-saq"),
          metrics=(("acc_gain", 1, "accuracy points"), ("drop_gain", 1, "accuracy points"),
                   ("up_to", 0, "accuracy points"))),
    Claim("saq_sparse_beats_standard",
          "SAQ-trained sparse QDNNs beat conventionally trained standard QDNNs under faults "
          "(accuracy(sparse,SAQ) - accuracy(standard,SGD) > 0).",
          "arXiv 2301.00675 abstract and conclusion", (), ("saq", "sparse"), ("standard-sgd", "sparse-saq"),
          metrics=(("acc_gap", 1, "accuracy points"), ("drop_gap", 1, "accuracy points"))),
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


def cases() -> list[Case]:
    return [Case(c.id, m, d, u) for c in CLAIMS.values() for m, d, u in c.metrics]


def verdict(direction: int, lo: float, hi: float) -> str:
    if direction == 0:
        return "reported"
    if np.isnan(lo) or np.isnan(hi):
        return "inconclusive"
    if direction * lo > 0 and direction * hi > 0:
        return "supported"
    if direction * lo < 0 and direction * hi < 0:
        return "contradicted"
    return "inconclusive"


# ---- effect computations ---------------------------------------------------------------------

_PAIR = ["fault_model", "bits", "rate", "count", "seed", "trial"]


def _paired_by_seed(camp: pd.DataFrame, a: str, b: str, seeds, value: str) -> pd.DataFrame:
    """Per (train seed, fault model, rate): mean over trials of value(a) - value(b)."""
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


def _informative(per: pd.DataFrame, scale: ScaleConfig) -> pd.DataFrame:
    keep = np.zeros(len(per), bool)
    for fm, rates in scale.informative_rates.items():
        keep |= (per["fault_model"] == fm).to_numpy() & np.isin(per["rate"].round(12), np.round(rates, 12))
    return per[keep]


def _campaign_effect(camp, scale, better: str, worse: str, view: str):
    """Effect that is positive when ``worse`` is the more fault-vulnerable model.

    view ``acc``: accuracy(better) - accuracy(worse); ``drop``: drop(worse) - drop(better).
    Returns (summary tuple, per-point detail frame).
    """
    if view == "acc":
        per = _paired_by_seed(camp, better, worse, scale.seeds, "accuracy")
    else:
        per = _paired_by_seed(_with_drop(camp), worse, better, scale.seeds, "drop")
    inf = _informative(per, scale)
    seed_means = inf.groupby("train_seed")["diff"].mean()
    m, _, lo, hi, n = mean_ci(seed_means.to_numpy())
    detail = []
    for (fm, r), g in per.groupby(["fault_model", "rate"]):
        pm, _, plo, phi, pn = mean_ci(g["diff"].to_numpy())
        detail.append({"fault_model": fm, "rate": r, "effect": pm, "ci_low": plo, "ci_high": phi, "n_seeds": pn})
    return (m, lo, hi, n, ""), pd.DataFrame(detail)


def _up_to(detail: pd.DataFrame):
    row = detail.loc[detail["effect"].idxmax()]
    return (float(row["effect"]), float(row["ci_low"]), float(row["ci_high"]), int(row["n_seeds"]),
            f"at {row['fault_model']} rate {row['rate']:g}")  # fmt: skip


def _model_drop(camp: pd.DataFrame, scale: ScaleConfig, fault_models=None) -> pd.Series:
    """Mean accuracy drop per model over the informative rates (of the given fault models)."""
    per = _with_drop(camp).groupby(["model_id", "fault_model", "rate"])["drop"].mean().reset_index()
    per = _informative(per, scale)
    if fault_models is not None:
        per = per[per["fault_model"].isin(fault_models)]
    return per.groupby("model_id")["drop"].mean()


def _seed_diff(values: pd.Series, a: str, b: str, seeds) -> tuple:
    missing = [m for s in seeds for m in (f"{a}-s{s}", f"{b}-s{s}") if m not in values.index]
    if missing:
        raise LookupError(f"not recorded: {missing}")
    diffs = [values[f"{a}-s{s}"] - values[f"{b}-s{s}"] for s in seeds]
    m, _, lo, hi, n = mean_ci(diffs)
    return m, lo, hi, n, ""


_NEEDS = {"sparse_vs_standard": ("campaign",), "saq_gain_sparse": ("campaign",), "saq_gain_standard": ("campaign",),
          "saq_sparse_beats_standard": ("campaign",), "sharper_minima": ("sharpness", "campaign"),
          "clean_accuracy_cost": ("training",), "sparsity_level": ("sparsity",),
          "sparsity_sweep": ("sparsity", "campaign"), "bit_sensitivity": ("sharpness", "campaign")}  # fmt: skip


def evaluate_case(case: Case, tables: dict[str, pd.DataFrame], scale: ScaleConfig):
    """Compute one case: returns ((effect, ci_low, ci_high, n, note), detail frame or None)."""
    c = CLAIMS[case.claim]
    for name in _NEEDS[case.claim]:
        if name not in tables or len(tables[name]) == 0:
            raise LookupError(f"{case.id} needs {name}.csv, which is not recorded")
    camp, training = tables.get("campaign"), tables.get("training")
    if case.claim in ("sparse_vs_standard", "saq_gain_sparse", "saq_gain_standard", "saq_sparse_beats_standard"):
        better, worse = {"sparse_vs_standard": ("standard-sgd", "sparse-sgd"),
                         "saq_gain_sparse": ("sparse-saq", "sparse-sgd"),
                         "saq_gain_standard": ("standard-saq", "standard-sgd"),
                         "saq_sparse_beats_standard": ("sparse-saq", "standard-sgd")}[case.claim]  # fmt: skip
        view = "drop" if case.metric.startswith("drop") else "acc"
        summary, detail = _campaign_effect(camp, scale, better, worse, view)
        if case.metric == "up_to":
            return _up_to(detail), detail
        return summary, detail
    if case.claim == "sharper_minima":
        sharp = tables["sharpness"]
        name = case.metric.split("_", 1)[1]
        vals = sharp[sharp["metric"] == name].set_index("model_id")["value"]
        if case.metric.startswith("diff_"):
            return _seed_diff(vals, "sparse-sgd", "standard-sgd", scale.seeds), None
        drop = _model_drop(camp, scale)
        common = vals.index.intersection(drop.index)
        if len(common) < 4:
            raise LookupError(f"too few models with both {name} and campaigns")
        rho, lo, hi, n = spearman(vals[common].to_numpy(), drop[common].to_numpy())
        return (rho, lo, hi, n, f"over {n} models"), None
    if case.claim == "bit_sensitivity":
        pred = tables["sharpness"]
        pred = pred[pred["metric"] == "bit_sensitivity"].set_index("model_id")["value"]
        c = camp[(camp["fault_model"] == "bitflip") & np.isclose(camp["rate"], scale.sensitivity_rate)]
        measured = (c["loss"] - c["clean_loss"]).groupby(c["model_id"]).mean()
        common = pred.index.intersection(measured.index)
        if len(common) < 4:
            raise LookupError("bit_sensitivity or the campaign at the sensitivity rate is not recorded")
        if case.metric == "ratio":
            m, _, lo, hi, n = mean_ci((pred[common] / measured[common]).to_numpy())
            return (m, lo, hi, n, f"bitflip at rate {scale.sensitivity_rate:g}, mean over {n} models"), None
        rho, lo, hi, n = spearman(pred[common].to_numpy(), measured[common].to_numpy())
        return (rho, lo, hi, n, f"over {n} models"), None
    if case.claim == "clean_accuracy_cost":
        acc = training.set_index("model_id")["clean_accuracy"]
        a, b = {"sparsity_cost": ("standard-sgd", "sparse-sgd"), "saq_cost_standard": ("standard-sgd", "standard-saq"),
                "saq_cost_sparse": ("sparse-sgd", "sparse-saq")}[case.metric]  # fmt: skip
        return _seed_diff(acc, a, b, scale.seeds), None
    if case.claim == "sparsity_level":
        sp = tables["sparsity"]
        overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"] * 100
        if not all(f"{case.metric}-s{s}" in overall.index for s in scale.seeds):
            raise LookupError(f"sparsity of {case.metric} not recorded")
        m, _, lo, hi, n = mean_ci([overall[f"{case.metric}-s{s}"] for s in scale.seeds])
        return (m, lo, hi, n, ""), None
    if case.claim == "sparsity_sweep":
        sp = tables["sparsity"]
        overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"]
        drop = _model_drop(camp, scale, [scale.sweep_fault_model])
        ids = [f"{v}-s{s}" for v in scale.sweep_variants() for s in scale.seeds]
        ids = [i for i in ids if i in overall.index and i in drop.index]
        if len(ids) < 4:
            raise LookupError("the threshold sweep is not recorded")
        rho, lo, hi, n = spearman(overall[ids].to_numpy(), drop[ids].to_numpy())
        return (rho, lo, hi, n, f"over {n} models, {scale.sweep_fault_model}"), None
    raise KeyError(f"no evaluation for {c.id}")


# ---- bands -----------------------------------------------------------------------------------


def load_bands(scale: str) -> dict[str, dict]:
    """Recorded bands of a scale (case id -> band), or the paper-derived ones for paper scales."""
    if scale.startswith("paper"):
        out = {}
        for case in cases():
            vals = CLAIMS[case.claim].paper_values
            if case.metric == "up_to" and vals:
                out[case.id] = {"low": PAPER_BAND[0] * min(vals), "high": PAPER_BAND[1] * max(vals),
                                "expected_verdict": "reported",
                                "source": f"paper values {vals}, tolerance x{PAPER_BAND}"}  # fmt: skip
            elif case.direction:
                out[case.id] = {"low": None, "high": None, "expected_verdict": "supported",
                                "source": "the paper's claim (direction only)"}  # fmt: skip
        return out
    path = BANDS_DIR / f"{scale}.json"
    return json.loads(path.read_text())["bands"] if path.is_file() else {}


CLAIM_COLUMNS = ["claim", "metric", "case", "effect", "ci_low", "ci_high", "n", "unit", "direction", "verdict",
                 "expected_verdict", "band_low", "band_high", "in_band", "paper_values", "note"]  # fmt: skip
DETAIL_COLUMNS = ["claim", "metric", "fault_model", "rate", "effect", "ci_low", "ci_high", "n_seeds"]


def claim_row(case: Case, result: tuple, band: dict | None) -> dict:
    m, lo, hi, n, note = result
    b = band or {}
    blo, bhi = b.get("low"), b.get("high")
    in_band = (blo is None or m >= blo) and (bhi is None or m <= bhi)
    return {"claim": case.claim, "metric": case.metric, "case": case.id, "effect": m, "ci_low": lo, "ci_high": hi,
            "n": n, "unit": case.unit, "direction": case.direction, "verdict": verdict(case.direction, lo, hi),
            "expected_verdict": b.get("expected_verdict", ""),
            "band_low": np.nan if blo is None else blo, "band_high": np.nan if bhi is None else bhi,
            "in_band": bool(in_band) if band else True,
            "paper_values": "/".join(f"{v:g}" for v in CLAIMS[case.claim].paper_values), "note": note}  # fmt: skip


def evaluate_all(tables: dict[str, pd.DataFrame], scale: ScaleConfig, only: list[str] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Evaluate every case (or those ids in ``only``) whose inputs exist: (claims, details)."""
    bands = load_bands(scale.name)
    rows, details = [], []
    for case in cases():
        if only is not None and case.id not in only:
            continue
        try:
            result, detail = evaluate_case(case, tables, scale)
        except LookupError:
            continue  # inputs for this case are not recorded at this scale
        rows.append(claim_row(case, result, bands.get(case.id)))
        if detail is not None and case.metric != "up_to":
            details.append(detail.assign(claim=case.claim, metric=case.metric))
    claims = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    detail = pd.concat(details, ignore_index=True) if details else pd.DataFrame(columns=DETAIL_COLUMNS)
    return claims, detail[DETAIL_COLUMNS]
