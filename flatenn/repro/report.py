"""Figures and ``results/README.md``, made from the recorded CSVs alone (no model is touched)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.stats import mean_ci
from ..core.results import read_result, text_or_empty
from .claims import CLAIMS, split_case
from .doc_blocks import refresh_pages, replace_block
from .figures import plt, save_figure, save_with_legend
from .scales import MAIN_VARIANTS, SCALES

COLORS = {
    "standard-sgd": "tab:blue",
    "sparse-sgd": "tab:red",
    "standard-saq": "tab:green",
    "sparse-saq": "tab:orange",
    "sweep-t0.25": "tab:purple",
    "sweep-t1": "tab:brown",
    "sweep-t0.5": "tab:pink",
}


def claim_titles() -> dict[str, str]:
    """Claim id -> panel title, for the claims whose entry in claims.toml has a title (their order)."""
    return {cid: c.title for cid, c in CLAIMS.items() if c.title}


def _color(variant: str, i: int = 0) -> str:
    return COLORS.get(variant, f"C{i % 10}")


def scale_title(scale, table: pd.DataFrame | None = None) -> str:
    """'smoke: digits, cnn_digits width 8, 5 training seeds' (what a reader needs to place a figure).

    The seeds are counted in ``table`` (its ``train_seed`` or ``seed`` column: the seeds the figure shows);
    without one, the scale's declared seeds."""
    if scale is None:
        return ""
    col = next((c for c in ("train_seed", "seed", "n_seeds", "n") if table is not None and c in table.columns), None)
    if col in ("n_seeds", "n") and len(table):  # per-case seed counts (a plan-v2 case stops at its own look)
        lo, n = int(table[col].min()), int(table[col].max())
        seeds = f"{n} training seeds" if lo == n else f"{lo}–{n} training seeds"
    else:
        n = table[col].nunique() if col else len(scale.seeds)
        seeds = f"{n} training seed{'s' * (n != 1)}"
    return f"{scale.name}: {scale.dataset}, {scale.model} width {scale.width}, {seeds}"


def _shade_window(ax, rates) -> None:
    if rates:
        lo, hi = min(rates), max(rates)
        ax.axvspan(lo / 1.25, hi * 1.25, color="0.85", zorder=0, label="rates behind the verdict")


def plot_accuracy_vs_rate(summary: pd.DataFrame, path: Path, scale=None) -> None:
    """Accuracy vs fault rate per fault model, the four variants with 95% CI bands over training seeds."""
    summary = summary[(summary["bits"] == "all") & (summary.get("layers", "all") == "all")]
    fms = sorted(summary["fault_model"].unique())
    fig, axes = plt.subplots(1, len(fms), figsize=(4.5 * len(fms), 3.9), squeeze=False)
    for ax, fm in zip(axes[0], fms, strict=True):
        s = summary[summary["fault_model"] == fm]
        for v in MAIN_VARIANTS:
            g = s[s["variant"] == v]
            if g.empty:
                continue
            pts = []
            for r, gr in g.groupby("rate"):
                m, _, lo, hi, _ = mean_ci(gr["accuracy_mean"].to_numpy())
                pts.append((r, m, lo, hi))
            r, m, lo, hi = map(np.array, zip(*pts, strict=True))
            ax.plot(r, m, marker="o", ms=3, label=v, color=COLORS.get(v))
            ax.fill_between(r, lo, hi, alpha=0.2, color=COLORS.get(v))
        if scale is not None:
            _shade_window(ax, scale.informative_rates.get(fm, ()))
        ax.set_xscale("log")
        ax.set_title(fm)
        ax.set_xlabel("bit error rate (per stored bit)")
        ax.set_ylabel("accuracy under faults (%)")
        ax.grid(alpha=0.3)
    save_with_legend(
        fig, axes[0][0], path, f"{scale_title(scale, summary)} — mean over seeds, band: 95% t-CI over seeds"
    )


