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
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.quant import frozen
from ..core.zoo import CorruptEntryError, Zoo
from ..faults.injector import FaultInjector
from ..faults.protection import PROTECTIONS
from .plan import is_sequential, plan, planned_units
from .scales import ScaleConfig

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


def check_provenance(prov: dict, scale: ScaleConfig, training: pd.DataFrame) -> list[str]:
    problems = []
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
    zoo = Zoo(d / "models", device="cpu", progress=False)
    keys = training.set_index("model_id") if len(training) else None
    problems: list[str] = []
    main = camp[camp["layers"] == "all"]  # every bit set and protection the sampler and injector define
    if "protection" not in main.columns:
        main = main.assign(protection="none")
    for (mid, protection, bits), rows in main.groupby(["model_id", "protection", "bits"], sort=True):
        if keys is None or mid not in keys.index:
            problems.append(f"campaign.csv: model {mid} is not in training.csv")
            continue
        r = keys.loc[mid]
        cfg = scale.train_config(str(r["variant"]), int(r["seed"]))
        try:
            model, _, _ = zoo.open_entry(cfg)
        except (CorruptEntryError, OSError, ValueError) as e:
            problems.append(f"campaign.csv: rows of {mid} cannot be re-derived, its model is damaged ({e})")
            continue
        if protection not in PROTECTIONS:
            problems.append(f"campaign.csv: rows of {mid} name an unknown protection {protection!r}")
            continue
        positions = None if bits == "all" else [int(b) for b in str(bits).split(",")]
        with frozen(model):
            inj = FaultInjector(model, ecc=PROTECTIONS[protection].ecc)
            points: dict[tuple, list] = {}
            for row in rows.itertuples():
                points.setdefault((row.seed, row.rate, row.count, row.trial), []).append(row)
            for (seed, rate, count, trial), group in points.items():
                maps = inj.sample(
                    int(seed),
                    int(trial),
                    rate=None if count >= 0 else float(rate),
                    count=int(count) if count >= 0 else None,
                    bit_positions=positions,
                )
                nbits = sum(m.faulty_bits for m in maps.values())
                for row in group:
                    changed = sum(inj.faulty_weights(n, m, row.fault_model)[0].size for n, m in maps.items())
                    if (int(row.faulty_bits), int(row.changed_weights)) != (nbits, changed):
                        problems.append(
                            f"campaign.csv: {mid} {row.fault_model} rate {rate:g} trial {trial}: "
                            f"faulty_bits/changed_weights {row.faulty_bits}/{row.changed_weights}, "
                            f"the model and the fault sampler give {nbits}/{changed}"
                        )
                        if len(problems) >= 5:
                            return problems + ["campaign.csv: (more rows differ; first 5 shown)"]
    return problems


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


def remeasure(
    d: Path, scale: ScaleConfig, tables: dict[str, pd.DataFrame], model_ids: list[str], rtol: float = 1e-3
) -> list[str]:
    """Re-measure the sharpness, landscape and sparsity rows of ``model_ids`` from the shipped models.

    A spot check of measured values that no other table derives (a careful hand edit of one): the same
    model, data and seeds give the same numbers on the same kind of machine; ``rtol`` allows for another
    CPU's float kernels. Needs the scale's data set.
    """
    from ..analysis.sharpness import measure
    from ..core.activations import measure_sparsity
    from ..core.determinism import torch_state
    from .inputs import eval_inputs, measure_options, sharpness_inputs

    problems: list[str] = []
    zoo = Zoo(d / "models", device="cpu", progress=False)
    t = tables["training"].set_index("model_id")
    sharp, land, sp = tables["sharpness"], tables["landscape"], tables["sparsity"]
    for mid in model_ids:
        r = t.loc[mid]
        cfg = scale.train_config(str(r["variant"]), int(r["seed"]))
        model, _, _ = zoo.open_entry(cfg)
        data = zoo.data_for(cfg)
        mine = sharp[sharp["model_id"] == mid] if len(sharp) else sharp
        with torch_state(deterministic=True):
            if len(mine):
                x, y = sharpness_inputs(scale, data, int(r["seed"]))
                rows, fresh_land = measure(
                    model,
                    x,
                    y,
                    list(mine["metric"]),
                    model_id=mid,
                    seed=scale.sharpness_seed_for(int(r["seed"])),
                    batch_size=scale.eval_batch_size,
                    options=measure_options(scale),
                )
                got = dict(zip(rows["metric"], rows["value"], strict=True))
                for m, v in zip(mine["metric"], mine["value"], strict=True):
                    if not np.isclose(v, got[m], rtol=rtol, atol=1e-7):
                        problems.append(
                            f"sharpness.csv: {mid} {m} is {v:.6g}, re-measured from the shipped model {got[m]:.6g}"
                        )
                rec = land[land["model_id"] == mid].sort_values("alpha") if len(land) else land
                if len(rec) and len(fresh_land):
                    fl = fresh_land.sort_values("alpha")
                    if (
                        len(fl) != len(rec)
                        or not np.allclose(rec["loss"], fl["loss"], rtol=rtol, atol=1e-6)
                        or not np.allclose(rec["accuracy"], fl["accuracy"], rtol=rtol, atol=1e-6)
                    ):
                        problems.append(f"landscape.csv: rows of {mid} differ from the re-measured landscape")
            mine_sp = sp[sp["model_id"] == mid] if len(sp) else sp
            if len(mine_sp):
                x, _ = eval_inputs(scale, data, int(r["seed"]))
                fresh = measure_sparsity(model, x, scale.eval_batch_size).set_index("layer")
                for row in mine_sp.itertuples():
                    if row.layer not in fresh.index or int(fresh.at[row.layer, "zeros"]) != int(row.zeros):
                        problems.append(
                            f"sparsity.csv: {mid} layer {row.layer}: {row.zeros} zeros recorded, "
                            f"re-measured {fresh['zeros'].get(row.layer, 'no such layer')}"
                        )
    return problems
