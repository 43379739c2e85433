"""The effect computations behind the claims: a handful of estimators, each named in claims.toml.

An estimator is ``f(metric, args, tables, scale, rates, sesoi) -> Result``: it computes one case (a
claim's metric) from the recorded tables of a scale under one rate window, or raises LookupError when
its inputs are not recorded. ``args`` are the claim's ``args`` in claims.toml. Add one by decorating a
function with :func:`estimator`.

* ``paired_contrast`` (args ``better``, ``worse``): per training seed, the mean over shared fault maps and
  the window's rates of accuracy(better) - accuracy(worse) (``acc_*``) or drop(worse) - drop(better)
  (``drop_*``); a t interval over seeds; ``up_to``: the largest per-point effect.
* ``sharpness_contrast`` (args ``sparse``, ``standard``): ``diff_<m>``, the per-seed difference of a
  sharpness metric; ``spearman_<m>``, its seed-clustered rank correlation with the accuracy drop.
* ``bit_sensitivity``: the Hessian-diagonal prediction of the loss increase against the campaign's.
* ``seed_difference`` (args: metric -> [a, b]): per-seed clean accuracy of a minus b.
* ``seed_value``: per-seed overall activation sparsity of the variant the metric names.
* ``sweep_correlation``: rank correlation of sparsity and accuracy drop over the threshold sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.stats import clustered_spearman, mean_ci, t_test, tost
from .rate_window import in_window
from .scales import ScaleConfig


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
    values: np.ndarray | None = None  # the per-seed values a t interval is over (seed-level cases)


Estimator = Callable[..., Result]
ESTIMATORS: dict[str, Estimator] = {}


def estimator(f: Estimator) -> Estimator:
    """Register an estimator under its function name (a decorator)."""
    ESTIMATORS[f.__name__] = f
    return f


_PAIR = ["fault_model", "bits", "layers", "n_eval", "rate", "count", "seed", "trial"]


def main_rows(camp: pd.DataFrame) -> pd.DataFrame:
    """The claims' campaign rows: every bit position, every layer, no inference-time protection."""
    keep = (camp["bits"] == "all") & (camp["layers"] == "all")
    if "protection" in camp.columns:
        keep &= camp["protection"] == "none"
    return camp[keep]


def per_point_accuracy(camp: pd.DataFrame, variant: str, seeds) -> pd.DataFrame:
    """Mean accuracy under faults per (train seed, fault model, rate) of one variant (main campaign rows)."""
    c = main_rows(camp)
    c = c[c["model_id"].isin([f"{variant}-s{s}" for s in seeds])]
    return c.groupby(["train_seed", "fault_model", "rate"])["accuracy"].mean().reset_index()


def paired_points(camp: pd.DataFrame, better: str, worse: str, seeds) -> pd.DataFrame:
    """Per (train seed, fault model, rate): accuracy(better) - accuracy(worse), mean over shared maps."""
    return paired_by_seed(main_rows(camp), better, worse, seeds, "accuracy")


def paired_by_seed(camp: pd.DataFrame, a: str, b: str, seeds, value: str) -> pd.DataFrame:
    """Per (train seed, fault model, rate): mean over shared fault maps of value(a) - value(b).

    Rows pair on the fault map (``_PAIR``); the differences are taken in ``a``'s row order and averaged per
    (fault model, rate). The table is grouped once per call (model rows, pairing codes), not once per seed.
    """
    where = camp.groupby("model_id", sort=False).indices if len(camp) else {}
    pair = camp.groupby(_PAIR, sort=True).ngroup().to_numpy() if len(camp) else np.empty(0, np.int64)
    vals = camp[value].to_numpy(dtype=float) if len(camp) else np.empty(0)
    frames = []
    for s in seeds:
        pa, pb = (np.asarray(where.get(f"{m}-s{s}", []), dtype=np.int64) for m in (a, b))
        ca, cb = pair[pa], pair[pb]
        order = np.argsort(cb, kind="stable")
        at = np.minimum(np.searchsorted(cb[order], ca), max(len(cb) - 1, 0))
        hit = (cb[order][at] == ca) if len(cb) else np.zeros(len(ca), dtype=bool)
        ia, ib = pa[hit], pb[order[at[hit]]]
        diff = vals[ia] - vals[ib]
        ok = ~np.isnan(diff)
        if not ok.any():
            raise LookupError(f"no shared campaign rows for {a}-s{s} and {b}-s{s}")
        rows = camp.iloc[ia[ok]][["fault_model", "rate"]].assign(diff=diff[ok])
        d = rows.groupby(["fault_model", "rate"])["diff"].mean().reset_index()
        frames.append(d.assign(train_seed=s))
    return pd.concat(frames, ignore_index=True)


def with_drop(camp: pd.DataFrame) -> pd.DataFrame:
    """The campaign rows with a ``drop`` column: clean accuracy minus accuracy under the faults."""
    return camp.assign(drop=camp["clean_accuracy"] - camp["accuracy"])


