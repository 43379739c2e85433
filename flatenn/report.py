"""Figures and ``results/README.md``, made from the recorded CSVs alone (no model is touched)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .claims import CLAIMS  # noqa: E402
from .results import read_result  # noqa: E402
from .scales import MAIN_VARIANTS, SCALES  # noqa: E402
from .stats import mean_ci  # noqa: E402

COLORS = {"standard-sgd": "tab:blue", "sparse-sgd": "tab:red", "standard-saq": "tab:green", "sparse-saq": "tab:orange"}


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_rate(summary: pd.DataFrame, path: Path) -> None:
    """Accuracy vs fault rate per fault model, the four variants with 95% CI bands over seeds."""
    fms = sorted(summary["fault_model"].unique())
    fig, axes = plt.subplots(1, len(fms), figsize=(4.5 * len(fms), 3.6), squeeze=False)
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
        ax.set_xscale("log")
        ax.set_title(fm)
        ax.set_xlabel("bit error rate")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _save(fig, path)


def plot_claim_gaps(detail: pd.DataFrame, path: Path) -> None:
    """Paired accuracy gap of each campaign claim vs rate, per fault model, with 95% CIs over seeds."""
    d = detail[detail["metric"].isin(["acc_gap", "acc_gain"])]
    claims = sorted(d["claim"].unique())
    fig, axes = plt.subplots(1, max(len(claims), 1), figsize=(4.5 * max(len(claims), 1), 3.6), squeeze=False)
    for ax, c in zip(axes[0], claims, strict=False):
        for fm, g in d[d["claim"] == c].groupby("fault_model"):
            g = g.sort_values("rate")
            ax.errorbar(g["rate"], g["effect"], yerr=[g["effect"] - g["ci_low"], g["ci_high"] - g["effect"]],
                        marker="o", ms=3, capsize=2, label=fm)  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("bit error rate")
        ax.set_ylabel("paired accuracy gap (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_landscapes_1d(land: pd.DataFrame, path: Path, title: str = "") -> None:
    """1-D filter-normalized loss landscapes of several models (mean over training seeds per variant)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    key = "variant" if "variant" in land.columns else "model_id"
    for v, g in land.groupby(key):
        m = g.groupby("alpha")["loss"].mean()
        ax.plot(m.index, m.to_numpy(), label=v, color=COLORS.get(v))
    ax.set_xlabel("alpha (filter-normalized direction)")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title or "1-D loss landscape")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_landscape_2d(grid: pd.DataFrame, path: Path, title: str = "") -> None:
    """Contour plot of a 2-D landscape (columns alpha, beta, loss)."""
    piv = grid.pivot(index="beta", columns="alpha", values="loss")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    cs = ax.contour(piv.columns, piv.index, np.log10(piv.to_numpy()), levels=15)
    ax.clabel(cs, fontsize=6)
    ax.set_xlabel("alpha")
    ax.set_ylabel("beta")
    ax.set_title(title or "log10 loss")
    _save(fig, path)


def plot_sharpness_vs_drop(sharp: pd.DataFrame, camp: pd.DataFrame, claims: pd.DataFrame, scale, path: Path) -> None:
    """Each sharpness metric against the mean accuracy drop (informative rates), Spearman rho in titles."""
    from .claims import SHARP_METRICS, _model_drop

    drop = _model_drop(camp, scale.informative_rates)["drop"]
    fig, axes = plt.subplots(1, len(SHARP_METRICS), figsize=(4.3 * len(SHARP_METRICS), 3.5), squeeze=False)
    for ax, m in zip(axes[0], SHARP_METRICS, strict=True):
        v = sharp[sharp["metric"] == m].set_index("model_id")
        common = v.index.intersection(drop.index)
        for mid in common:
            var = v.loc[mid, "variant"]
            ax.scatter(v.loc[mid, "value"], drop[mid], color=COLORS.get(var, "gray"), s=18)
        row = claims[claims["case"] == f"sharper_minima[spearman_{m}]"]
        rho = (f"rho={row['effect'].iloc[0]:.2f} [{row['ci_low'].iloc[0]:.2f}, {row['ci_high'].iloc[0]:.2f}]"
               " (seed-cluster bootstrap)") if len(row) else ""  # fmt: skip
        ax.set_title(f"{m}  {rho}", fontsize=9)
        if m == SHARP_METRICS[0]:
            for var, color in COLORS.items():
                ax.scatter([], [], color=color, s=18, label=var)
            ax.legend(fontsize=7)
        ax.set_xlabel(m)
        ax.set_ylabel("accuracy drop (points)")
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_sparsity(sp: pd.DataFrame, path: Path) -> None:
    """Per-layer activation sparsity of each variant (mean over seeds)."""
    layers = [x for x in sp["layer"].drop_duplicates() if x != "overall"] + ["overall"]
    variants = [v for v in sp["variant"].drop_duplicates()]
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(layers) * max(len(variants), 1) / 2), 3.6))
    w = 0.8 / max(len(variants), 1)
    for i, v in enumerate(variants):
        m = sp[sp["variant"] == v].groupby("layer")["sparsity"].mean().reindex(layers)
        ax.bar(np.arange(len(layers)) + i * w, 100 * m.to_numpy(), w, label=v, color=COLORS.get(v))
    ax.set_xticks(np.arange(len(layers)) + 0.4 - w / 2)
    ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("zeros after activation (%)")
    ax.legend(fontsize=7)
    _save(fig, path)


