"""The mitigations family: what each way of buying fault tolerance gains and costs, per training seed.

From a scale's recorded campaign rows of the mitigation variants (:data:`flatenn.repro.scales.MITIGATION_VARIANTS`)
and their SGD baselines, per method and activation kind (``standard``, ``sparse``), each a 95% t interval over
training seeds (the unit of replication: a seed's models share their fault-map seed, so every source of
randomness that differs between seeds is inside the interval):

* ``gain`` (accuracy view, points): per seed, the mean over the shared trials and the informative window's rates
  of accuracy(method) - accuracy(SGD of the same kind), for each fault model and pooled over the three;
* ``drop_gain`` (drop view, points): drop(SGD) - drop(method), a model's drop being its clean accuracy minus
  its accuracy under faults (an inference-time protection's clean accuracy is the protected model's);
* ``clean_cost`` (points): clean accuracy(SGD) - clean accuracy(method), positive = accuracy given up;
* ``overhead``: memory added as a fraction of the weight memory (declared by the protection; 0 for training).

Tests: the pooled accuracy gains form one family, Holm-adjusted two-sided t tests (the rule the main claims'
families use); the per-fault-model and drop views are reported with raw p-values. :func:`pareto_front` names
the methods no other method beats on both clean cost and gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..analysis.stats import holm, t_test
from ..core.intervals import mean_ci, median_ci
from ..core.methods import get_method
from ..faults.protection import PROTECTIONS
from .rate_window import in_window
from .scales import ScaleConfig

_PAIR = ["fault_model", "n_eval", "rate", "count", "seed", "trial"]
KINDS = ("standard", "sparse")


def method_of(variant: str) -> tuple[str, str]:
    """(kind, method) of a variant name ``<kind>-<method>``: ``sparse-sgd+secded`` -> (sparse, sgd+secded)."""
    kind, _, method = variant.partition("-")
    if kind not in KINDS or not method:
        raise ValueError(f"variant {variant!r} is not <kind>-<method> with kind in {KINDS}")
    return kind, method


def _design_rows(camp: pd.DataFrame) -> pd.DataFrame:
    """Whole-network campaign rows (every protection; a sign-bit protected row samples the other bits)."""
    return camp[camp["layers"] == "all"]


class DesignRows:
    """A campaign table's whole-network rows grouped once: each model's row positions, and a pairing code per
    row naming its fault map (fault model, evaluation set size, rate or count, map seed, trial). Built once per
    table and shared by every gain computed from it (the family has hundreds)."""

    def __init__(self, camp: pd.DataFrame) -> None:
        c = _design_rows(camp)
        self.source = camp
        self.rows = c.groupby("model_id", sort=False).indices if len(c) else {}
        self.pair = c.groupby(_PAIR, sort=True).ngroup().to_numpy() if len(c) else np.empty(0, np.int64)
        self.fault_model = c["fault_model"].to_numpy(dtype=object)
        self.rate, self.accuracy, self.clean = (
            c[k].to_numpy(dtype=float) for k in ("rate", "accuracy", "clean_accuracy")
        )

    def shared(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the rows of model ``a`` and of model ``b`` on the same fault maps, in ``a``'s row order."""
        pa, pb = (np.asarray(self.rows.get(m, []), dtype=np.int64) for m in (a, b))
        ca, cb = self.pair[pa], self.pair[pb]
        order = np.argsort(cb, kind="stable")
        at = np.minimum(np.searchsorted(cb[order], ca), max(len(cb) - 1, 0))
        hit = (cb[order][at] == ca) if len(cb) else np.zeros(len(ca), dtype=bool)
        return pa[hit], pb[order[at[hit]]]


def design_rows(tables: dict[str, pd.DataFrame]) -> DesignRows:
    """The :class:`DesignRows` of ``tables["campaign"]``, built once per tables dict (an evaluation's)."""
    held = tables.get("_design_rows")
    if not isinstance(held, DesignRows) or held.source is not tables["campaign"]:
        held = tables["_design_rows"] = DesignRows(tables["campaign"])
    return held