def plot_claim_gaps(detail: pd.DataFrame, path: Path, scale=None) -> None:
    """Paired effect of each campaign claim vs rate: accuracy view (top) and drop view (bottom).

    Points are means over training seeds of the per-seed paired difference (maps shared within a seed),
    bars 95% t-CIs over seeds; filled markers are the rates of that fault model behind the verdict, hollow
    ones are not counted; dashed lines are the published 'up to' values. Positive = the claim's direction.
    """
    titles = claim_titles()
    claims = [c for c in titles if c in set(detail["claim"])]
    if not claims:
        return
    views = [("acc", "accuracy view: gap in accuracy (points)"), ("drop", "drop view: gap in accuracy drop (points)")]
    fig, axes = plt.subplots(2, len(claims), figsize=(4.3 * len(claims), 7.0), squeeze=False, sharex=True)
    for j, c in enumerate(claims):
        for i, (view, ylabel) in enumerate(views):
            ax = axes[i][j]
            d = detail[(detail["claim"] == c) & detail["metric"].str.startswith(view)]
            for k, (fm, g) in enumerate(d.groupby("fault_model")):
                g = g.sort_values("rate")
                x = g["rate"] * (1 + 0.06 * (k - 1))
                bars = ax.errorbar(
                    x,
                    g["effect"],
                    yerr=[g["effect"] - g["ci_low"], g["ci_high"] - g["effect"]],
                    marker="o",
                    ms=3,
                    mfc="white",
                    capsize=2,
                    label=fm,
                )
                if scale is not None:  # filled markers: the rates of this fault model behind the verdict
                    inside = np.isin(np.round(g["rate"], 12), np.round(scale.informative_rates.get(fm, ()), 12))
                    ax.plot(x[inside], g["effect"][inside], "o", ms=4, color=bars[0].get_color())
            for v in CLAIMS[c].paper_values:
                ax.axhline(v, color="k", ls="--", lw=0.8)
                ax.annotate(
                    f"published up to {v:g}", (0.02, v), xycoords=("axes fraction", "data"), fontsize=6, va="bottom"
                )
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_title(titles[c] if i == 0 else "", fontsize=9)
            ax.set_ylabel(ylabel if j == 0 else "", fontsize=8)
            ax.grid(alpha=0.3)
            if i == 1:
                ax.set_xlabel("bit error rate")
    save_with_legend(
        fig,
        axes[0][0],
        path,
        f"{scale_title(scale, detail)} — paired effects, 95% t-CI over seeds (positive = the claim's direction; "
        "filled: rates behind the verdict)",
        bottom=0.05,
    )


def plot_window_robustness(claims: pd.DataFrame, path: Path, scale=None) -> None:
    """Direction verdict of every hypothesis case under each rate window (informative, all, shifted down/up)."""
    hyp = claims[claims["direction"] != 0].sort_values("case")
    if hyp.empty:
        return
    cols = [
        ("verdict", "informative"),
        ("verdict_all_rates", "all rates"),
        ("verdict_window_down", "window − 1"),
        ("verdict_window_up", "window + 1"),
    ]
    codes = {"contradicted": 0, "equivalent": 1, "inconclusive": 2, "supported": 3}
    colors = ["tab:red", "tab:purple", "0.85", "tab:green"]
    grid = np.array([[codes.get(str(r[c]), 2) for c, _ in cols] for _, r in hyp.iterrows()])
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(hyp) + 1.6))
    from matplotlib.colors import ListedColormap

    ax.imshow(grid, cmap=ListedColormap(colors), vmin=0, vmax=3, aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, list(codes)[v], ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(cols)), [n for _, n in cols], fontsize=8)
    ax.set_yticks(range(len(hyp)), hyp["case"], fontsize=7)
    ax.set_title(
        f"{scale_title(scale, claims)}\nplan v1 (first 5 seeds): Holm-adjusted direction verdict per rate window",
        fontsize=9,
    )
    save_figure(fig, path)


