"""The rate window a claim is estimated over: the rows of a per-rate table whose (fault model, rate) it names.

Shared by the claim estimators and the mitigation report, so both average the same rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def in_window(per: pd.DataFrame, rates: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """Rows of ``per`` whose ``rate`` is one of ``rates[fault_model]`` (rates compared at 12 decimals)."""
    keep = np.zeros(len(per), bool)
    for fm, rs in rates.items():
        keep |= (per["fault_model"] == fm).to_numpy() & np.isin(per["rate"].round(12), np.round(rs, 12))
    return per[keep]