def _seed_level(values: np.ndarray, sesoi: float, note: str = "") -> Result:
    m, _, lo, hi, n = mean_ci(values)
    return Result(m, lo, hi, n, t_test(values), tost(values, sesoi), note, values=np.asarray(values, float))


def paired_seed_effects(
    args: dict, metric: str, tables: dict[str, pd.DataFrame], scale: ScaleConfig, rates: dict[str, tuple[float, ...]]
) -> pd.Series:
    """Per-training-seed effect of a paired contrast (acc/drop views), the values its t interval is over."""
    camp = main_rows(tables["campaign"])
    if metric.startswith("drop"):
        per = paired_by_seed(with_drop(camp), args["worse"], args["better"], scale.seeds, "drop")
    else:
        per = paired_by_seed(camp, args["better"], args["worse"], scale.seeds, "accuracy")
    return in_window(per, rates).groupby("train_seed")["diff"].mean()


def campaign_effect(camp, scale, better: str, worse: str, view: str, rates, sesoi: float) -> Result:
    """Effect that is positive when ``worse`` is the more fault-vulnerable model.

    view ``acc``: accuracy(better) - accuracy(worse); ``drop``: drop(worse) - drop(better).
    """
    camp = main_rows(camp)
    if view == "acc":
        per = paired_by_seed(camp, better, worse, scale.seeds, "accuracy")
    else:
        per = paired_by_seed(with_drop(camp), worse, better, scale.seeds, "drop")
    seed_means = in_window(per, rates).groupby("train_seed")["diff"].mean()
    res = _seed_level(seed_means.to_numpy(), sesoi)
    detail = []
    for (fm, r), g in per.groupby(["fault_model", "rate"]):
        pm, _, plo, phi, pn = mean_ci(g["diff"].to_numpy())
        detail.append({"fault_model": fm, "rate": r, "effect": pm, "ci_low": plo, "ci_high": phi, "n_seeds": pn})
    res.detail = pd.DataFrame(detail)
    return res


def _up_to(detail: pd.DataFrame) -> Result:
    row = detail.loc[detail["effect"].idxmax()]
    return Result(
        float(row["effect"]),
        float(row["ci_low"]),
        float(row["ci_high"]),
        int(row["n_seeds"]),
        note=f"largest per-point effect: {row['fault_model']} at rate {row['rate']:g}",
    )


def model_drop(camp: pd.DataFrame, rates, fault_models=None) -> pd.DataFrame:
    """Mean accuracy drop per model over a window's rates (of the given fault models), with its train seed."""
    per = with_drop(main_rows(camp)).groupby(["model_id", "train_seed", "fault_model", "rate"])["drop"]
    per = in_window(per.mean().reset_index(), rates)
    if fault_models is not None:
        per = per[per["fault_model"].isin(fault_models)]
    return per.groupby(["model_id", "train_seed"])["drop"].mean().reset_index().set_index("model_id")


def _seed_diff(values: pd.Series, a: str, b: str, seeds, sesoi: float = float("nan")) -> Result:
    missing = [m for s in seeds for m in (f"{a}-s{s}", f"{b}-s{s}") if m not in values.index]
    if missing:
        raise LookupError(f"not recorded: {missing}")
    return _seed_level(np.array([values[f"{a}-s{s}"] - values[f"{b}-s{s}"] for s in seeds]), sesoi)


def _correlation(x: pd.Series, y: pd.Series, clusters: pd.Series, sesoi: float, note: str, seeds=None) -> Result:
    common = x.index.intersection(y.index).intersection(clusters.index)
    if seeds is not None:  # only the models of the scale's seeds (a folder may hold more, e.g. plan v2's)
        common = common[clusters[common].isin(list(seeds)).to_numpy()]
    if len(common) < 4:
        raise LookupError("too few models for a correlation")
    c = clustered_spearman(x[common].to_numpy(), y[common].to_numpy(), clusters[common].to_numpy(), sesoi)
    return Result(
        c.rho,
        c.ci_low,
        c.ci_high,
        c.n_points,
        c.p_value,
        c.p_equivalence,
        f"{note}; {c.n_points} models in {c.n_clusters} seed clusters",
    )


@estimator
def paired_contrast(metric, args, tables, scale, rates, sesoi) -> Result:
    view = "drop" if metric.startswith("drop") else "acc"
    res = campaign_effect(tables["campaign"], scale, args["better"], args["worse"], view, rates, sesoi)
    return _up_to(res.detail) if metric == "up_to" else res


@estimator
def sharpness_contrast(metric, args, tables, scale, rates, sesoi) -> Result:
    sharp = tables["sharpness"]
    seeds_of = sharp.drop_duplicates("model_id").set_index("model_id")["train_seed"]
    name = metric.split("_", 1)[1]
    vals = sharp[sharp["metric"] == name].set_index("model_id")["value"]
    if metric.startswith("diff_"):
        return _seed_diff(vals, args["sparse"], args["standard"], scale.seeds)
    drop = model_drop(tables["campaign"], rates)
    return _correlation(vals, drop["drop"], seeds_of, sesoi, f"{name} vs accuracy drop", scale.seeds)