def plot_landscapes_1d(land: pd.DataFrame, path: Path, title: str = "") -> None:
    """1-D filter-normalized loss landscapes of several models (mean over training seeds per variant)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    key = "variant" if "variant" in land.columns else "model_id"
    for i, (v, g) in enumerate(land.groupby(key)):
        by = g.groupby("alpha")["loss"]
        m = by.mean()
        ax.plot(m.index, m.to_numpy(), label=v, color=_color(v, i))
        if key == "variant":
            ax.fill_between(m.index, by.min().to_numpy(), by.max().to_numpy(), color=_color(v, i), alpha=0.15)
    ax.set_xlabel("alpha (filter-normalized direction)")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title((title + "\n" if title else "") + "1-D loss landscape (mean over seeds, band: min–max)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_landscape_2d(grid: pd.DataFrame, path: Path, title: str = "") -> None:
    """Contour plot of a 2-D landscape (columns alpha, beta, loss)."""
    piv = grid.pivot(index="beta", columns="alpha", values="loss")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    cs = ax.contour(piv.columns, piv.index, np.log10(piv.to_numpy()), levels=15)
    ax.clabel(cs, fontsize=6)
    ax.set_xlabel("alpha")
    ax.set_ylabel("beta")
    ax.set_title(title or "log10 loss")
    save_figure(fig, path)


def plot_sharpness_vs_drop(sharp: pd.DataFrame, camp: pd.DataFrame, claims: pd.DataFrame, scale, path: Path) -> None:
    """Each sharpness metric against the mean accuracy drop (informative rates), Spearman rho in titles."""
    from .claims import SHARP_METRICS
    from .estimators import model_drop

    drop = model_drop(camp, scale.informative_rates)["drop"]
    fig, axes = plt.subplots(1, len(SHARP_METRICS), figsize=(4.3 * len(SHARP_METRICS), 3.5), squeeze=False)
    for ax, m in zip(axes[0], SHARP_METRICS, strict=True):
        v = sharp[sharp["metric"] == m].set_index("model_id")
        common = v.index.intersection(drop.index)
        for mid in common:
            var = v.loc[mid, "variant"]
            ax.scatter(v.loc[mid, "value"], drop[mid], color=COLORS.get(var, "gray"), s=18)
        row = claims[claims["case"] == f"sharper_minima[spearman_{m}]"]
        rho = (
            (
                f"rho={row['effect'].iloc[0]:.2f} [{row['ci_low'].iloc[0]:.2f}, {row['ci_high'].iloc[0]:.2f}]"
                " (seed-cluster bootstrap)"
            )
            if len(row)
            else ""
        )
        ax.set_title(f"{m}\n{rho}", fontsize=8)
        ax.set_xlabel(m)
        ax.set_ylabel("mean accuracy drop, informative rates (points)", fontsize=8)
        ax.grid(alpha=0.3)
    for var in MAIN_VARIANTS:
        axes[0][0].scatter([], [], color=COLORS[var], s=18, label=var)
    save_with_legend(fig, axes[0][0], path, f"{scale_title(scale, sharp)} — one point per model")


def layer_label(name: str, position: int) -> str:
    """A module path as a reader maps it to the network: 'layers.1.act2' -> 'block 2, act 2'; else
    'activation k' (k-th activation in network order)."""
    parts = name.split(".")
    nums = [p for p in parts if p.isdigit()]
    act = next((p for p in parts if p.startswith("act")), "")
    if name == "overall":
        return "overall"
    if parts[0] == "layers" and nums and act:
        return f"block {int(nums[0]) + 1}, {act.replace('act', 'act ')}"
    return f"activation {position + 1}"


def plot_sparsity(sp: pd.DataFrame, path: Path, scale=None) -> None:
    """Per-layer activation sparsity of each variant: mean over training seeds, bars = min..max over seeds."""
    layers = [x for x in sp["layer"].drop_duplicates() if x != "overall"] + ["overall"]
    variants = list(sp["variant"].drop_duplicates())
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(layers) * max(len(variants), 1) / 2), 4.2))
    w = 0.8 / max(len(variants), 1)
    for i, v in enumerate(variants):
        g = sp[sp["variant"] == v].groupby("layer")["sparsity"]
        m, lo, hi = (100 * f().reindex(layers).to_numpy() for f in (g.mean, g.min, g.max))
        ax.bar(
            np.arange(len(layers)) + i * w,
            m,
            w,
            yerr=[m - lo, hi - m],
            capsize=1.5,
            label=v,
            color=_color(v, i),
            error_kw={"lw": 0.6},
        )
    ax.set_xticks(np.arange(len(layers)) + 0.4 - w / 2)
    ax.set_xticklabels([layer_label(x, i) for i, x in enumerate(layers)], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("zeros after activation (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncol=min(len(variants), 3), loc="upper center", bbox_to_anchor=(0.5, -0.32), frameon=False)
    ax.set_title(
        f"{scale_title(scale, sp)}\nactivation sparsity on the evaluation set (bars: min–max over seeds)", fontsize=9
    )
    save_figure(fig, path)


def scale_figures(d: Path) -> list[Path]:
    """Draw every figure whose CSVs exist under one ``results/<scale>`` folder."""
    scale = SCALES.get(d.name)
    fig_dir = d / "figures"
    fig_dir.mkdir(exist_ok=True)
    made = []
    summary, detail, land = (
        read_result(d, "campaign_summary"),
        read_result(d, "claims_detail"),
        read_result(d, "landscape"),
    )
    sharp, camp, claims, sp = (
        read_result(d, "sharpness"),
        read_result(d, "campaign"),
        read_result(d, "claims"),
        read_result(d, "sparsity"),
    )
    if scale is not None and scale.claims and "mitigations" in scale.claims:
        return made + mitigation_figures(camp, scale, fig_dir)
    if len(summary):
        plot_accuracy_vs_rate(summary, fig_dir / "accuracy_vs_rate.png", scale)
        made.append(fig_dir / "accuracy_vs_rate.png")
    if scale is not None and (d / "verdicts.csv").is_file() and len(camp):
        from .decide import v2_detail

        detail = v2_detail({"campaign": camp}, scale, read_result(d, "verdicts"))  # plan v2: each claim's seeds
    if len(detail):
        plot_claim_gaps(detail, fig_dir / "claim_gaps.png", scale)
        made.append(fig_dir / "claim_gaps.png")
    if len(claims) and "verdict_window_up" in claims.columns:
        plot_window_robustness(claims, fig_dir / "window_robustness.png", scale)
        made.append(fig_dir / "window_robustness.png")
    if len(land):
        plot_landscapes_1d(
            land[land["variant"].isin(MAIN_VARIANTS)], fig_dir / "landscape_1d.png", scale_title(scale, land) or d.name
        )
        made.append(fig_dir / "landscape_1d.png")
    if len(sharp) and len(camp) and scale is not None:
        plot_sharpness_vs_drop(sharp, camp, claims, scale, fig_dir / "sharpness_vs_drop.png")
        made.append(fig_dir / "sharpness_vs_drop.png")
    if len(sp):
        plot_sparsity(sp, fig_dir / "sparsity_per_layer.png", scale)
        made.append(fig_dir / "sparsity_per_layer.png")
    return made


def mitigation_figures(camp: pd.DataFrame, scale, fig_dir: Path) -> list[Path]:
    """The mitigations family's Pareto figure (clean cost against gain under faults, per activation type)."""
    from .claims import claim_variants
    from .mitigations import family_table, pareto_figure

    methods = [v for v in claim_variants("mitigations", scale) if not v.endswith("-sgd")]
    try:
        table = family_table(camp, scale, methods)
    except LookupError:  # not every seed recorded yet
        return []
    path = fig_dir / "pareto.png"
    pareto_figure(table, path, f"{scale_title(scale, camp)}: mitigations against SGD")
    return [path]


