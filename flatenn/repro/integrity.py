"""Integrity checks of one recorded results folder beyond re-deriving its derived tables.

Each check returns a list of problems (empty: fine), names the file, row and what is wrong, and
never raises on damaged input (``verify`` runs every check and lists every problem):

* :func:`check_provenance` - every run finished (or was completed by a later run), the scale config
  recorded is the scale's definition, the model list matches ``training.csv``;
* :func:`check_training` - one row per model the scale's plan trains, each row's key and settings are
  its config's, and each shipped model in ``models/`` is intact (file and record checksums), stored
  under its own key, and its weights give the recorded fingerprint and record;
* :func:`check_campaign_counts` - ``faulty_bits`` and ``changed_weights`` of every campaign row re-derived
  from the shipped model and the seeded fault sampler (no forward pass), plus per-model constants;
* :func:`check_measured` - completeness of ``sharpness``/``sparsity``/``landscape`` against the plan,
  derived columns (sparsity = zeros / total, landscape1d = max loss - loss at 0) and constant settings.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.quant import frozen
from ..core.zoo import CorruptEntryError, Zoo
from ..faults.injector import FaultInjector
from ..faults.protection import PROTECTIONS
from .plan import is_sequential, plan, planned_units
from .scales import ScaleConfig
from .tolerances import RTOL as FORWARD_RTOL
from .tolerances import metric_rtol

SOURCES = ("trained", "cache", "shipped", "folder")
CONFIG_COLUMNS = ("dataset", "model", "width", "activation", "optimizer", "rho", "epochs")
RECORD_COLUMNS = ("threshold", "clean_accuracy", "clean_loss", "sparsity")
RTOL = 1e-5  # %.6g in the CSVs


def _close(a, b) -> bool:
    return bool(np.isclose(float(a), float(b), rtol=RTOL, atol=1e-9, equal_nan=True))


def _planned_models(scale: ScaleConfig, kind: str, units=None) -> dict[str, tuple[str, int]]:
    """model_id -> (variant, seed) of every unit of ``kind`` in the scale's plan (or in ``units``)."""
    units = plan(scale) if units is None else units
    return {scale.model_id(u.variant, u.seed): (u.variant, u.seed) for u in units if u.kind == kind}


def scale_config_json(scale: ScaleConfig) -> dict:
    """The scale's config as provenance.json records it."""
    return json.loads(json.dumps(dataclasses.asdict(scale), default=list))


RUN_ID = re.compile(r"(?P<time>\d{8}T\d{6}Z)-(?P<commit>[0-9a-z]{1,8})(-[0-9a-f]{4})?(?P<dirty>\+dirty)?")
VERSION = re.compile(r"\d+(\.\d+)+\S*")
VERSION_KEYS = ("python", "torch", "numpy", "pandas", "flatenn")


