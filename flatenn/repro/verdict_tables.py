"""The derived tables of the sequential analysis plans, written into a results folder: plan v2's ``verdicts.csv``
(every case) and ``sequential.csv`` (every look of every primary case), and plan v3's ``verdicts_v3.csv``,
``per_rate_v3.csv`` and ``claim2_v3.csv``, all from the folder's raw tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.results import write_table
from .decide import SEQUENTIAL_COLUMNS, VERDICT_COLUMNS, evaluate_v2
from .decide_v3 import v3_tables
from .scales import ScaleConfig


def write_plan_tables(
    tables: dict[str, pd.DataFrame], scale: ScaleConfig, directory: Path
) -> tuple[pd.DataFrame, list[str]]:
    """Write every plan-v2 and plan-v3 table of ``scale`` into ``directory``; (plan v2's verdicts, the tables'
    names)."""
    verdicts, seq = evaluate_v2(tables, scale)
    write_table(verdicts, directory / "verdicts.csv", VERDICT_COLUMNS)
    write_table(seq, directory / "sequential.csv", SEQUENTIAL_COLUMNS, sort=["look", "case"])
    names = ["verdicts", "sequential"]
    for name, (rows, columns, sort) in v3_tables(tables, scale, verdicts).items():
        write_table(rows, directory / f"{name}.csv", columns, sort=sort)
        names.append(name)
    return verdicts, names