FILES = {
    "training.csv": "one row per trained model: config, clean test accuracy (%), loss, activation sparsity",
    "campaign.parquet": "one row per (model, fault model, rate, trial): faulty bits, changed weights, accuracy (%), "
    "loss (Parquet, zstd; `pandas.read_parquet`; floats as their %.6g text reads back)",
    "campaign_summary.csv": "mean, sd, 95% CI of accuracy per (model, fault model, rate)",
    "sharpness.csv": "sharpness metrics per model (value, standard error where defined, data subset size, seed)",
    "landscape.csv": "1-D filter-normalized loss landscape per model",
    "sparsity.csv": "activation sparsity per layer and overall per model (evaluation set)",
    "claims.csv": "one row per claim case: effect, 95% CI, p (raw, Holm), SESOI and TOST p, direction verdict "
    "(also under other rate windows), published values and magnitude verdict",
    "claims_detail.csv": "paired effects per (claim, fault model, rate) with 95% CIs over training seeds",
    "verdicts.csv": "plan v2 (plan-v2 scales): one row per case (primary, secondary view, magnitude, claim 2, "
    "exploratory): seeds, effect, 95% and repeated CIs, t and sign-flip p, local alpha and nominal level, "
    "verdict, magnitude in points and relative percent, robustness windows, seeds needed if undecided",
    "sequential.csv": "plan v2: every look of every primary case (seeds, effect, sd, p-values, levels, decision)",
    "verdicts_v3.csv": "plan v3 (plan-v2 scales, re-analysed): one row per primary contrast: look, seeds, effect "
    "and 95% CI, t, sign-flip and TOST p, node levels and nominal p, verdict, clean and drop parts with CIs, window "
    "label, per-rate sign pattern, max-t `up_to` bounds, seeds needed, sensitivity without the plan's seeds",
    "per_rate_v3.csv": "plan v3: every contrast's effect per (fault model, rate) with its 95% max-t band and sign",
    "claim2_v3.csv": "plan v3: claim 2 within (activation, method) cells per metric (Spearman rho, permutation "
    "and Holm p) and the claim-level verdict",
    "provenance.json": "every run that wrote rows (commit, command, versions, device, timings), scale config, "
    "model keys and fingerprints, SHA-256 of every table",
    "models/": "the trained models the rows were measured on (zoo entries by config key; loaded by reproduce)",
    "figures/": "accuracy vs rate, paired claim effects (accuracy and drop views), window robustness, 1-D "
    "landscapes, sharpness vs drop, per-layer sparsity",
    "ablation/": "(top level) factor effects per ablation level (`effects.csv`), clean accuracy and sparsity per "
    "level and variant (`levels.csv`), per-epoch training loss of the from-scratch models "
    "(`training_curves.csv`, from the shipped models' records), and their figures",
    "speed/": "(top level) the last `benchmarks/speed_report.py --out results/speed` run (`report.txt`) with its "
    "commit, CPU, thread count and load average (`provenance.json`)",
    "remeasure_cpu/": "(top level) the last `benchmarks/remeasure_campaigns.py --scale cpu --out "
    "results/remeasure_cpu` run: which cpu seeds' campaign rows were re-measured from the shipped models and "
    "whether every row reproduces (`report.txt`, `provenance.json`)",
    "method_costs/": "(top level) the last `benchmarks/speed_report.py --only method-costs --out "
    "results/method_costs` run: seconds per epoch of every training method against SGD, interleaved in one "
    "sitting (`report.txt`, `provenance.json`)",
}