def point_gains(
    camp: pd.DataFrame | DesignRows,
    variant: str,
    baseline: str,
    seeds: Iterable[int],
    rates: dict[str, tuple[float, ...]],
) -> pd.DataFrame:
    """Per (train seed, fault model, rate) of the window: the mean over the shared trials of accuracy(variant) -
    accuracy(baseline) (``gain``), drop(baseline) - drop(variant) (``drop_gain``) and clean accuracy(baseline) -
    clean accuracy(variant) (``clean_cost``), in accuracy points. ``camp``: the campaign table or its
    :class:`DesignRows`."""
    d = camp if isinstance(camp, DesignRows) else DesignRows(camp)
    parts = []
    for s in seeds:
        ia, ib = d.shared(f"{variant}-s{s}", f"{baseline}-s{s}")
        if not len(ia):
            raise LookupError(f"no shared campaign rows for {variant}-s{s} and {baseline}-s{s}")
        parts.append((s, ia, ib))
    ia, ib = (np.concatenate([p[k] for p in parts]) for k in (1, 2))
    j = pd.DataFrame(
        {
            "train_seed": np.repeat([p[0] for p in parts], [len(p[1]) for p in parts]),
            "fault_model": d.fault_model[ia],
            "rate": d.rate[ia],
            "accuracy": d.accuracy[ia],
            "clean_accuracy": d.clean[ia],
            "accuracy_base": d.accuracy[ib],
            "clean_accuracy_base": d.clean[ib],
        }
    )
    j = in_window(j, rates)
    empty = sorted(set(p[0] for p in parts) - set(j["train_seed"]))
    if empty:
        raise LookupError(f"{variant}-s{empty[0]}: no campaign rows in the rate window")
    j = j.assign(
        gain=j["accuracy"] - j["accuracy_base"],
        drop_gain=(j["clean_accuracy_base"] - j["accuracy_base"]) - (j["clean_accuracy"] - j["accuracy"]),
        clean_cost=j["clean_accuracy_base"] - j["clean_accuracy"],
    )
    # one groupby for every seed: each (seed, fault model, rate) mean sums its rows in the variant's row order
    per_rate = j.groupby(["train_seed", "fault_model", "rate"], sort=False)[list(MEASURES)].mean().reset_index()
    order = {s: i for i, (s, _, _) in enumerate(parts)}
    per_rate = per_rate.sort_values(
        ["train_seed", "fault_model", "rate"], key=lambda c: c.map(order) if c.name == "train_seed" else c
    )
    return per_rate[["fault_model", "rate", *MEASURES, "train_seed"]].reset_index(drop=True)


MEASURES = ("gain", "drop_gain", "clean_cost")


def seed_gains(
    camp: pd.DataFrame | DesignRows,
    variant: str,
    baseline: str,
    seeds: Iterable[int],
    rates: dict[str, tuple[float, ...]],
) -> pd.DataFrame:
    """:func:`point_gains` averaged over the window's rates: one row per (train seed, fault model)."""
    per = point_gains(camp, variant, baseline, seeds, rates)
    return per.groupby(["train_seed", "fault_model"])[list(MEASURES)].mean().reset_index()


def pooled_seed_values(
    camp: pd.DataFrame, variant: str, seeds: Iterable[int], rates: dict[str, tuple[float, ...]]
) -> pd.DataFrame:
    """Per train seed: each measure averaged over the fault models (each fault model weighs the same)."""
    kind, _ = method_of(variant)
    return seed_gains(camp, variant, f"{kind}-sgd", seeds, rates).groupby("train_seed")[list(MEASURES)].mean()


def _interval(values: np.ndarray) -> dict:
    m, _, lo, hi, n = mean_ci(values)
    return {"effect": m, "ci_low": lo, "ci_high": hi, "n_seeds": n, "p_value": t_test(values)}


def family_table(
    camp: pd.DataFrame, scale: ScaleConfig, variants: Sequence[str], seeds: Iterable[int] | None = None
) -> pd.DataFrame:
    """One row per (variant, measure, fault model or ``pooled``): effect, 95% CI over seeds, p (Holm-adjusted
    for the family of pooled accuracy gains, raw otherwise), and the memory overhead of the variant."""
    seeds = list(scale.seeds if seeds is None else seeds)
    rows = []
    design = DesignRows(camp)
    for v in variants:
        kind, method = method_of(v)
        per = seed_gains(design, v, f"{kind}-sgd", seeds, scale.informative_rates)
        pooled = per.groupby("train_seed")[list(MEASURES)].mean()
        protection = scale.protection(v)
        overhead = PROTECTIONS[protection].overhead(scale.w_bits)
        base = {"variant": v, "kind": kind, "method": method, "protection": protection, "overhead": overhead}
        for measure in ("gain", "drop_gain"):
            rows.append({**base, "measure": measure, "fault_model": "pooled", **_interval(pooled[measure].to_numpy())})
            for fm, g in per.groupby("fault_model"):
                rows.append({**base, "measure": measure, "fault_model": fm, **_interval(g[measure].to_numpy())})
        rows.append(
            {**base, "measure": "clean_cost", "fault_model": "none", **_interval(pooled["clean_cost"].to_numpy())}
        )
    table = pd.DataFrame(rows)
    family = (table["measure"] == "gain") & (table["fault_model"] == "pooled")
    table["family"] = family
    table["p_adjusted"] = np.nan
    if family.any():
        table.loc[family, "p_adjusted"] = holm(table.loc[family, "p_value"].to_numpy())
    return table


