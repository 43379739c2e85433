"""Claim 2 under analysis plan v3: does sharpness track the accuracy drop *within* one (activation, training
method) cell? Per metric, the mean over cells of the cells' Spearman rho between a model's sharpness and its
accuracy drop across training seeds, its p from permutations of the drops within cells only (never across cells,
so differences between activation types or methods cannot make a correlation), Holm over the metrics, and the
plan's claim-level rule, which allows ``mixed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..analysis.stats import holm
from .claims import CLAIMS
from .estimators import model_drop
from .plan_v3 import PLAN_V3
from .scales import ScaleConfig

CLAIM2_COLUMNS = ["case", "metric", "cells", "n", "rho", "cell_rhos", "p_permutation", "p_holm", "verdict", "note"]


def _centered_ranks(values: np.ndarray) -> np.ndarray:
    r = rankdata(values)
    r = r - r.mean()
    norm = np.sqrt((r**2).sum())
    return r / norm if norm > 0 else r


def within_cell_rho(
    cells: list[tuple[np.ndarray, np.ndarray]], permutations: int, seed: int
) -> tuple[float, list[float], float]:
    """(mean of the cells' Spearman rho, each cell's rho, two-sided permutation p); each cell is (sharpness,
    drop) over its seeds, and a permutation shuffles the drops within every cell independently."""
    rng = np.random.default_rng(seed)
    observed, null = [], np.zeros(permutations)
    for x, y in cells:
        rx, ry = _centered_ranks(x), _centered_ranks(y)
        observed.append(float(rx @ ry))
        perms = rng.permuted(np.tile(ry, (permutations, 1)), axis=1)
        null += perms @ rx
    k = len(cells)
    stat = float(np.mean(observed))
    null /= k
    tol = 1e-12
    p = (1 + int(np.sum(np.abs(null) >= abs(stat) - tol))) / (1 + permutations)
    return stat, observed, p


def claim2_rule(signs: list[int]) -> str:
    """The plan's rule over the metrics' Holm-significant signs (+1, -1, or 0 for not significant)."""
    pos, neg = signs.count(1), signs.count(-1)
    if pos and neg:
        return "mixed"
    if pos >= 2:
        return "supported"
    if neg >= 2:
        return "contradicted"
    if pos or neg:
        return "mixed"
    return "inconclusive"


def claim2_v3(tables: dict[str, pd.DataFrame], scale: ScaleConfig, plan: dict, full_seeds: int) -> pd.DataFrame:
    """claim2_v3.csv: one row per metric and the claim-level row (empty where the folder has no sharpness)."""
    sharp = tables.get("sharpness")
    if sharp is None or not len(sharp) or not len(tables.get("campaign", [])):
        return pd.DataFrame(columns=CLAIM2_COLUMNS)
    c2 = plan["claim2"]
    claim = CLAIMS["sharper_minima"]
    drop = model_drop(tables["campaign"], scale.informative_rates)["drop"]
    models = sharp.drop_duplicates("model_id").set_index("model_id")
    models = models[models["train_seed"].isin(range(full_seeds))]
    rows, signs = [], []
    results = []
    for i, metric in enumerate(c2["metrics"]):
        vals = sharp[sharp["metric"] == metric].set_index("model_id")["value"]
        cells, names = [], []
        for variant, grp in models.groupby("variant", sort=True):
            ids = [m for m in grp.index if m in vals.index and m in drop.index]
            if len(ids) >= 3:
                cells.append((vals[ids].to_numpy(float), drop[ids].to_numpy(float)))
                names.append(f"{variant} ({len(ids)})")
        rho, per_cell, p = within_cell_rho(cells, int(plan["claim2_permutations"]), int(plan["claim2_seed"]) + i)
        results.append((metric, names, sum(len(x) for x, _ in cells), rho, per_cell, p))
    adjusted = holm([r[5] for r in results])
    for (metric, names, n, rho, per_cell, p), p_adj in zip(results, adjusted, strict=True):
        sign = 0 if p_adj > plan["alpha"] else (1 if rho > 0 else -1)
        signs.append(sign)
        rows.append(
            {
                "case": f"sharper_minima[within_cell_{metric}]",
                "metric": metric,
                "cells": "; ".join(names),
                "n": n,
                "rho": rho,
                "cell_rhos": "; ".join(f"{r:.3g}" for r in per_cell),
                "p_permutation": p,
                "p_holm": p_adj,
                "verdict": {1: "supported", -1: "contradicted", 0: "not significant"}[sign],
                "note": "mean of within-cell Spearman rho; drops permuted within cells; Holm over the metrics",
            }
        )
    rows.append(
        {
            "case": "sharper_minima[claim]",
            "metric": "claim",
            "cells": c2["cells"],
            "n": len(models),
            "rho": np.nan,
            "cell_rhos": "",
            "p_permutation": np.nan,
            "p_holm": np.nan,
            "verdict": claim2_rule(signs),
            "note": f"rule ({PLAN_V3.name}): {c2['rule']}; claim: {claim.text}",
        }
    )
    return pd.DataFrame(rows, columns=CLAIM2_COLUMNS)