def claims_table(claims: pd.DataFrame) -> str:
    lines = [
        "| case | effect | 95% CI | unit | p (Holm) | verdict | window-stable | paper | magnitude |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims.itertuples():
        p = "" if pd.isna(r.p_holm) else f"{r.p_holm:.3g}"
        lines.append(
            f"| {r.case} | {r.effect:.3g} | [{r.ci_low:.3g}, {r.ci_high:.3g}] | {r.unit} | {p} | {r.verdict} | "
            f"{'yes' if r.window_stable else 'no'} | {text_or_empty(r.paper_values)} | {text_or_empty(r.magnitude)} |"
        )
    return "\n".join(lines)


def verdicts_table(v: pd.DataFrame) -> str:
    """Plan v2's verdicts.csv as markdown: family, case, n, effect [95% CI], p (t, sign-flip), level, verdict."""
    lines = [
        "| family | case | n | effect [95% CI] | p (t) | p (sign-flip) | nominal level | verdict | magnitude (points; relative) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in v.itertuples():
        ci = "" if pd.isna(r.ci_low) else f" [{r.ci_low:.3g}, {r.ci_high:.3g}]"
        eff = "" if pd.isna(r.effect) else f"{r.effect:.3g}{ci}"
        mag = ""
        if r.family == "magnitude":
            mag = (
                f"{r.magnitude_points}; {r.relative_effect:.3g}% [{r.relative_ci_low:.3g}, {r.relative_ci_high:.3g}] "
                f"{r.magnitude_relative}"
            )
        fmt = lambda x: "" if pd.isna(x) else f"{x:.2g}"  # noqa: E731
        lines.append(
            f"| {r.family} | {r.case} | {'' if pd.isna(r.n) else int(r.n)} | {eff} | {fmt(r.p_value)} | "
            f"{fmt(r.p_signflip)} | {fmt(r.p_nominal)} | {r.verdict} | {mag} |"
        )
    return "\n".join(lines)


def headline() -> list[tuple[str, str, str]]:
    """(text, v1 case, v2 case) rows of the 30-second summary, from the ``headline`` entries of claims.toml."""
    return [(text, f"{cid}[{m}]", f"{cid}[{m2}]") for cid, c in CLAIMS.items() for m, text, m2 in c.headline]


SUMMARY_START, SUMMARY_END = "<!-- claims-summary:start -->", "<!-- claims-summary:end -->"
ABLATION_START, ABLATION_END = "<!-- ablation-summary:start -->", "<!-- ablation-summary:end -->"
MITIGATIONS_START, MITIGATIONS_END = "<!-- mitigations-summary:start -->", "<!-- mitigations-summary:end -->"


def plan_name(scale_name: str) -> str:
    """The analysis plan of a mitigations scale: its own (``plans/<scale>.md``), else the smoke family's."""
    own = f"{scale_name}.md"
    return own if (Path(__file__).parent / "plans" / own).is_file() else "mitigations.md"


def mitigations_markdown(root: Path) -> str:
    """The recorded mitigations family of every mitigations scale folder under ``root`` ('' when none)."""
    from .mitigations import sharpness_aware_markdown, summary_markdown, train_seconds

    parts = []
    for name, scale in SCALES.items():
        d = root / name
        if not (scale.claims and "mitigations" in scale.claims and (d / "claims.csv").is_file()):
            continue
        claims = read_result(d, "claims")
        seconds = train_seconds(d, read_result(d, "training"))
        n_gains = int((claims["direction"] == 1).sum())
        parts += [
            f"`{name}` ({scale_title(scale)}; effects in accuracy points, mean [95% CI] "
            "over training seeds, each method against SGD of the same activation type on the same fault-map "
            f"seeds; gain verdicts Holm-adjusted over the {n_gains} gains, `equivalent` = within ±2 points; plan: "
            f"`flatenn/repro/plans/{plan_name(name)}`):",
            "",
            summary_markdown(claims, scale, seconds),
            "",
            "Sharpness-aware training and Hessian-trace regularization against SGD at the low and the high end "
            "of each fault model's window "
            "(accuracy gain under faults, points, mean [95% CI] over seeds):",
            "",
            sharpness_aware_markdown(read_result(d, "claims_detail"), scale),
            "",
            f"![Pareto front]({'results/' if root.name == 'results' else ''}{name}/figures/pareto.png)",
        ]
    return "\n".join(parts)


def _cell(claims: pd.DataFrame | None, case: str) -> str:
    if claims is None or case not in claims.index:
        return "not run"
    r = claims.loc[case]
    verdict = r["magnitude"] if isinstance(r["magnitude"], str) and r["magnitude"] else r["verdict"]
    stable = "" if r["window_stable"] else " (window-sensitive)"
    return f"{r['effect']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}] **{verdict}**{stable}"


def v2_cell(v: pd.DataFrame | None, case: str) -> str:
    """A plan-v2 verdict cell: effect [95% CI], seeds, verdict (magnitude rows: points and relative percent)."""
    if v is None or case not in v.index:
        return "not run"
    r = v.loc[case]
    if r["family"] == "magnitude":
        return (
            f"{r['effect']:.3g} pts [{r['ci_low']:.3g}, {r['ci_high']:.3g}] **{r['magnitude_points']}**; "
            f"{r['relative_effect']:.3g}% rel. [{r['relative_ci_low']:.3g}, {r['relative_ci_high']:.3g}] "
            f"**{r['magnitude_relative']}** (n={int(r['n'])})"
        )
    if r["metric"] == "claim":
        return f"**{r['verdict']}** ({text_or_empty(r['note']).split('; ')[-1]})"
    need = text_or_empty(r.get("seeds_needed", ""))
    need = f"; needs ≈{need} seeds" if need not in ("", "nan") else ""
    ci = "" if pd.isna(r["ci_low"]) else f" [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
    return f"{r['effect']:.3g}{ci} **{r['verdict']}** (n={int(r['n'])}{need})"


def summary_markdown(root: Path, only_present: bool = False) -> str:
    """Per headline case: published value, then plan v1 (first 5 seeds) and plan v2 at smoke and cpu.

    ``only_present``: columns only for what the folder holds (a run folder: its scales, and plan v2 only where it
    wrote verdicts.csv); the tracked README keeps every column, "not run" marking what was not recorded."""
    v1, v2 = {}, {}
    for scale in ("smoke", "cpu"):
        c = read_result(root / scale, "claims")
        v1[scale] = c.set_index("case") if len(c) else None
        v = read_result(root / scale, "verdicts") if (root / scale / "verdicts.csv").is_file() else pd.DataFrame()
        v2[scale] = v.set_index("case") if len(v) else None
    columns = [
        (f"{scale}, plan {plan}", table, cell)
        for scale in ("smoke", "cpu")
        for plan, table, cell in (("v1", v1[scale], _cell), ("v2", v2[scale], v2_cell))
        if not only_present or table is not None
    ]
    if not columns:
        return ""
    lines = [
        "| paper claim | statistic | published | " + " | ".join(c[0] for c in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for text, c1, c2 in headline():
        claim, metric = split_case(c2)
        paper = "/".join(f"{v:g}" for v in CLAIMS[claim].paper_values) if metric == "up_to" else "direction"
        cells = [cell(table, c1 if cell is _cell else c2) for _, table, cell in columns]
        lines.append(f"| {text} | `{metric}` | {paper} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Plan v1 (`flatenn/repro/plans/v1.md`): the first 5 training seeds, Holm over 16 hypothesis cases; v1's "
        "`up_to` interval is the CI of the largest point. Plan v2 (`flatenn/repro/plans/v2.toml`, committed "
        "before its runs): seeds added in blocks until each primary case is decided (O'Brien-Fleming alpha "
        "spending, graphical Holm over the four primary accuracy cases; `n` = the seeds at the look it "
        "stopped at); `up_to` bounds are simultaneous over every (fault model, rate) point, in accuracy points "
        "and in percent of the reference model's accuracy under the same faults; claim 2 is its own family, "
        "correlations within one activation type. Effects are accuracy points unless stated; [95% t-CI over "
        "training seeds]."
    )
    return "\n".join(lines)


def replace_summary(text: str, summary: str, start: str = SUMMARY_START, end: str = SUMMARY_END) -> str:
    """Put ``summary`` between two markers of a markdown text (unchanged text if no markers)."""
    return replace_block(text, summary, start, end)


HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
HEADLINE_SCALES = {"smoke": "digits, CNN", "cpu": "Fashion-MNIST, ResNet-8"}


def headline_markdown(root: Path) -> str:
    """The front page's table: per paper claim, the plan-v2 and plan-v3 verdicts with effect and CI at ``smoke``
    and ``cpu`` (the claim-2 row is its claim-level rule; claim 1's drop view is a v3 contrast; the sharpness
    differences and correlations behind claim 2 are on the claims page)."""
    from .report_v3 import read_v3, v3_cell

    v2, v3 = {}, {}
    for scale in HEADLINE_SCALES:
        path = Path(root) / scale / "verdicts.csv"
        v2[scale] = read_result(Path(root) / scale, "verdicts").set_index("case") if path.is_file() else None
        v3[scale] = read_v3(Path(root) / scale)
    if all(t is None for t in v2.values()):
        return ""
    cols = [f"{scale} ({what}), plan {plan}" for scale, what in HEADLINE_SCALES.items() for plan in ("v2", "v3")]
    lines = ["| paper claim | published | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    rows = []
    for text, _, case in headline():
        if split_case(case)[1].startswith(("diff_", "within_")):
            continue
        rows.append((text, case))
        if case == "sparse_vs_standard[acc_gap]":
            rows.append(('... in the drop view (the paper\'s "lose more")', "sparse_vs_standard[drop_gap]"))
    for text, case in rows:
        claim, metric = split_case(case)
        published = "/".join(f"{v:g}" for v in CLAIMS[claim].paper_values) if metric == "up_to" else "direction"
        label = text if metric != "up_to" else f"{text.strip() or 'up to'} (largest gap, `up_to`)"
        cells = [c for s in HEADLINE_SCALES for c in (v2_cell(v2[s], case), v3_cell(v3[s], case))]
        lines.append(f"| {label} | {published} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Accuracy points, mean [95% t-CI over training seeds], `n` seeds at the look the case stopped at; "
        'published: the original / revised paper\'s "up to" numbers. Plan v2 (`flatenn/repro/plans/v2.toml`) and '
        "plan v3 (`flatenn/repro/plans/v3.toml`: one closed testing procedure over direction and equivalence, the "
        "sign-flip test inside it, claim 1 also in the drop view, claim 2 within cells), each committed before its "
        "analysis; v3 re-analyses v2's recorded seeds and trains none (`data stop`: v2 stopped recording that "
        "contrast's models there). `window-sensitive`: a robustness window or a rate of the per-rate band disagrees.",
    ]
    return "\n".join(lines)


def generated_blocks(root: Path) -> dict[tuple[str, str], str]:
    """Every generated block of the tracked pages, by its (start, end) markers, made from the folder ``root``."""
    from .ablation import ablation_markdown
    from .report_v3 import V3_END, V3_START, v3_markdown

    return {
        (V3_START, V3_END): v3_markdown(root, HEADLINE_SCALES),
        (HEADLINE_START, HEADLINE_END): headline_markdown(root),
        (SUMMARY_START, SUMMARY_END): summary_markdown(root),
        (ABLATION_START, ABLATION_END): ablation_markdown(root),
        (MITIGATIONS_START, MITIGATIONS_END): mitigations_markdown(root),
    }


def write_readme(root: Path) -> Path:
    """README.md of a results folder: what each file is, how it was made, and the claims table per scale.

    The tracked ``results/`` lists every scale (and what was never run); a run folder (``runs/<time>/``) lists
    only what it holds: its scales, its plan-v2 tables where it wrote them, the figures it drew."""
    tracked = root.resolve() == (Path(__file__).resolve().parents[2] / "results").resolve()
    made_by = (
        "Each `results/<scale>/` folder was made by `python -m flatenn record --scale <scale>` with the committed "
        "code; `provenance.json` beside the CSVs records the git commit, package versions, device, seeds and "
        "the model config hashes."
        if tracked
        else "This run's commands, code and versions are in each `<scale>/provenance.json`; compare it with the "
        "tracked results by `python -m flatenn compare results/<scale> <this folder>/<scale>`."
    )
    summary = summary_markdown(root, only_present=not tracked)
    out = [
        "# Results",
        "",
        "Generated by `python -m flatenn report` from the tables in this folder; do not edit by hand.",
        "",
        "## Summary",
        "",
        scale_facts(root, only_present=not tracked),
        "",
        *([summary, ""] if summary else []),
        made_by,
        "",
        "| file | what it is |",
        "|---|---|",
    ] + [f"| `{k}` | {v} |" for k, v in FILES.items()]
    out += [
        "",
        "Plan v2 (`verdicts.csv`, plan-v2 scales): see `docs/claims.md` and `flatenn/repro/plans/v2.toml`. "
        "Plan v1 (`claims.csv`, every scale; plan-v2 scales: their first 5 seeds): "
        "verdicts Holm-adjusted over the 16 hypothesis cases of a scale: `supported` / `contradicted` "
        "(adjusted p < 0.05, effect on the claimed / opposite side), `equivalent` (adjusted TOST p < 0.05 "
        "against the declared smallest effect of interest), `inconclusive`, `reported` (context). Effects are "
        "per-seed paired differences (maps shared within a seed, different across seeds) averaged over the "
        "informative rates; the CI is a Student-t interval over training seeds; correlations use a "
        "seed-cluster bootstrap. `up_to` rows are the largest per-point effect, compared with the paper's "
        "'up to X%' (magnitude verdict). The `paper` scale has never been run (no GPU and no CIFAR-10 here).",
    ]
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        claims = read_result(d, "claims")
        if claims.empty:
            continue
        prov = {}
        if (d / "provenance.json").is_file():
            prov = json.loads((d / "provenance.json").read_text())
        runs = prov.get("runs", [])
        run_text = "; ".join(
            f"`{r['run_id']}` ({r['device']['type']}, torch {r['versions']['torch']}): `{r['command']}`" for r in runs
        )
        out += [
            "",
            f"## {d.name}",
            "",
            f"Runs that produced these rows: {run_text or 'unknown'}.",
            "",
            claims_table(claims.sort_values("case")),
        ]
        if (d / "verdicts.csv").is_file():
            out += [
                "",
                "Plan v2 (`flatenn/repro/plans/v2.toml`; looks in `sequential.csv`), all recorded seeds; the table above "
                "is plan v1 on the first 5 seeds:",
                "",
                verdicts_table(read_result(d, "verdicts")),
            ]
        for cid in claims["claim"].drop_duplicates():
            out.append(f"\n- `{cid}`: {CLAIMS[cid].text} Source: {CLAIMS[cid].source}.")
    from .ablation import ablation_markdown, recorded_levels

    ablation = ablation_markdown(root) if tracked or recorded_levels(root) else ""  # once, for both READMEs
    if ablation:
        out += ["", "## Ablation: is a claim false, or is our setup too small?", "", ablation]
        for fig, alt in (("factor_effects", "factor effects"), ("training_curves", "training curves")):
            if (root / "ablation" / "figures" / f"{fig}.png").is_file():
                out += ["", f"![{alt}](ablation/figures/{fig}.png)"]
    mitigations = mitigations_markdown(root)
    if mitigations:
        out += ["", "## Mitigations head-to-head", "", mitigations.replace("](results/", "](")]
    path = root / "README.md"
    path.write_text("\n".join(out) + "\n")
    if tracked:
        refresh_pages(generated_blocks(root))  # the README's and the documentation's generated blocks
    return path


def scale_facts(root: Path, only_present: bool = False) -> str:
    """Per scale: data, model, seeds, trials, whether it ran, and a tally of direction verdicts (``only_present``:
    only the scales the folder holds)."""
    lines = [
        "| scale | data | model | seeds | trials per point | run | verdicts (hypothesis cases) |",
        "|---|---|---|---|---|---|---|",
    ]
    from .decide import PLAN
    from .plan import is_sequential

    for name, s in SCALES.items():
        claims = read_result(root / name, "claims")
        if only_present and not len(claims):
            continue
        seeds = str(len(s.seeds))
        if len(claims):
            hyp = claims[claims["direction"] != 0]["verdict"].value_counts()
            tally = "v1: " + ", ".join(f"{n} {v}" for v, n in hyp.items())
            ran = "yes"
        else:
            tally, ran = "", "never run" if name.startswith("paper") else "not recorded"
        if is_sequential(s):
            looks = "/".join(str(n) for n in PLAN.scales[name].looks)
            training = read_result(root / name, "training")
            got = training["seed"].nunique() if len(training) else 0
            seeds = f"{got} recorded (v2 looks at {looks}; v1 uses the first {len(s.seeds)})"
            if (root / name / "verdicts.csv").is_file():
                v = read_result(root / name, "verdicts")
                dec = v[v["family"] == "primary"]["verdict"].str.split(" ").str[0].value_counts()
                tally += "; v2 primary: " + ", ".join(f"{n} {k}" for k, n in dec.items())
        lines.append(f"| {name} | {s.dataset} | {s.model} (width {s.width}) | {seeds} | {s.trials} | {ran} | {tally} |")
    return "\n".join(lines)


def build_report(root: Path) -> list[Path]:
    """Figures for every scale folder under ``root`` and the README."""
    root = Path(root)
    made = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "claims.csv").is_file()):
        made += scale_figures(d)
    from .ablation import write_ablation

    made += write_ablation(root)
    made.append(write_readme(root))
    return made
