"""Tidy tables with a stable schema: fixed column order, sorted rows, fixed float format.

Floats are written with ``%.6g`` (not ``%.4f`` as first planned: fault rates such as 3e-5 would
print as 0.0000; not ``%.17g``, which diffs noisily). Reading casts every known column back to its
declared type, so whole-number floats do not come back as ints and ``bits`` labels stay text.

Summaries, claims and verdicts are plain CSV that a person can diff. The per-trial campaign rows of a
results folder (hundreds of thousands of rows) are a zstd-compressed Parquet file, ``campaign.parquet``:
the same columns, order and sort, and every float is stored as the value its ``%.6g`` text reads back, so a
table holds the same numbers in either format (:func:`table_file` names where a table lives; a folder
written before keeps its ``campaign.csv``). The format follows the file name: ``.parquet`` or ``.csv``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write_bytes, atomic_write_text

FLOAT_FORMAT = "%.6g"

# table -> (columns in order with dtypes, sort keys)
SCHEMAS: dict[str, tuple[dict[str, str], list[str]]] = {
    "campaign": (
        {
            "model_id": "str",
            "variant": "str",
            "train_seed": "int64",
            "fingerprint": "str",
            "fault_model": "str",
            "bits": "str",
            "layers": "str",
            "protection": "str",
            "n_eval": "int64",
            "eval_data": "str",
            "rate": "float64",
            "count": "int64",
            "seed": "int64",
            "trial": "int64",
            "faulty_bits": "int64",
            "changed_weights": "int64",
            "accuracy": "float64",
            "loss": "float64",
            "clean_accuracy": "float64",
            "clean_loss": "float64",
            "run_id": "str",
        },
        [
            "model_id",
            "fingerprint",
            "fault_model",
            "bits",
            "layers",
            "protection",
            "n_eval",
            "eval_data",
            "rate",
            "count",
            "seed",
            "trial",
        ],
    ),
}
# columns added after tables were recorded: a table written before reads them as this value
# (eval_data: the fingerprint of the evaluation data and batching; "" = not recorded, such rows are never reused;
# protection: the inference-time protection the campaign ran under, flatenn.faults.protection)
OPTIONAL_COLUMNS: dict[str, dict[str, str]] = {"campaign": {"eval_data": "", "protection": "none"}}

# Tables without declared dtypes (read as pandas infers them): their columns and unique row key.
# Reading one checks that the columns are there and that no key appears twice (a duplicated or
# hand-merged row), naming the file and the lines.
TRAINING_COLUMNS = [
    "model_id",
    "variant",
    "seed",
    "key",
    "fingerprint",
    "source",
    "dataset",
    "model",
    "width",
    "activation",
    "threshold",
    "optimizer",
    "rho",
    "epochs",
    "clean_accuracy",
    "clean_loss",
    "sparsity",
    "run_id",
]
SHARPNESS_COLUMNS = [
    "model_id",
    "variant",
    "train_seed",
    "fingerprint",
    "metric",
    "value",
    "stderr",
    "iterations",
    "n_examples",
    "seed",
    "run_id",
]
SPARSITY_COLUMNS = ["model_id", "variant", "train_seed", "fingerprint", "layer", "zeros", "total", "sparsity", "run_id"]
LANDSCAPE_COLUMNS = ["model_id", "variant", "train_seed", "fingerprint", "alpha", "loss", "accuracy", "run_id"]
SUMMARY_KEY = ["model_id", "fault_model", "bits", "layers", "n_eval", "rate", "count"]
SUMMARY_COLUMNS = [
    "model_id",
    "variant",
    "train_seed",
    "fingerprint",
    *SUMMARY_KEY[1:],
    "trials",
    "accuracy_mean",
    "accuracy_sd",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "loss_mean",
    "faulty_bits_mean",
    "clean_accuracy",
]
KEYED_TABLES: dict[str, tuple[list[str], list[str]]] = {
    "training": (TRAINING_COLUMNS, ["model_id"]),
    "sharpness": (SHARPNESS_COLUMNS, ["model_id", "metric"]),
    "sparsity": (SPARSITY_COLUMNS, ["model_id", "layer"]),
    "landscape": (LANDSCAPE_COLUMNS, ["model_id", "alpha"]),
    "campaign_summary": (SUMMARY_COLUMNS, SUMMARY_KEY),
    "claims": (["case"], ["case"]),
    "claims_detail": (["claim", "metric", "fault_model", "rate"], ["claim", "metric", "fault_model", "rate"]),
    "verdicts": (["family", "case"], ["case"]),
    "sequential": (["look", "case"], ["look", "case"]),
    "verdicts_v3": (["contrast", "verdict"], ["contrast"]),
    "per_rate_v3": (["contrast", "fault_model", "rate"], ["contrast", "fault_model", "rate"]),
    "claim2_v3": (["case", "verdict"], ["case"]),
}


def write_table(
    df: pd.DataFrame, path: str | Path, columns: list[str] | None = None, sort: list[str] | None = None
) -> None:
    """Write ``df`` atomically as CSV: given column order, rows sorted, ``%.6g`` floats, ``\\n`` ends."""
    path = Path(path)
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"table for {path.name} lacks columns {missing}")
        df = df[columns]
    if sort:
        df = df.sort_values(sort, kind="mergesort")
    atomic_write_text(path, df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"))


COLUMNAR_TABLES = {"campaign": "campaign.parquet"}  # per-trial rows: a columnar file inside a results folder


def table_file(folder: str | Path, name: str) -> Path:
    """Where table ``name`` lives in a results folder: ``campaign.parquet`` for the per-trial rows (or the
    ``campaign.csv`` of a folder written before, which stays CSV), ``<name>.csv`` for every other table."""
    folder = Path(folder)
    legacy = folder / f"{name}.csv"
    if name not in COLUMNAR_TABLES:
        return legacy
    columnar = folder / COLUMNAR_TABLES[name]
    return legacy if legacy.is_file() and not columnar.is_file() else columnar


def is_columnar(path: str | Path) -> bool:
    return Path(path).suffix == ".parquet"


def _as_written(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The float columns as their ``%.6g`` text reads back (what a CSV of the table would hold)."""
    floats = [c for c in columns if pd.api.types.is_float_dtype(df[c])]
    if not floats or not len(df):
        return df
    text = df[floats].to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    back = pd.read_csv(io.StringIO(text), dtype={c: "float64" for c in floats})
    return df.assign(**{c: back[c].to_numpy() for c in floats})


