"""Seeds needed to decide each primary claim: power of the seed-level t test from recorded seed SDs.

For every primary hypothesis case (``tier = "primary"`` in claims.toml, accuracy view) of a recorded
scale: the per-seed effects, their SD, the effect detectable with 80% power at today's seeds, and the
seeds needed to detect the case's SESOI, at Holm's first-step level for a family of the v1 plan's size
(every hypothesis case of the scale) and of the four primary cases alone (the hierarchical family
proposed for plan v2). The SD is itself an estimate from few seeds: the counts are a planning guide.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..analysis.power import detectable_effect, seeds_for_power
from ..analysis.stats import ALPHA
from .claims import CLAIMS, cases, hypothesis_family, seed_effects
from .scales import ScaleConfig

COLUMNS = ["case", "seeds", "effect", "seed_sd", "sesoi", "family", "alpha", "detectable_now", "seeds_needed"]


def primary_cases(scale: ScaleConfig) -> list:
    return [
        c
        for c in cases()
        if CLAIMS[c.claim].tier == "primary"
        and c.direction == 1
        and c.metric.startswith("acc")
        and (scale.claims is None or c.claim in scale.claims)
    ]


def power_table(tables: dict[str, pd.DataFrame], scale: ScaleConfig, power: float = 0.8) -> pd.DataFrame:
    """One row per (primary case, family): seeds needed for ``power`` at the SESOI (see the module docstring)."""
    primary = primary_cases(scale)
    families = {
        "v1: all hypothesis cases": len(hypothesis_family(scale.claims, scale)),
        "v2: primary cases": len(primary),
    }
    rows = []
    from .plan import is_sequential, seeds_recorded

    for case in primary:
        at = scale
        if is_sequential(scale):  # plan v2: every seed recorded for the case's models
            from .decide import block_complete

            seeds = [s for s in seeds_recorded(scale) if block_complete(tables, scale, case.claim, [s])]
            at = dataclasses.replace(scale, seeds=tuple(seeds))
        effects = seed_effects(case, tables, at).to_numpy()
        sd, n = float(np.std(effects, ddof=1)), len(effects)
        for fam, m in families.items():
            alpha = ALPHA / m
            rows.append(
                {
                    "case": case.id,
                    "seeds": n,
                    "effect": float(effects.mean()),
                    "seed_sd": sd,
                    "sesoi": case.sesoi,
                    "family": f"{fam} ({m})",
                    "alpha": alpha,
                    "detectable_now": detectable_effect(n, sd, alpha, power),
                    "seeds_needed": seeds_for_power(case.sesoi, sd, alpha, power),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)