def check_run_records(prov: dict) -> list[str]:
    """Each run record is whole and agrees with itself: its id names its commit (the first 8 hex digits), its
    dirty flag and its start time; it ends (``time_utc``) after it starts; every version is a version.

    A zeroed or swapped commit no longer matches the run id that every row of the run carries."""
    problems = []
    runs = prov.get("runs")
    if not isinstance(runs, list) or not runs:
        return ["provenance.json: no run records (runs is missing or empty)"]
    for r in runs:
        rid = r.get("run_id") if isinstance(r, dict) else None
        where = f"provenance.json: run {rid}"
        m = RUN_ID.fullmatch(str(rid))
        git, versions = (r.get(k) if isinstance(r, dict) else None for k in ("git", "versions"))
        if m is None:
            problems.append(f"{where}: not a run id (<UTC time>-<commit>-<hex>)")
            continue
        if not isinstance(git, dict) or not isinstance(git.get("commit"), str):
            problems.append(f"{where}: the git record is missing or damaged")
        else:
            commit = git["commit"]
            if not (re.fullmatch(r"[0-9a-f]{40}", commit) or commit == "unknown"):
                problems.append(f"{where}: git commit {commit!r} is not a 40-digit commit hash")
            elif commit[:8] != m["commit"]:
                problems.append(
                    f"{where}: git commit {commit[:12]}… is not the commit its run id names ({m['commit']})"
                )
            if bool(git.get("dirty")) != bool(m["dirty"]):
                problems.append(f"{where}: git dirty {git.get('dirty')!r} disagrees with the run id")
        if not isinstance(versions, dict):
            problems.append(f"{where}: the versions record is missing or damaged")
        else:
            bad = [k for k in VERSION_KEYS if not VERSION.fullmatch(str(versions.get(k, "")))]
            if bad:
                problems.append(f"{where}: versions of {bad} are missing or not versions")
        try:
            start = datetime.datetime.strptime(m["time"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
            end = datetime.datetime.fromisoformat(str(r.get("time_utc")))
            if end < start:
                problems.append(f"{where}: time_utc {r.get('time_utc')} is before the run started")
        except (TypeError, ValueError):
            problems.append(f"{where}: time_utc {r.get('time_utc')!r} is not a UTC time")
    return problems


def run_commit_notes(prov: dict, repo: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) from this repository's history: a run's flatenn version must be the version its commit
    declares (``__version__`` in flatenn/__init__.py at that commit, what a run records); a commit the history
    does not hold (a lost branch, a shallow clone) is a note, not a problem."""
    import subprocess

    problems, notes = [], []
    for r in prov.get("runs", []):
        commit = (r.get("git") or {}).get("commit", "") if isinstance(r, dict) else ""
        if not re.fullmatch(r"[0-9a-f]{40}", str(commit)):
            continue
        try:
            got = subprocess.run(
                ["git", "show", f"{commit}:flatenn/__init__.py"], cwd=repo, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError):
            return problems, notes + ["run commits not checked: git is not available"]
        if got.returncode != 0:
            notes.append(f"run {r.get('run_id')}: commit {commit[:12]} is not in this repository's history")
            continue
        declared = re.search(r'^__version__\s*=\s*"([^"]+)"', got.stdout, re.M)
        recorded = (r.get("versions") or {}).get("flatenn")
        if declared and recorded != declared[1]:
            problems.append(
                f"provenance.json: run {r.get('run_id')} records flatenn {recorded!r}, but its commit "
                f"{commit[:12]} is version {declared[1]}"
            )
    return problems, notes


def check_provenance(prov: dict, scale: ScaleConfig, training: pd.DataFrame) -> list[str]:
    problems = check_run_records(prov)
    for r in prov.get("runs", []):
        if r.get("status") == "running":
            problems.append(
                f"provenance.json: run {r.get('run_id')} never finished (killed?); rerun the command "
                f"that made this folder ({r.get('command', '?')}) to complete it"
            )
    recorded, want = prov.get("scale_config"), scale_config_json(scale)
    if isinstance(recorded, dict):  # a field added after the recording counts as its default (the old behaviour)
        defaults = scale_config_json(
            ScaleConfig(
                **{
                    f.name: getattr(scale, f.name)
                    for f in dataclasses.fields(scale)
                    if f.name in ("name", "dataset", "model", "width", "epochs", "batch_size", "lr")
                }
            )
        )
        recorded = {**{k: v for k, v in want.items() if k not in recorded and v == defaults.get(k)}, **recorded}
    if recorded != want:
        fields = sorted(k for k in set(want) | set(recorded or {}) if (recorded or {}).get(k) != want.get(k))
        problems.append(
            f"provenance.json: scale_config differs from the definition of scale {scale.name} in "
            f"{fields} (edited, or recorded with other settings)"
        )
    models = prov.get("models", {})
    for r in training.itertuples():
        m = models.get(r.model_id)
        if m is None:
            problems.append(f"provenance.json: model {r.model_id} of training.csv is not listed")
        elif (m.get("key"), m.get("fingerprint"), m.get("source")) != (r.key, r.fingerprint, r.source):
            problems.append(
                f"provenance.json: model {r.model_id} is listed as {m}, training.csv says key {r.key}, "
                f"fingerprint {r.fingerprint}, source {r.source}"
            )
    extra = sorted(set(models) - set(training["model_id"])) if len(training) else sorted(models)
    if extra:
        problems.append(f"provenance.json: models {extra[:3]} are not in training.csv")
    return problems


def check_training(d: Path, scale: ScaleConfig, training: pd.DataFrame, units=None, required=None) -> list[str]:
    """training.csv against the plan and the configs; every shipped model against its row.

    ``units``: the plan's units (default :func:`plan`); ``required``: the units that must be recorded (default
    all of them; a plan-v2 recording paused between looks holds the complete looks and part of the next).
    """
    problems = []
    if units is None and is_sequential(scale):  # plan v2: the looks replayed from the folder's rows
        from ..core.results import read_results

        tables = read_results(d)
        units, required = planned_units(scale, tables, "next"), planned_units(scale, tables, "complete")
    planned = _planned_models(scale, "models", units)
    need = _planned_models(scale, "models", required if required is not None else units)
    have = set(training["model_id"]) if len(training) else set()
    missing = sorted(set(need) - have)
    if missing:
        problems.append(f"training.csv: {len(missing)} model(s) of the plan missing, e.g. {missing[:3]}")
    extra = sorted(have - set(planned))
    if extra:
        problems.append(f"training.csv: model(s) {extra[:3]} are not in the scale's plan")
    keys = set(training["key"].astype(str)) if len(training) else set()
    extra_files = sorted(f.name for f in (d / "models").glob("*") if f.is_file() and f.stem not in keys)
    if extra_files:
        problems.append(
            f"models/: {len(extra_files)} file(s) that no row of training.csv names, e.g. {extra_files[:2]} "
            "(a copied or stray model)"
        )
    zoo = Zoo(d / "models", device="cpu", progress=False)
    for i, r in enumerate(training.itertuples(), start=2):
        if r.model_id not in planned:
            continue
        where = f"training.csv line {i} ({r.model_id})"
        variant, seed = planned[r.model_id]
        if (r.variant, int(r.seed)) != (variant, seed):
            problems.append(f"{where}: variant/seed {r.variant}/{r.seed}, the id means {variant}/{seed}")
            continue
        cfg = scale.train_config(variant, seed)
        if r.key != cfg.key():
            problems.append(f"{where}: key {r.key} is not its config's key {cfg.key()}")
        for c in CONFIG_COLUMNS:
            want, got = getattr(cfg, c), getattr(r, c)
            if not (_close(got, want) if isinstance(want, (int, float)) else str(got) == str(want)):
                problems.append(f"{where}: {c} is {got!r}, the scale's config says {want!r}")
        if r.source not in SOURCES:
            problems.append(f"{where}: source {r.source!r} is not one of {SOURCES}")
        try:
            _, record, fp = zoo.open_entry(cfg)
        except (CorruptEntryError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            problems.append(f"models/{cfg.key()} ({r.model_id}): {e}")
            continue
        if fp != r.fingerprint:
            problems.append(
                f"models/{cfg.key()} ({r.model_id}): weights give fingerprint {fp}, training.csv says {r.fingerprint}"
            )
        for c in RECORD_COLUMNS:
            if not _close(getattr(r, c), getattr(record, c)):
                problems.append(f"{where}: {c} is {getattr(r, c)!r}, the model's record says {getattr(record, c)!r}")
    return problems


def _tag_consistency(name: str, tab: pd.DataFrame, training: pd.DataFrame) -> list[str]:
    """Every row's variant / train_seed / fingerprint is its model's in training.csv."""
    if not len(tab) or not len(training):
        return []
    t = training.set_index("model_id")
    problems = []
    for col, src in (("variant", "variant"), ("train_seed", "seed")):
        want = tab["model_id"].map(t[src])
        bad = want.notna() & (tab[col].astype(str) != want.astype(str))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            problems.append(
                f"{name}.csv line {i + 2}: {col} {tab[col].iloc[i]!r} but model "
                f"{tab['model_id'].iloc[i]} has {want.iloc[i]!r} in training.csv"
            )
    return problems


def check_campaign_counts(d: Path, scale: ScaleConfig, camp: pd.DataFrame, training: pd.DataFrame) -> list[str]:
    """Re-derive faulty_bits and changed_weights of every campaign row from the shipped model and the sampler."""
    problems = _tag_consistency("campaign", camp, training)
    if not len(camp):
        return problems
    # without error correction a weight changes only if one of its bits is faulty; SECDED may zero whole words
    corrected = camp["protection"].map(lambda p: PROTECTIONS.get(p, PROTECTIONS["none"]).ecc is not None)
    bad = (camp["changed_weights"] > camp["faulty_bits"]) & ~corrected.astype(bool)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        problems.append(
            f"campaign.csv line {i + 2}: changed_weights {camp['changed_weights'].iloc[i]} > "
            f"faulty_bits {camp['faulty_bits'].iloc[i]}"
        )
    clean = (camp["changed_weights"] == 0) & (
        (camp["accuracy"] != camp["clean_accuracy"]) | (camp["loss"] != camp["clean_loss"])
    )
    if clean.any():
        i = int(np.flatnonzero(clean.to_numpy())[0])
        problems.append(
            f"campaign.csv line {i + 2}: no weight changed, yet accuracy/loss differ from the clean model's"
        )
    for col in ("clean_accuracy", "clean_loss", "n_eval"):
        varying = camp.groupby("model_id")[col].nunique()
        if (varying > 1).any():
            problems.append(f"campaign.csv: {col} varies within model {varying[varying > 1].index[0]}")
    seeds = camp["train_seed"].map(scale.map_seed)
    wrong = camp["seed"] != seeds
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        problems.append(
            f"campaign.csv line {i + 2}: map seed {camp['seed'].iloc[i]} is not the scale's seed "
            f"{seeds.iloc[i]} for training seed {camp['train_seed'].iloc[i]}"
        )
    problems += _rederive_counts(d, scale, camp, training)
    return problems


def _rederive_counts(d: Path, scale: ScaleConfig, camp: pd.DataFrame, training: pd.DataFrame) -> list[str]:
    """faulty_bits / changed_weights of every whole-network row from the shipped models and the sampler.

    Maps depend on the architecture, map seed, rate (or count), bit set and trial, not on the weights, so each
    such set of maps is sampled once for every model, protection and fault model that shares it; the counts of
    all trials of a (model, memory protection, fault model) come from one vectorized pass.
    """
    main = camp[camp["layers"] == "all"]  # every bit set and protection the sampler and injector define
    if "protection" not in main.columns:
        main = main.assign(protection="none")
    problems: list[str] = []
    unknown = sorted(set(main["protection"]) - set(PROTECTIONS))
    if unknown:
        problems.append(f"campaign.csv: rows name unknown protection(s) {unknown[:3]}")
        main = main[main["protection"].isin(PROTECTIONS)]
    injectors = _Injectors(Zoo(d / "models", device="cpu", progress=False), scale, training, problems)
    maps_cache: dict[tuple, list] = {}
    ecc = main["protection"].map(lambda p: PROTECTIONS[p].ecc or "")
    point_cols = ["seed", "count", "bits", "rate"]
    for (seed, count, bits, rate), point in main.assign(_ecc=ecc).groupby(point_cols, sort=True):
        positions = None if bits == "all" else [int(b) for b in str(bits).split(",")]
        maps_cache.clear()  # the maps of one point at a time: bounded memory
        for (mid, ecc_name, fm), rows in point.groupby(["model_id", "_ecc", "fault_model"], sort=True):
            inj = injectors.get(mid, ecc_name or None)
            if inj is None:
                continue
            trials = tuple(sorted(set(rows["trial"].astype(int))))
            spec = tuple((n, m.codes.size, m.bits) for n, m in inj.memory.items())
            if (spec, trials) not in maps_cache:
                maps_cache[spec, trials] = inj.sample_trials(
                    int(seed),
                    list(trials),
                    rate=None if count >= 0 else float(rate),
                    count=int(count) if count >= 0 else None,
                    bit_positions=positions,
                )
            prepared = inj.prepare_trials(maps_cache[spec, trials], fm)
            at = np.searchsorted(np.asarray(trials), rows["trial"].to_numpy(dtype=np.int64))
            want_bits = np.array([p.faulty_bits for p in prepared], dtype=np.int64)[at]
            want_changed = np.array([p.changed for p in prepared], dtype=np.int64)[at]
            got_bits, got_changed = (rows[c].to_numpy(dtype=np.int64) for c in ("faulty_bits", "changed_weights"))
            for i in np.flatnonzero((got_bits != want_bits) | (got_changed != want_changed)):
                problems.append(
                    f"campaign: {mid} {fm} rate {rate:g} trial {rows['trial'].iloc[i]}: faulty_bits/changed_weights "
                    f"{got_bits[i]}/{got_changed[i]}, the model and the fault sampler give "
                    f"{want_bits[i]}/{want_changed[i]}"
                )
                if len(problems) >= 5:
                    return problems + ["campaign: (more rows differ; first 5 shown)"]
    return problems


class _Injectors:
    """One fault injector per (model, memory error correction) of a folder, built from its shipped model once;
    a model that cannot be opened is one problem, and its rows are skipped."""

    def __init__(self, zoo: Zoo, scale: ScaleConfig, training: pd.DataFrame, problems: list[str]) -> None:
        self.zoo, self.scale, self.problems = zoo, scale, problems
        self.keys = training.set_index("model_id") if len(training) else None
        self.built: dict[tuple[str, str | None], FaultInjector | None] = {}

    def get(self, mid: str, ecc: str | None) -> FaultInjector | None:
        if (mid, ecc) not in self.built:
            self.built[mid, ecc] = self._build(mid, ecc)
        return self.built[mid, ecc]

    def _build(self, mid: str, ecc: str | None) -> FaultInjector | None:
        if any(m == mid and inj is None for (m, _), inj in self.built.items()):
            return None  # already reported
        if self.keys is None or mid not in self.keys.index:
            self.problems.append(f"campaign.csv: model {mid} is not in training.csv")
            return None
        r = self.keys.loc[mid]
        cfg = self.scale.train_config(str(r["variant"]), int(r["seed"]))
        try:
            model, _, _ = self.zoo.open_entry(cfg)
        except (CorruptEntryError, OSError, ValueError) as e:
            self.problems.append(f"campaign.csv: rows of {mid} cannot be re-derived, its model is damaged ({e})")
            return None
        with frozen(model):  # the injector keeps copies of the clean codes; preparing writes touches no buffer
            return FaultInjector(model, ecc=ecc)


def check_measured(scale: ScaleConfig, tables: dict[str, pd.DataFrame], units=None) -> list[str]:
    """Completeness and derived columns of sharpness.csv, sparsity.csv and landscape.csv."""
    problems: list[str] = []
    if units is None:
        units = planned_units(scale, tables, "complete")
    training = tables["training"]
    sharp, sp, land = tables["sharpness"], tables["sparsity"], tables["landscape"]
    for name in ("sharpness", "sparsity", "landscape"):
        problems += _tag_consistency(name, tables[name], training)
    want_sharp = _planned_models(scale, "sharpness", units)
    metrics = set(scale.sharpness_metrics)
    have = {(m, k) for m, k in zip(sharp["model_id"], sharp["metric"], strict=True)} if len(sharp) else set()
    want = {(m, k) for m in want_sharp for k in metrics}
    if want - have:
        problems.append(
            f"sharpness.csv: {len(want - have)} (model, metric) row(s) of the plan missing, "
            f"e.g. {sorted(want - have)[:2]}"
        )
    if have - want:
        problems.append(
            f"sharpness.csv: {len(have - want)} row(s) the plan does not define (unknown metric or "
            f"model), e.g. {sorted(have - want)[:2]}"
        )
    if len(sharp):
        want_seed = sharp["train_seed"].map(scale.sharpness_seed_for)
        for col, val in (("n_examples", scale.sharpness_examples), ("seed", want_seed)):
            off = sharp[col] != val
            if off.any():
                i = int(np.flatnonzero(off.to_numpy())[0])
                v = val.iloc[i] if isinstance(val, pd.Series) else val
                problems.append(f"sharpness.csv line {i + 2}: {col} {sharp[col].iloc[i]}, the scale uses {v}")
    if "landscape1d" in metrics:
        problems += _check_landscape(sharp, land, set(want_sharp))
    want_sp = set(_planned_models(scale, "sparsity", units))
    have_sp = set(sp["model_id"]) if len(sp) else set()
    if want_sp - have_sp:
        problems.append(f"sparsity.csv: model(s) {sorted(want_sp - have_sp)[:3]} of the plan missing")
    if have_sp - want_sp:
        problems.append(f"sparsity.csv: model(s) {sorted(have_sp - want_sp)[:3]} are not in the plan")
    if len(sp):
        frac = sp["zeros"] / sp["total"].where(sp["total"] > 0)
        bad = (sp["zeros"] < 0) | (sp["zeros"] > sp["total"]) | ~np.isclose(sp["sparsity"], frac, rtol=RTOL, atol=1e-9)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            problems.append(
                f"sparsity.csv line {i + 2}: sparsity {sp['sparsity'].iloc[i]} is not zeros / total = "
                f"{sp['zeros'].iloc[i]} / {sp['total'].iloc[i]}"
            )
        layers = sp.groupby("model_id")["layer"].apply(lambda s: tuple(sorted(s)))
        if layers.nunique() > 1:
            problems.append(
                "sparsity.csv: models list different layers (a row deleted or added?): "
                + ", ".join(f"{m} {len(v)}" for m, v in layers.items() if v != layers.mode().iloc[0])[:200]
            )
    return problems


def _check_landscape(sharp: pd.DataFrame, land: pd.DataFrame, models: set[str]) -> list[str]:
    problems = []
    have = set(land["model_id"]) if len(land) else set()
    if models - have:
        problems.append(f"landscape.csv: model(s) {sorted(models - have)[:3]} of the plan missing")
    if have - models:
        problems.append(f"landscape.csv: model(s) {sorted(have - models)[:3]} are not in the plan")
    if not len(land):
        return problems
    alphas = land.groupby("model_id")["alpha"].apply(lambda s: tuple(np.round(sorted(s), 9)))
    if alphas.nunique() > 1:
        problems.append("landscape.csv: models are sampled at different alphas (a row deleted or added?)")
    bad = ~land["accuracy"].between(0, 100) | ~(land["loss"] >= 0)
    if bad.any():
        problems.append(
            f"landscape.csv line {int(np.flatnonzero(bad.to_numpy())[0]) + 2}: loss or accuracy out of range"
        )
    if len(sharp):
        rec = sharp[sharp["metric"] == "landscape1d"].set_index("model_id")["value"]
        for mid, g in land.groupby("model_id"):
            at0 = g.loc[np.isclose(g["alpha"], 0.0), "loss"]
            if mid not in rec.index or len(at0) != 1:
                continue
            derived = float(g["loss"].max() - at0.iloc[0])
            if not np.isclose(rec[mid], derived, rtol=1e-4, atol=1e-5):
                problems.append(
                    f"sharpness.csv: landscape1d of {mid} is {rec[mid]:.6g}, landscape.csv gives "
                    f"max loss - loss at 0 = {derived:.6g}"
                )
    return problems


ALL_PARTS = ("sharpness", "landscape", "sparsity")


def remeasure(
    d: Path,
    scale: ScaleConfig,
    tables: dict[str, pd.DataFrame],
    model_ids: list[str] | dict[str, tuple[str, ...]],
    rtol: float | None = None,
) -> list[str]:
    """Re-measure rows of ``model_ids`` from the shipped models: every table (a list), or per model the
    tables its ``parts`` name (a dict model id -> parts).

    ``sharpness``: every metric the model has in sharpness.csv (its landscape with it), each to its
    :func:`~flatenn.repro.tolerances.metric_rtol` (``rtol`` instead, when given); ``landscape``: the 1-D
    landscape alone (and its landscape1d value), to :data:`~flatenn.repro.tolerances.RTOL`; ``sparsity``: every
    layer's zeros and total, exactly. The tolerances allow for another CPU's float kernels
    (:mod:`flatenn.repro.tolerances`). Needs the data set.
    """
    from ..core.determinism import torch_state

    todo = model_ids if isinstance(model_ids, dict) else dict.fromkeys(model_ids, ALL_PARTS)
    problems: list[str] = []
    zoo = Zoo(d / "models", device="cpu", progress=False)
    t = tables["training"].set_index("model_id")
    for mid, parts in todo.items():
        r = t.loc[mid]
        cfg = scale.train_config(str(r["variant"]), int(r["seed"]))
        model, _, _ = zoo.open_entry(cfg)
        data = zoo.data_for(cfg)
        with torch_state(deterministic=True):
            if "sharpness" in parts or "landscape" in parts:
                problems += _remeasure_sharpness(scale, tables, mid, int(r["seed"]), model, data, parts, rtol)
            if "sparsity" in parts:
                problems += _remeasure_sparsity(scale, tables, mid, int(r["seed"]), model, data)
    return problems


def _remeasure_sharpness(scale, tables, mid: str, seed: int, model, data, parts, rtol: float | None) -> list[str]:
    from ..analysis.sharpness import measure
    from .inputs import measure_options, sharpness_inputs

    sharp, land = tables["sharpness"], tables["landscape"]
    mine = sharp[sharp["model_id"] == mid] if len(sharp) else sharp
    if "sharpness" not in parts:
        mine = mine[mine["metric"] == "landscape1d"] if len(mine) else mine
    if not len(mine):
        return []
    problems = []
    x, y = sharpness_inputs(scale, data, seed)
    rows, fresh_land = measure(
        model,
        x,
        y,
        list(mine["metric"]),
        model_id=mid,
        seed=scale.sharpness_seed_for(seed),
        batch_size=scale.eval_batch_size,
        options=measure_options(scale),
    )
    got = dict(zip(rows["metric"], rows["value"], strict=True))
    for m, v in zip(mine["metric"], mine["value"], strict=True):
        tol = metric_rtol(m) if rtol is None else rtol
        if not np.isclose(v, got[m], rtol=tol, atol=1e-7):
            problems.append(f"sharpness.csv: {mid} {m} is {v:.6g}, re-measured from the shipped model {got[m]:.6g}")
    rec = land[land["model_id"] == mid].sort_values("alpha") if len(land) else land
    if len(rec) and len(fresh_land):
        fl = fresh_land.sort_values("alpha")
        same = len(fl) == len(rec) and np.allclose(rec["alpha"], fl["alpha"], rtol=0, atol=1e-9)
        for col in ("loss", "accuracy"):
            if same and not np.allclose(rec[col], fl[col], rtol=FORWARD_RTOL, atol=1e-6):
                worst = int(np.argmax(np.abs(rec[col].to_numpy() - fl[col].to_numpy())))
                problems.append(
                    f"landscape.csv: {mid} alpha {rec['alpha'].iloc[worst]:g}: {col} is {rec[col].iloc[worst]:.6g}, "
                    f"re-measured from the shipped model {fl[col].iloc[worst]:.6g}"
                )
        if not same:
            problems.append(f"landscape.csv: {mid} is sampled at other alphas than the re-measured landscape")
    return problems


def _remeasure_sparsity(scale, tables, mid: str, seed: int, model, data) -> list[str]:
    from ..core.activations import measure_sparsity
    from .inputs import eval_inputs

    sp = tables["sparsity"]
    mine = sp[sp["model_id"] == mid] if len(sp) else sp
    if not len(mine):
        return []
    x, _ = eval_inputs(scale, data, seed)
    fresh = measure_sparsity(model, x, scale.eval_batch_size).set_index("layer")
    problems = []
    for row in mine.itertuples():
        if row.layer not in fresh.index:
            problems.append(f"sparsity.csv: {mid} has a layer {row.layer} the model does not have")
        elif (int(fresh.at[row.layer, "zeros"]), int(fresh.at[row.layer, "total"])) != (int(row.zeros), int(row.total)):
            problems.append(
                f"sparsity.csv: {mid} layer {row.layer}: {row.zeros} of {row.total} zeros recorded, re-measured "
                f"{fresh.at[row.layer, 'zeros']} of {fresh.at[row.layer, 'total']}"
            )
    return problems