def write_schema_table(df: pd.DataFrame, path: str | Path, table: str) -> None:
    """Write a table with a declared schema (see ``SCHEMAS``): CSV, or Parquet for a ``.parquet`` path."""
    cols, sort = SCHEMAS[table]
    missing = {c: v for c, v in OPTIONAL_COLUMNS.get(table, {}).items() if c not in df.columns}
    if missing:
        df = df.assign(**missing)
    df = df.astype({c: t for c, t in cols.items() if c in df.columns})
    if not is_columnar(path):
        write_table(df, path, list(cols), sort)
        return
    lacking = [c for c in cols if c not in df.columns]
    if lacking:
        raise KeyError(f"table for {Path(path).name} lacks columns {lacking}")
    df = _as_written(df[list(cols)].sort_values(sort, kind="mergesort"), list(cols)).reset_index(drop=True)
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", compression="zstd", index=False)
    atomic_write_bytes(Path(path), buf.getvalue())


class ResultsTableError(ValueError):
    """A results table is damaged: names the file, the line and what is wrong."""


def _check_rows_complete(path: Path) -> None:
    """Every line has the header's number of fields and the file ends with a newline (our writer's format)."""
    import csv

    text = path.read_text()
    if text and not text.endswith("\n"):
        raise ResultsTableError(f"{path}, line {text.count(chr(10)) + 1}: the file ends inside a row (cut off?)")
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    for i, row in enumerate(rows, start=2):
        if header is not None and len(row) != len(header):
            raise ResultsTableError(f"{path}, line {i}: {len(row)} fields, the header has {len(header)}")


# value ranges checked on read: column -> (low, high); NaN is never allowed in these
RANGES = {
    "accuracy": (0.0, 100.0),
    "clean_accuracy": (0.0, 100.0),
    "loss": (0.0, float("inf")),
    "clean_loss": (0.0, float("inf")),
    "rate": (0.0, 1.0),
    "trial": (0, float("inf")),
    "faulty_bits": (0, float("inf")),
    "changed_weights": (0, float("inf")),
    "n_eval": (1, float("inf")),
}


