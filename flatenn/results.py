"""Tidy CSV tables with a stable schema: fixed column order, sorted rows, fixed float format.

Floats are written with ``%.6g`` (not ``%.4f`` as first planned: fault rates such as 3e-5 would
print as 0.0000; not ``%.17g``, which diffs noisily). Reading casts every known column back to its
declared type, so whole-number floats do not come back as ints and ``bits`` labels stay text.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

FLOAT_FORMAT = "%.6g"

# table -> (columns in order with dtypes, sort keys)
SCHEMAS: dict[str, tuple[dict[str, str], list[str]]] = {
    "campaign": (
        {"model_id": "str", "variant": "str", "train_seed": "int64", "fingerprint": "str", "fault_model": "str",
         "bits": "str", "layers": "str", "n_eval": "int64", "rate": "float64", "count": "int64", "seed": "int64",
         "trial": "int64", "faulty_bits": "int64", "changed_weights": "int64", "accuracy": "float64",
         "loss": "float64", "clean_accuracy": "float64", "clean_loss": "float64", "run_id": "str"},
        ["model_id", "fault_model", "bits", "layers", "n_eval", "rate", "count", "seed", "trial"],
    ),
}  # fmt: skip


def write_table(df: pd.DataFrame, path: str | Path, columns: list[str] | None = None,
                sort: list[str] | None = None) -> None:
    """Write ``df`` atomically as CSV: given column order, rows sorted, ``%.6g`` floats, ``\\n`` ends."""
    path = Path(path)
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"table for {path.name} lacks columns {missing}")
        df = df[columns]
    if sort:
        df = df.sort_values(sort, kind="mergesort")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_schema_table(df: pd.DataFrame, path: str | Path, table: str) -> None:
    """Write a table with a declared schema (see ``SCHEMAS``)."""
    cols, sort = SCHEMAS[table]
    write_table(df.astype({c: t for c, t in cols.items() if c in df.columns}), path, list(cols), sort)


def read_table(path: str | Path, table: str | None = None) -> pd.DataFrame:
    """Read a CSV; with a known ``table`` name the declared dtypes are applied."""
    if table is None:
        return pd.read_csv(path, keep_default_na=True)
    cols, _ = SCHEMAS[table]
    text_cols = {c: str for c, t in cols.items() if t == "str"}
    df = pd.read_csv(path, dtype=text_cols, keep_default_na=False, na_values=[""])
    return df.astype({c: t for c, t in cols.items() if c in df.columns and t != "str"})


RESULT_TABLES = ("training", "sharpness", "sparsity", "landscape", "campaign")


def read_result(folder: str | Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.csv`` (declared types for known schemas), or an empty frame when absent."""
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        return pd.DataFrame()
    return read_table(path, name if name in SCHEMAS else None)


def read_results(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The raw tables of one ``results/<scale>`` folder that claims are derived from."""
    return {name: read_result(folder, name) for name in RESULT_TABLES}


def table_checksums(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every CSV of a results folder (recorded in provenance.json; verify re-checks them)."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).glob("*.csv"))}
