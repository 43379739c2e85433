"""A results folder (``<results>/<scale>/``): one writer, tables with schemas, models, provenance.

:class:`ResultsFolder` owns everything on disk that a run writes: the folder lock (one writer), the
cleanup of temp files a killed writer left, the tables (read once and kept in memory for the run,
merged by their declared key and written whole, atomically), the models that no row refers to any
more, and ``provenance.json`` (which runs wrote the rows, their git state, versions, device, status,
the scale config, the models and the tables' checksums). The experiment decides *what* to compute;
this class decides how it lands on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pandas as pd

from ..core.atomic import atomic_write_text
from ..core.locks import FolderLock, clean_stale_temp_files
from ..core.results import (
    KEYED_TABLES,
    RESULT_TABLES,
    SCHEMAS,
    read_result,
    table_checksums,
    table_file,
    write_schema_table,
    write_table,
)

MEASURED_TABLES = ("campaign", "sharpness", "sparsity", "landscape")


class ResultsFolder:
    """The folder of one scale's results; see the module docstring."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the results folder {self.path}: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise ValueError(f"results folder {self.path} is not writable; choose another --results-dir")
        self.lock = FolderLock(self.path)  # one writer per folder; released when the process ends
        clean_stale_temp_files(self.path)
        self._tables: dict[str, pd.DataFrame] = {}

    def release(self) -> None:
        self.lock.release()

    # ---- tables -----------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """A raw or derived table (empty when not written yet), read once per run."""
        if name not in self._tables:
            self._tables[name] = read_result(self.path, name)
        return self._tables[name]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The raw tables claims are derived from (in memory; a table is re-read only after it changed)."""
        return {name: self.table(name) for name in RESULT_TABLES}

    def changed(self, name: str) -> None:
        """Forget the in-memory copy of a table something else wrote (a campaign's ``out`` file)."""
        self._tables.pop(name, None)

    def merge(self, name: str, rows: pd.DataFrame) -> pd.DataFrame:
        """New rows replace old ones with the same key (``KEYED_TABLES``); the table is written whole."""
        columns, key = KEYED_TABLES[name]
        old = self.table(name)
        merged = pd.concat([old, rows], ignore_index=True).drop_duplicates(key, keep="last") if len(old) else rows
        write_table(merged, self.path / f"{name}.csv", columns, sort=key)
        self._tables[name] = read_result(self.path, name)
        return self._tables[name]

    def has_rows(self, name: str, model_id: str, fingerprint: str) -> bool:
        t = self.table(name)
        return len(t) > 0 and bool(((t["model_id"] == model_id) & (t["fingerprint"] == fingerprint)).any())

    def drop_model_rows(self, model_id: str, fingerprint: str) -> None:
        """Remove rows of ``model_id`` measured on another model (another fingerprint) from every measured table."""
        for name in MEASURED_TABLES:
            path = table_file(self.path, name)
            if not path.is_file():
                continue
            t = self.table(name)
            stale = (t["model_id"] == model_id) & (t["fingerprint"] != fingerprint)
            if not stale.any():
                continue
            print(
                f"{path}: {int(stale.sum())} rows of {model_id} were measured on another model "
                f"(fingerprint {t.loc[stale, 'fingerprint'].iloc[0]} != {fingerprint}); recomputing them",
                file=sys.stderr,
            )
            kept = t[~stale]
            if name in SCHEMAS:
                write_schema_table(kept, path, name)
            else:
                write_table(kept, path)
            self.changed(name)

    def prune_models(self) -> None:
        """Delete model files of the folder that no row of training.csv refers to (replaced models)."""
        training = self.table("training")
        keep = set(training["key"]) if len(training) else set()
        for f in (self.path / "models").glob("*"):
            if f.suffix in (".pt", ".json") and f.stem not in keep:
                f.unlink()

    def convert_to_columnar(self, commit: str) -> dict | None:
        """Move a ``campaign.csv`` of a folder written before 0.4 to ``campaign.parquet`` (the same rows and
        numbers: the file is read as the table, written, read back and compared value for value before the CSV
        goes); provenance.json records the conversion (both files' SHA-256 and ``commit``) beside the runs,
        which stay as they are. Returns that record, or None when there is nothing to convert."""
        import hashlib

        from ..core.results import COLUMNAR_TABLES, read_table

        csv = self.path / "campaign.csv"
        if not csv.is_file():
            return None
        target = self.path / COLUMNAR_TABLES["campaign"]
        before = read_table(csv, "campaign")
        write_schema_table(before, target, "campaign")
        after = read_table(target, "campaign")
        if set(after.columns) != set(before.columns) or not after.equals(before[list(after.columns)]):
            target.unlink()
            raise ValueError(f"{csv}: the Parquet copy differs from the CSV; nothing converted")
        record = {
            "from": csv.name,
            "to": target.name,
            "from_sha256": hashlib.sha256(csv.read_bytes()).hexdigest(),
            "to_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "rows": len(after),
            "commit": commit,
            "note": "the same rows and numbers in a columnar file (read, written, read back and compared)",
        }
        prov = self.read_provenance()
        csv.unlink()
        self._tables.pop("campaign", None)
        if prov is not None:
            prov.setdefault("conversions", []).append(record)
            prov["tables_sha256"] = table_checksums(self.path)
            atomic_write_text(self.path / "provenance.json", json.dumps(prov, indent=1, sort_keys=True) + "\n")
        return record

    # ---- provenance -------------------------------------------------------------------------
    def read_provenance(self) -> dict | None:
        try:
            prov = json.loads((self.path / "provenance.json").read_text())
        except (OSError, ValueError):
            return None
        return prov if isinstance(prov, dict) and isinstance(prov.get("runs"), list) else None

    def used_runs(self) -> set[str]:
        used: set[str] = set()
        for t in self.tables().values():
            if len(t) and "run_id" in t.columns:
                used |= set(t["run_id"].astype(str))
        return used

    def provenance_current(self, own_run: str) -> bool:
        """provenance.json lists every run the tables name, no unfinished run but ``own_run``, today's checksums."""
        prov = self.read_provenance()
        sums = table_checksums(self.path)
        if prov is None:
            return not sums
        listed = {r.get("run_id"): r for r in prov["runs"]}
        if not self.used_runs() <= set(listed):
            return False
        if any(r.get("status") == "running" for k, r in listed.items() if k != own_run):
            return False
        return prov.get("tables_sha256") == sums

    def write_provenance(self, entry: dict, scale, keep_unused: bool = False, derived: bool = False) -> None:
        """provenance.json with ``entry`` (this run) among every run that contributed rows.

        A run listed as ``running`` that is not this one was killed before it finished: it becomes
        ``interrupted`` (its rows stay, it is still listed). ``keep_unused`` keeps runs that no row names yet.
        ``derived``: this run (re)wrote the derived tables, so it becomes ``derived_by``; else that stays.
        """
        old = self.read_provenance() or {}
        used = self.used_runs()
        runs = {r["run_id"]: dict(r) for r in old.get("runs", []) if keep_unused or r.get("run_id") in used}
        for r in runs.values():
            if r.get("status") == "running":
                r["status"] = "interrupted"
        if keep_unused or entry["run_id"] in used:
            runs[entry["run_id"]] = entry
        else:
            runs.pop(entry["run_id"], None)
        if not runs and not table_checksums(self.path):
            (self.path / "provenance.json").unlink(missing_ok=True)
            return
        training = self.table("training")
        prov = {
            "scale": scale.name,
            "runs": sorted(runs.values(), key=lambda r: r["run_id"]),
            "scale_config": json.loads(json.dumps(dataclasses.asdict(scale), default=list)),
            "models": {
                r.model_id: {"key": r.key, "fingerprint": r.fingerprint, "source": r.source}
                for r in training.itertuples()
            }
            if len(training)
            else {},
            "tables_sha256": table_checksums(self.path),
            # the code that wrote the derived tables (claims, verdicts, summaries) and this file: the last run
            # that finished the folder, also when it measured nothing (then it is not among "runs")
            "derived_by": {k: entry.get(k) for k in ("run_id", "git", "command", "time_utc")}
            if derived or "derived_by" not in old
            else old["derived_by"],
            "note": "each row of every table names the run that measured it (run_id); timings are wall-clock "
            "seconds of that run and are not asserted; status 'interrupted': the run was killed and a "
            "later run completed the folder",
        }
        if old.get("conversions"):  # format conversions of the folder's files stay on record
            prov["conversions"] = old["conversions"]
        atomic_write_text(self.path / "provenance.json", json.dumps(prov, indent=1, sort_keys=True) + "\n")