@estimator
def bit_sensitivity(metric, args, tables, scale, rates, sesoi) -> Result:
    sharp = tables["sharpness"]
    seeds_of = sharp.drop_duplicates("model_id").set_index("model_id")["train_seed"]
    pred = sharp[sharp["metric"] == "bit_sensitivity"].set_index("model_id")["value"]
    c = main_rows(tables["campaign"])
    c = c[(c["fault_model"] == "bitflip") & np.isclose(c["rate"], scale.sensitivity_rate)]
    measured = (c["loss"] - c["clean_loss"]).groupby(c["model_id"]).mean()
    common = pred.index.intersection(measured.index)
    common = common[seeds_of[common].isin(list(scale.seeds)).to_numpy()]
    if len(common) < 4:
        raise LookupError("bit_sensitivity or the campaign at the sensitivity rate is not recorded")
    if metric == "ratio":
        ratio = (pred[common] / measured[common]).groupby(seeds_of[common]).mean()
        res = _seed_level(ratio.to_numpy(), float("nan"))
        res.note = f"bitflip at rate {scale.sensitivity_rate:g}; per-seed mean over models, t over seeds"
        return res
    return _correlation(pred, measured, seeds_of, sesoi, "predicted vs measured loss increase", scale.seeds)


@estimator
def seed_difference(metric, args, tables, scale, rates, sesoi) -> Result:
    acc = tables["training"].set_index("model_id")["clean_accuracy"]
    a, b = args[metric]
    return _seed_diff(acc, a, b, scale.seeds)


@estimator
def seed_value(metric, args, tables, scale, rates, sesoi) -> Result:
    sp = tables["sparsity"]
    overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"] * 100
    if not all(f"{metric}-s{s}" in overall.index for s in scale.seeds):
        raise LookupError(f"sparsity of {metric} not recorded")
    return _seed_level(np.array([overall[f"{metric}-s{s}"] for s in scale.seeds]), float("nan"))


@estimator
def sweep_correlation(metric, args, tables, scale, rates, sesoi) -> Result:
    sp = tables["sparsity"]
    overall = sp[sp["layer"] == "overall"].set_index("model_id")["sparsity"]
    drop = model_drop(tables["campaign"], rates, [scale.sweep_fault_model])
    ids = [f"{v}-s{s}" for v in scale.sweep_variants() for s in scale.seeds]
    ids = [i for i in ids if i in overall.index and i in drop.index]
    if len(ids) < 4:
        raise LookupError("the threshold sweep is not recorded")
    return _correlation(
        overall[ids],
        drop.loc[ids, "drop"],
        drop.loc[ids, "train_seed"],
        sesoi,
        f"sparsity vs {scale.sweep_fault_model} accuracy drop",
    )


@estimator
def mitigation_contrast(metric, args, tables, scale, rates, sesoi) -> Result:
    """The mitigations family (:mod:`flatenn.repro.mitigations`). ``gain:V`` / ``drop_gain:V`` / ``clean_cost:V``:
    per training seed, variant V against SGD of its activation type, averaged over the window's rates of each
    fault model and then over the fault models; ``spearman_trace_drop:<kind>``: seed-clustered Spearman rank
    correlation of the Hessian trace of each trained model of that kind (every training method, no
    inference-time protection) with its accuracy drop in the window."""
    from .mitigations import MEASURES, design_rows, method_of, point_gains

    measure, _, target = metric.partition(":")
    camp = tables["campaign"]
    if measure == "spearman_trace_drop":
        sharp = tables["sharpness"]
        trace = sharp[sharp["metric"] == "trace_fn"].set_index("model_id")["value"]
        trained = [v for v in scale.variants if v.startswith(f"{target}-") and scale.protection(v) == "none"]
        drops = model_drop(camp[camp["variant"].isin(trained)], rates)
        return _correlation(
            trace,
            drops["drop"],
            drops["train_seed"],
            sesoi,
            f"{len(trained)} training methods of {target} models",
            scale.seeds,
        )
    if measure not in MEASURES:
        raise ValueError(f"mitigations metric {metric!r}: measure must be one of {MEASURES} or spearman_trace_drop")
    kind, _ = method_of(target)
    per = point_gains(design_rows(tables), target, f"{kind}-sgd", scale.seeds, rates)
    seed_values = per.groupby(["train_seed", "fault_model"])[measure].mean().groupby("train_seed").mean()
    res = _seed_level(seed_values.to_numpy(), sesoi)
    detail = []
    for (fm, r), g in per.groupby(["fault_model", "rate"]):
        pm, _, plo, phi, pn = mean_ci(g[measure].to_numpy())
        detail.append({"fault_model": fm, "rate": r, "effect": pm, "ci_low": plo, "ci_high": phi, "n_seeds": pn})
    res.detail = pd.DataFrame(detail)
    return res