def read_table(path: str | Path, table: str | None = None) -> pd.DataFrame:
    """Read a CSV; with a known ``table`` name the declared dtypes, ranges and unique keys are checked.

    A damaged file raises :class:`ResultsTableError` naming the file and the first bad line (line 1 is
    the header), never a raw pandas error, and is never silently reused.
    """
    path = Path(path)
    if table is None and (path.stem in SCHEMAS or path.stem in KEYED_TABLES):
        table = path.stem
    where = "row" if is_columnar(path) else "line"  # a Parquet file has rows, numbered from 1 after no header
    try:
        if is_columnar(path):
            df = _read_columnar(path)
            if table is None:
                return df
            if table in KEYED_TABLES:
                return _check_keyed(df, path, *KEYED_TABLES[table])
            cols, key = SCHEMAS[table]
        else:
            if table is None:
                return pd.read_csv(path, keep_default_na=True)
            if table in KEYED_TABLES:
                _check_rows_complete(path)
                return _check_keyed(pd.read_csv(path, keep_default_na=True), path, *KEYED_TABLES[table])
            cols, key = SCHEMAS[table]
            _check_rows_complete(path)
            text_cols = {c: str for c, t in cols.items() if t == "str"}
            df = pd.read_csv(path, dtype=text_cols, keep_default_na=False, na_values=[""])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ResultsTableError(f"{path}: not a readable CSV table ({str(e).strip()}); delete or restore it") from None
    for c, default in OPTIONAL_COLUMNS.get(table, {}).items():
        if c not in df.columns:
            df.insert(list(cols).index(c), c, default)
        else:
            df[c] = df[c].fillna(default)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ResultsTableError(
            f"{path}: columns {missing} are missing (header: {list(df.columns)}); delete or restore the file"
        )
    first = 2 if where == "line" else 1  # line 1 of a CSV is its header
    for c, t in cols.items():
        if t == "str":
            if where == "row" and not (pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object):
                raise ResultsTableError(f"{path}: column {c} holds {df[c].dtype} values, expected text")
            continue
        conv = pd.to_numeric(df[c], errors="coerce")
        bad = conv.isna() | ~np.isfinite(conv.astype(float))
        if t == "int64":
            bad |= conv.notna() & (conv != conv.round())
        lo, hi = RANGES.get(c, (-np.inf, np.inf))
        bad |= ~conv.between(lo, hi)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ResultsTableError(
                f"{path}, {where} {i + first}: column {c} is {df[c].iloc[i]!r}, expected a finite "
                f"{'whole number' if t == 'int64' else 'number'} in [{lo:g}, {hi:g}]"
            )
        df[c] = conv.astype(t)
    _duplicate_keys(df, path, key)
    return df


def _read_columnar(path: Path) -> pd.DataFrame:
    """A Parquet table; a file that is not one (cut off, overwritten) is a :class:`ResultsTableError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ResultsTableError(
            f"{path}: not a readable Parquet table ({str(e).strip()[:200]}); delete or restore it"
        ) from None


def _duplicate_keys(df: pd.DataFrame, path: Path, key: list[str]) -> None:
    dup = df.duplicated(key, keep=False)
    if dup.any():
        where, first_line = ("rows", 1) if is_columnar(path) else ("lines", 2)
        lines = (np.flatnonzero(dup.to_numpy())[:4] + first_line).tolist()
        first = df.loc[dup, key].iloc[0].tolist()
        raise ResultsTableError(
            f"{path}, {where} {lines}: the same row key {key} = {first} appears more than once "
            "(a duplicated row); delete the extra row or restore the file"
        )


def _check_keyed(df: pd.DataFrame, path: Path, columns: list[str], key: list[str]) -> pd.DataFrame:
    """Columns present, no empty key field, no key twice (see ``KEYED_TABLES``)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultsTableError(
            f"{path}: columns {missing} are missing (header: {list(df.columns)}); delete or restore the file"
        )
    for c in key:
        if df[c].dtype == object and df[c].isna().any():
            i = int(np.flatnonzero(df[c].isna().to_numpy())[0])
            raise ResultsTableError(f"{path}, line {i + 2}: column {c} is empty (it is part of the row key)")
    _duplicate_keys(df, path, key)
    return df


RESULT_TABLES = ("training", "sharpness", "sparsity", "landscape", "campaign")


def read_result(folder: str | Path, name: str) -> pd.DataFrame:
    """Table ``name`` of a results folder (:func:`table_file`; declared types for known schemas), or an empty
    frame when absent."""
    path = table_file(folder, name)
    if not path.is_file():
        return pd.DataFrame()
    return read_table(path, name if name in SCHEMAS or name in KEYED_TABLES else None)


def read_results(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The raw tables of one ``results/<scale>`` folder that claims are derived from."""
    return {name: read_result(folder, name) for name in RESULT_TABLES}


def table_checksums(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every table file (CSV, Parquet) of a results folder (recorded in provenance.json; verify
    re-checks them)."""
    import hashlib

    files = sorted([*Path(folder).glob("*.csv"), *Path(folder).glob("*.parquet")])
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def text_or_empty(v) -> str:
    """A table cell as text: NaN/None (an empty CSV field read back) becomes ''."""
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)