def pareto_front(points: pd.DataFrame, cost: str = "clean_cost", gain: str = "gain") -> list[str]:
    """Variants not dominated: no other has a cost at most theirs and a gain at least theirs, one strictly."""
    front = []
    for v, c, g in zip(points["variant"], points[cost], points[gain], strict=True):
        dominated = ((points[cost] <= c) & (points[gain] >= g) & ((points[cost] < c) | (points[gain] > g))).any()
        if not dominated:
            front.append(v)
    return front


def pareto_points(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per variant of one kind: pooled accuracy gain and clean cost with their CIs, overhead and training cost."""
    t = table[table["kind"] == kind]
    gain = t[(t["measure"] == "gain") & (t["fault_model"] == "pooled")].set_index("variant")
    cost = t[t["measure"] == "clean_cost"].set_index("variant")
    out = pd.DataFrame(
        {
            "gain": gain["effect"],
            "gain_low": gain["ci_low"],
            "gain_high": gain["ci_high"],
            "clean_cost": cost["effect"],
            "cost_low": cost["ci_low"],
            "cost_high": cost["ci_high"],
            "overhead": gain["overhead"],
            "train_cost": gain["train_cost"] if "train_cost" in gain else 1.0,
        }
    )
    return out.rename_axis("variant").reset_index()


def pareto_figure(table: pd.DataFrame, path, title: str) -> dict[str, list[str]]:
    """Clean-accuracy cost (x) against the pooled fault-tolerance gain (y), one panel per kind, one point per
    method with 95% CI bars; marker area ~ training cost, hardware protections as squares labelled with their
    memory overhead; the non-dominated set in bold. Returns that set per kind."""
    from .figures import plt, save_figure

    kinds = [k for k in KINDS if (table["kind"] == k).any()]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    fronts = {}
    for ax, kind in zip(axes[0], kinds, strict=True):
        pts = pareto_points(table, kind)
        fronts[kind] = front = pareto_front(pts)
        for p in pts.itertuples():
            hardware = p.overhead > 0
            ax.errorbar(
                p.clean_cost,
                p.gain,
                xerr=[[p.clean_cost - p.cost_low], [p.cost_high - p.clean_cost]],
                yerr=[[p.gain - p.gain_low], [p.gain_high - p.gain]],
                fmt="s" if hardware else "o",
                markersize=4 + 3 * float(p.train_cost),
                capsize=2,
                alpha=0.85,
            )
            label = method_of(p.variant)[1] + (f" (+{100 * p.overhead:.1f}% memory)" if hardware else "")
            ax.annotate(
                label,
                (p.clean_cost, p.gain),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
                fontweight="bold" if p.variant in front else "normal",
            )
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("clean-accuracy cost vs SGD (points; right = worse)")
        ax.set_ylabel("accuracy gain under faults vs SGD (points)")
        ax.set_title(f"{kind} models; Pareto front in bold", fontsize=8)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
    return fronts


def train_seconds(d, training: pd.DataFrame) -> pd.Series:
    """Seconds per training epoch per model id, from the records of the folder's stored models."""
    import json
    from pathlib import Path

    out = {}
    for mid, key in zip(training["model_id"], training["key"], strict=True):
        p = Path(d) / "models" / f"{key}.json"
        if p.is_file():
            out[mid] = float(json.loads(p.read_text())["record"]["seconds_per_epoch"])
    return pd.Series(out, dtype=float)


def cost_ratio(seconds: pd.Series, variant: str, scale: ScaleConfig) -> dict:
    """Per seed: seconds per epoch of the variant's model over its SGD baseline's (1 for a protection: the
    same model); the median over seeds with its distribution-free 95% CI (wall times on a shared machine have
    outliers, a model trained while the machine was busy, which a mean and t interval would follow)."""
    if scale.protection(variant) != "none":
        return {"effect": 1.0, "ci_low": np.nan, "ci_high": np.nan}
    kind, _ = method_of(variant)
    ratios = [
        seconds[f"{variant}-s{s}"] / seconds[f"{kind}-sgd-s{s}"]
        for s in scale.seeds
        if f"{variant}-s{s}" in seconds.index and f"{kind}-sgd-s{s}" in seconds.index
    ]
    if not ratios:
        return {"effect": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    m, lo, hi, _ = median_ci(np.array(ratios))
    return {"effect": m, "ci_low": lo, "ci_high": hi}


def _ci(row) -> str:
    return f"{row['effect']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"


def summary_markdown(claims: pd.DataFrame, scale: ScaleConfig, seconds: pd.Series | None = None) -> str:
    """The family as a Markdown table (rows: methods; per activation type: gain under faults with its Holm
    verdict, drop view, clean cost, training-time ratio) with the Pareto fronts and the trace correlations."""
    c = claims[claims["claim"] == "mitigations"].copy()
    c["measure"] = c["metric"].str.split(":").str[0]
    c["variant"] = c["metric"].str.split(":").str[1]
    rows = c[c["measure"].isin(MEASURES)].set_index(["measure", "variant"])
    methods = list(dict.fromkeys(method_of(v)[1] for v in rows.index.get_level_values(1)))
    head = "| method | memory overhead | train passes / step |"
    sep = "|---|---|---|"
    for kind in KINDS:
        head += f" {kind}: gain under faults (verdict) | {kind}: drop view | {kind}: clean cost | {kind}: s/epoch ÷ SGD (median) |"
        sep += "---|---|---|---|"
    lines = [head, sep]
    for method in methods:
        variant = next(f"{k}-{method}" for k in KINDS if f"{k}-{method}" in scale.variants)
        _, base, _, protection = scale.variant_spec(variant)
        over = PROTECTIONS[protection].overhead(scale.w_bits)
        line = f"| {method} | {100 * over:.1f}% | {get_method(base).passes_per_step} |"
        for kind in KINDS:
            v = f"{kind}-{method}"
            if ("gain", v) not in rows.index:
                line += " – | – | – | – |"
                continue
            g, dr, cc = rows.loc[("gain", v)], rows.loc[("drop_gain", v)], rows.loc[("clean_cost", v)]
            ratio = cost_ratio(seconds, v, scale) if seconds is not None else {"effect": np.nan}
            r = "–" if np.isnan(ratio["effect"]) else f"{ratio['effect']:.2f}"
            if not np.isnan(ratio.get("ci_low", np.nan)):
                r += f" [{ratio['ci_low']:.2f}, {ratio['ci_high']:.2f}]"
            line += f" {_ci(g)} **{g['verdict']}** | {_ci(dr)} | {_ci(cc)} | {r} |"
        lines.append(line)
    points = (
        c[c["measure"].isin(("gain", "clean_cost"))]
        .pivot_table(index="variant", columns="measure", values="effect")
        .reset_index()
    )
    points["kind"] = points["variant"].map(lambda v: method_of(v)[0])
    for kind in KINDS:
        pts = points[points["kind"] == kind]
        if len(pts):
            front = [method_of(v)[1] for v in pareto_front(pts)]
            lines.append(
                f"\nPareto front ({kind}; lower clean cost, higher gain; point estimates): {', '.join(front)}."
            )
    for kind in KINDS:
        t = c[c["metric"] == f"spearman_trace_drop:{kind}"]
        if len(t):
            t = t.iloc[0]
            lines.append(
                f"\nHessian trace vs accuracy drop ({kind} models, every training method): Spearman ρ "
                f"{_ci(t)} (p {t['p_value']:.2g})."
            )
    return "\n".join(lines)


# the methods that seek flat minima: sharpness-aware training, and Hessian-trace regularization (the direct test
# of "flatter is more tolerant")
FLATNESS_SEEKING = ("saq-rho0.02", "saq", "saq-rho0.1", "sam", "asam", "hessian")


def sharpness_aware_markdown(detail: pd.DataFrame, scale: ScaleConfig) -> str:
    """Does sharpness-aware training help against bit errors? Per flatness-seeking method and activation type,
    the accuracy gain over SGD at the lowest and the highest rate of each fault model's window (points, mean
    [95% CI] over seeds, from ``claims_detail.csv``)."""
    d = detail[(detail["claim"] == "mitigations") & detail["metric"].str.startswith("gain:")].copy()
    d["variant"] = d["metric"].str.split(":").str[1]
    d["rate_key"] = d["rate"].round(12)
    ends = {fm: (min(rs), max(rs)) for fm, rs in scale.informative_rates.items()}
    fms = [fm for fm in scale.fault_models if fm in ends]
    head, sep = "| method | kind |", "|---|---|"
    for fm in fms:
        head += f" {fm} @ {ends[fm][0]:g} | {fm} @ {ends[fm][1]:g} |"
        sep += "---|---|"
    lines = [head, sep]
    for method in FLATNESS_SEEKING:
        for kind in KINDS:
            rows = d[d["variant"] == f"{kind}-{method}"].set_index(["fault_model", "rate_key"])
            if not len(rows):
                continue
            line = f"| {method} | {kind} |"
            for fm in fms:
                for r in ends[fm]:
                    key = (fm, round(r, 12))
                    line += f" {_ci(rows.loc[key])} |" if key in rows.index else " – |"
            lines.append(line)
    return "\n".join(lines)