def scale_figures(d: Path) -> list[Path]:
    """Draw every figure whose CSVs exist under one ``results/<scale>`` folder."""
    scale = SCALES.get(d.name)
    fig_dir = d / "figures"
    fig_dir.mkdir(exist_ok=True)
    made = []
    summary, detail, land = read_result(d, "campaign_summary"), read_result(d, "claims_detail"), read_result(d, "landscape")
    sharp, camp, claims, sp = read_result(d, "sharpness"), read_result(d, "campaign"), read_result(d, "claims"), read_result(d, "sparsity")
    if len(summary):
        plot_accuracy_vs_rate(summary, fig_dir / "accuracy_vs_rate.png")
        made.append(fig_dir / "accuracy_vs_rate.png")
    if len(detail):
        plot_claim_gaps(detail, fig_dir / "claim_gaps.png")
        made.append(fig_dir / "claim_gaps.png")
    if len(land):
        plot_landscapes_1d(land[land["variant"].isin(MAIN_VARIANTS)], fig_dir / "landscape_1d.png", d.name)
        made.append(fig_dir / "landscape_1d.png")
    if len(sharp) and len(camp) and scale is not None:
        plot_sharpness_vs_drop(sharp, camp, claims, scale, fig_dir / "sharpness_vs_drop.png")
        made.append(fig_dir / "sharpness_vs_drop.png")
    if len(sp):
        plot_sparsity(sp, fig_dir / "sparsity_per_layer.png")
        made.append(fig_dir / "sparsity_per_layer.png")
    return made


FILES = {
    "training.csv": "one row per trained model: config, clean test accuracy (%), loss, activation sparsity",
    "campaign.csv": "one row per (model, fault model, rate, trial): faulty bits, changed weights, accuracy (%), loss",
    "campaign_summary.csv": "mean, sd, 95% CI of accuracy per (model, fault model, rate)",
    "sharpness.csv": "sharpness metrics per model (value, standard error where defined, data subset size, seed)",
    "landscape.csv": "1-D filter-normalized loss landscape per model",
    "sparsity.csv": "activation sparsity per layer and overall per model (evaluation set)",
    "claims.csv": "one row per claim case: effect, 95% CI, verdict, band, paper values",
    "claims_detail.csv": "paired effects per (claim, fault model, rate) with 95% CIs over training seeds",
    "provenance.json": "git commit, versions, device, scale config (seeds, rates, trials), model config hashes, timings",
    "figures/": "accuracy vs rate, claim gaps, 1-D landscapes, sharpness vs drop, per-layer sparsity",
}


def _text(v) -> str:
    return "" if pd.isna(v) else str(v)


def claims_table(claims: pd.DataFrame) -> str:
    lines = ["| case | effect | 95% CI | unit | p (Holm) | verdict | window-stable | paper | magnitude |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in claims.itertuples():
        p = "" if pd.isna(r.p_holm) else f"{r.p_holm:.3g}"
        lines.append(f"| {r.case} | {r.effect:.3g} | [{r.ci_low:.3g}, {r.ci_high:.3g}] | {r.unit} | {p} | {r.verdict} | "
                     f"{'yes' if r.window_stable else 'no'} | {_text(r.paper_values)} | {_text(r.magnitude)} |")  # fmt: skip
    return "\n".join(lines)


def write_readme(root: Path) -> Path:
    """results/README.md: what each file is, how it was made, and the claims table per scale."""
    out = ["# Results", "",
           "Generated by `python -m flatenn report` from the CSVs in this folder; do not edit by hand.", "",
           "Each `results/<scale>/` folder was made by `nox -s reproduce -- --scale <scale>` "
           "(`smoke` is the default) with the committed code; `provenance.json` beside the CSVs records the git "
           "commit, package versions, device, seeds and the model config hashes.", "",
           "| file | what it is |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in FILES.items()]  # fmt: skip
    out += ["", "Verdicts: `supported` (95% CI on the claimed side of 0), `contradicted` (CI on the other side), "
            "`inconclusive` (CI covers 0), `reported` (context, no hypothesis). Effects are paired differences "
            "under common fault maps, averaged over the informative rates and over training seeds; the CI is a "
            "Student-t interval over seeds. `up_to` rows are the largest per-point effect (as in the paper's "
            "'up to X%'), which is biased upward by selection."]  # fmt: skip
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        claims = read_result(d, "claims")
        if claims.empty:
            continue
        prov = {}
        if (d / "provenance.json").is_file():
            prov = json.loads((d / "provenance.json").read_text())
        runs = prov.get("runs", [])
        run_text = "; ".join(f"`{r['run_id']}` ({r['device']['type']}, torch {r['versions']['torch']}): "
                             f"`{r['command']}`" for r in runs)  # fmt: skip
        out += ["", f"## {d.name}", "", f"Runs that produced these rows: {run_text or 'unknown'}.",
                "", claims_table(claims.sort_values("case"))]  # fmt: skip
        for cid in claims["claim"].drop_duplicates():
            out.append(f"\n- `{cid}`: {CLAIMS[cid].text} Source: {CLAIMS[cid].source}.")
    path = root / "README.md"
    path.write_text("\n".join(out) + "\n")
    return path


def build_report(root: Path) -> list[Path]:
    """Figures for every scale folder under ``root`` and the README."""
    root = Path(root)
    made = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "claims.csv").is_file()):
        made += scale_figures(d)
    made.append(write_readme(root))
    return made
