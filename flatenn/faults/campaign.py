"""Fault campaigns: accuracy and loss of a model under sampled weight-memory faults.

``run_campaign`` freezes the model at its integer codes, evaluates it clean, then for every
(rate or count, trial) samples a fault map (:mod:`flatenn.faults.sampling`), writes it into the weight memory
(:class:`~flatenn.faults.injector.FaultInjector`), evaluates and restores. Results are tidy rows (schema
``campaign`` in :mod:`flatenn.core.results`). With ``out=`` the rows are written at the end, every
``CHECKPOINT_SECONDS`` in between and when the campaign is interrupted, and rows already in that file
for the same model fingerprint and options are not recomputed (resume).

The maps of a block of trials are sampled and their writes prepared together (maps depend only on
(seed, layer, trial, rate), so this changes no map); trials are then evaluated one after another over the
whole evaluation set, without switching modes per trial. A trial whose faults change no weight value is
the clean model and is scored with the clean numbers without a forward pass. Batching several trials per
forward (grouped weights, vmap) was measured not to beat the clean-forward limit on CPU, so each trial
is one forward (see ``benchmarks/speed_report.py`` for the measured ratios).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.determinism import model_device, model_dtype
from ..core.evaluate import as_batches, batches_fingerprint, eval_mode, evaluate_batches
from ..core.fingerprint import model_fingerprint
from ..core.locks import exclusive
from ..core.progress import Progress
from ..core.quant import frozen
from ..core.results import SCHEMAS, read_table, write_schema_table
from .injector import FaultInjector, LayerFilter
from .prefix import faulty_evaluator
from .protection import PROTECTIONS, Protection, get_protection
from .sampling import bits_label, check_fault_model, check_rate, check_seed

COLUMNS = list(SCHEMAS["campaign"][0])
# a recorded row is reused only if all of these match: what the row means, and the model it was measured on
KEY = SCHEMAS["campaign"][1]


def _whole(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


CHECKPOINT_SECONDS = 60.0  # with ``out``: finished rows are written at least this often (and at the end)
MAX_TRIAL_EVALUATIONS = 10_000_000  # points x trials of one call: beyond this a campaign is a typo, not a plan
LABEL_NAMES_MAX = 120  # a layer-name list longer than this is recorded by its hash


def layers_label(layer_filter: LayerFilter, selected: Sequence[str] | None = None) -> str:
    """Text form of a layer filter for tables and resume keys.

    ``all`` (no filter), ``re:<regex>``, or, for a predicate or a list of names, the layers it selects
    (``names:a,b`` or ``names#<sha256>`` when long): a stable identity, so two different lambdas never share
    rows and a predicate and a list that pick the same layers do.
    """
    if layer_filter is None:
        return "all"
    if isinstance(layer_filter, str):
        return f"re:{layer_filter}"
    if selected is None:
        raise ValueError("a predicate or a list of layer names is labelled by the layers it selects: pass them")
    text = ",".join(selected)
    if len(text) <= LABEL_NAMES_MAX:
        return f"names:{text}"
    import hashlib

    return "names#" + hashlib.sha256(text.encode()).hexdigest()[:16]


def normalize_rate(rate) -> float:
    """A rate as the tables write it (``%.6g``), so a float32 0.01 and 0.01 are one point and resume alike."""
    from ..core.results import FLOAT_FORMAT

    return float(FLOAT_FORMAT % check_rate(rate))


def _values(v, what: str) -> list:
    """A list from a scalar, a sequence or a NumPy array."""
    if isinstance(v, (str, bytes)):
        raise ValueError(f"{what} must be numbers, got the text {v!r}")
    if np.ndim(v) == 0:
        return [v.item() if hasattr(v, "item") else v]
    return np.asarray(v).ravel().tolist() if isinstance(v, np.ndarray) else list(v)


def campaign_points(
    rates: Sequence[float] | float | None, counts: Sequence[int] | int | None
) -> list[tuple[float, int]]:
    """Validated campaign points: (rate, -1) in rate mode, (nan, count) in count mode; each point once.

    A scalar or a NumPy array is accepted; rates are normalized to the value the tables write. A repeated
    point is an error: it would count the same fault maps twice as independent trials.
    """
    if (rates is None) == (counts is None):
        raise ValueError("give rates= or counts= (exactly one)")
    values = _values(rates if rates is not None else counts, "rates" if rates is not None else "counts")
    if not values:
        raise ValueError("give at least one " + ("rate" if rates is not None else "count"))
    if rates is not None:
        points = [(normalize_rate(r), -1) for r in values]
    else:
        points = [(float("nan"), _whole(c, "a fault count (faulty bits)", 0)) for c in values]
    seen: set = set()
    for r, c in points:
        k = c if c >= 0 else r
        if k in seen:
            raise ValueError(
                f"{'count' if c >= 0 else 'rate'} {k:g} is given twice: give each point once (a "
                "repeated point would count the same fault maps twice as independent trials)"
            )
        seen.add(k)
    return points


def check_model_id(model_id) -> str:
    """A model id is non-empty text without leading or trailing spaces (it is written to and read from CSV)."""
    if not isinstance(model_id, str) or not model_id or model_id != model_id.strip():
        raise ValueError(f"model_id must be non-empty text without surrounding spaces, got {model_id!r}")
    return model_id


def run_campaign(
    model: nn.Module,
    x,
    y: torch.Tensor | str | None = None,
    fault_model: str | None = None,
    rates: Sequence[float] | float | None = None,
    trials: int = 50,
    seed: int = 0,
    model_id: str = "model",
    counts: Sequence[int] | None = None,
    bit_positions: Sequence[int] | None = None,
    layer_filter: LayerFilter = None,
    batch_size: int = 512,
    out: str | Path | None = None,
    progress: bool = True,
    extra: dict | None = None,
    target_halfwidth: float | None = None,
    min_trials: int = 10,
    prefix_reuse: bool = True,
    recorded: pd.DataFrame | None = None,
    protection: str | Protection | None = None,
) -> pd.DataFrame:
    """Run a seeded fault campaign; returns every (point, trial) row, old (resumed) ones included.

    ``x, y``: evaluation tensors (or NumPy arrays), or ``x`` a data loader of (inputs, labels) batches and no
    ``y`` (``run_campaign(model, loader, "bitflip", ...)``; the loader's batching is used as it is; the same
    data and batching give the tensor path's numbers).
    ``rates`` (bit error rates) or ``counts`` (exact numbers of faulty bits). In both modes the
    ``rate`` column is faulty bits per *eligible* bit: the bits of the selected layers at the
    selected bit positions (in count mode, count / eligible bits). ``extra`` adds constant columns
    (``variant``, ``train_seed``, ``run_id``) to every row. With ``out`` a recorded row is reused only
    when the model's fingerprint and every option that changes a row's meaning match (``KEY``).

    ``target_halfwidth`` (accuracy points) makes trial counts adaptive: a point stops after the first
    ``min_trials`` trials once the 95% CI half-width of its accuracy is at most the target (trials
    0, 1, … in order, so maps stay the fixed design's; keep fixed counts where pairs must stay paired).
    With a layer filter, ``prefix_reuse`` evaluates only the part of the network after the first faulted
    layer (:mod:`flatenn.faults.prefix`; bit-identical; falls back to the full forward for untraceable models).
    ``recorded``: rows computed before (resume without a file, as a cluster worker does); ignored with ``out``.
    ``protection``: an inference-time protection (:mod:`flatenn.faults.protection`: ``"sign-bit"``, ``"secded"``,
    or an object such as ``Ranger(bounds)``); its name is the rows' ``protection`` column, its clean numbers
    are the protected model's, and sign-bit protection sets the bit positions (do not also pass them).

    :param model: a quantized model (:func:`flatenn.quantize_model`, calibrated); frozen for the campaign and
        left as it was found.
    :param fault_model: ``"bitflip"``, ``"stuck0"`` or ``"stuck1"`` (:data:`flatenn.faults.sampling.FAULT_MODELS`).
    :param trials: fault maps per point (the most per point with ``target_halfwidth``).
    :param seed: the map seed: the same seed gives the same maps for every model of the same layer shapes.
    :param bit_positions: the bit positions faults can hit (None: all).
    :param layer_filter: a regex, a list of layer names or a predicate on names (None: every quantized layer).
    :param batch_size: evaluation batch size (pin it: float sums depend on it).
    :param out: a CSV or Parquet file to resume from and write to.
    :param progress: a progress bar on stderr.
    :returns: a DataFrame, one row per (point, trial): ``fault_model``, ``rate``, ``count``, ``seed``, ``trial``,
        ``faulty_bits``, ``changed_weights``, ``accuracy`` and ``loss`` under the faults, ``clean_accuracy``,
        the model's ``fingerprint``, ``bits``, ``layers``, ``protection``, ``eval_data`` and the ``extra`` columns
        (schema: :data:`flatenn.core.results.SCHEMAS`).
    :raises ValueError: for an unknown fault model, rates outside [0, 1], a repeated point, both or neither of
        ``rates`` and ``counts``, bit positions outside the code width, or a filter that selects no layer.
    """
    if isinstance(y, str) and fault_model is None:  # run_campaign(model, loader, "bitflip", ...)
        y, fault_model = None, y
    if fault_model is None:
        raise ValueError(
            "name the fault model: run_campaign(model, x, y, 'bitflip', ...) or (model, loader, 'bitflip')"
        )
    check_fault_model(fault_model)
    model_id = check_model_id(model_id)
    points = campaign_points(rates, counts)
    trials = _whole(trials, "trials", 1)
    if len(points) * trials > MAX_TRIAL_EVALUATIONS:
        raise ValueError(
            f"{len(points)} points x {trials} trials = {len(points) * trials:,} trial evaluations; at most "
            f"{MAX_TRIAL_EVALUATIONS:,} per call (use adaptive trials or fewer points)"
        )
    seed = check_seed(seed)
    batch_size = _whole(batch_size, "batch_size", 1)
    if model_dtype(model) not in (None, torch.float32):
        raise ValueError(
            f"the model computes in {model_dtype(model)}; flatenn's quantized layers compute in float32: "
            "call model.float() (quantize_model does this for you)"
        )
    batches = as_batches(x, y, batch_size, model_device(model), model_dtype(model))
    if target_halfwidth is not None and not target_halfwidth > 0:
        raise ValueError(f"target_halfwidth must be > 0 accuracy points, got {target_halfwidth!r}")
    min_trials = _whole(min_trials, "min_trials", 2)
    adaptive = (target_halfwidth, min(min_trials, trials)) if target_halfwidth is not None else None
    guard = get_protection(protection)
    bit_positions = _protected_bits(model, guard, bit_positions, layer_filter)
    label = bits_label(bit_positions)
    extra = {"variant": "", "train_seed": -1, "run_id": "", **(extra or {})}
    fingerprint = model_fingerprint(model)
    lock = exclusive(Path(str(out) + ".lock")) if out is not None else contextlib.nullcontext()
    with lock:  # concurrent campaigns on one file: the later one waits, then resumes from the earlier one's rows
        return _run(
            model,
            batches,
            fault_model,
            points,
            trials,
            seed,
            model_id,
            bit_positions,
            layer_filter,
            out,
            progress,
            extra,
            label,
            fingerprint,
            adaptive,
            prefix_reuse,
            recorded,
            guard,
        )


def _protected_bits(model: nn.Module, guard: Protection, bit_positions, layer_filter) -> Sequence[int] | None:
    """The bit positions a campaign samples: the caller's, or the ones a protection leaves unprotected."""
    from .injector import select_layers

    widths = {m.w_bits for m in select_layers(model, layer_filter).values()}
    positions = guard.bit_positions(min(widths))
    if positions is None:
        return bit_positions
    if bit_positions is not None:
        raise ValueError(f"protection {guard.name!r} sets the faulty bit positions itself: do not pass bit_positions")
    if len(widths) > 1:
        raise ValueError(f"protection {guard.name!r} needs one weight bit width, the layers have {sorted(widths)}")
    return positions


def _recorded_rows(
    recorded: pd.DataFrame,
    model_id: str,
    fingerprint: str,
    fault_model: str,
    label: str,
    layers: str,
    protection: str,
    n_eval: int,
    eval_data: str,
    seed: int,
    points: list[tuple[float, int]],
    trials: int,
) -> tuple[pd.DataFrame, set]:
    """The recorded rows a campaign reuses (every ``KEY`` option and the model fingerprint match, and the
    (point, trial) is one of this call's) and their point keys."""
    mine = recorded[recorded["model_id"] == model_id]  # first the model's rows: a large table is filtered once
    sel = (
        (mine["fingerprint"] == fingerprint)
        & (mine["fault_model"] == fault_model)
        & (mine["bits"] == label)
        & (mine["layers"] == layers)
        & (mine["protection"].fillna("none") == protection)
        & (mine["n_eval"] == n_eval)
        & (mine["eval_data"] == eval_data)
        & (mine["seed"] == seed)
    )
    old = mine[sel].reset_index(drop=True)
    wanted = {_point_key(r, c, t) for r, c in points for t in range(trials)}
    keys = [_point_key(r, c, t) for r, c, t in zip(old["rate"], old["count"], old["trial"], strict=True)]
    old = old.loc[np.array([k in wanted for k in keys], dtype=bool)].reset_index(drop=True)  # this call's points
    return old, {k for k in keys if k in wanted}


def pending_trials(
    model: nn.Module,
    x,
    y: torch.Tensor | None,
    fault_model: str,
    recorded: pd.DataFrame,
    rates: Sequence[float] | float | None = None,
    trials: int = 50,
    seed: int = 0,
    model_id: str = "model",
    counts: Sequence[int] | None = None,
    bit_positions: Sequence[int] | None = None,
    layer_filter: LayerFilter = None,
    batch_size: int = 512,
    protection: str | Protection | None = None,
) -> int:
    """How many (point, trial) rows ``run_campaign`` with these arguments (fixed trials) would compute, given
    the rows ``recorded`` (0: it would only resume them). ``protection`` may be the registered name of one
    built from data (``"ft-clipact"``, ``"ranger"``): rows are keyed by the name, so it need not be built to
    know, which makes resuming a large results folder cheap."""
    check_fault_model(fault_model)
    points = campaign_points(rates, counts)
    trials = _whole(trials, "trials", 1)
    if isinstance(protection, str) and protection in PROTECTIONS:
        guard = PROTECTIONS[protection]  # its class: the name and the protected bits, without building it
        if guard.label is not Protection.label:
            raise ValueError(f"protection {protection!r} labels its rows itself: pass the built protection")
        label = guard.name
    else:
        guard = get_protection(protection)
        label = guard.label
    positions = _protected_bits(model, guard, bit_positions, layer_filter)
    if not len(recorded):  # nothing recorded yet (a new folder's table has no columns either)
        return len(points) * trials
    from .injector import select_layers

    batches = as_batches(x, y, _whole(batch_size, "batch_size", 1), model_device(model), model_dtype(model))
    layers = layers_label(layer_filter, list(select_layers(model, layer_filter)))
    _, done = _recorded_rows(
        recorded,
        check_model_id(model_id),
        model_fingerprint(model),
        fault_model,
        bits_label(positions),
        layers,
        label,
        sum(len(yb) for _, yb in batches),
        batches_fingerprint(batches),
        check_seed(seed),
        points,
        trials,
    )
    return len(points) * trials - len(done)


def _run(
    model,
    batches,
    fault_model,
    points,
    trials,
    seed,
    model_id,
    bit_positions,
    layer_filter,
    out,
    progress,
    extra,
    label,
    fingerprint,
    adaptive,
    prefix_reuse,
    given=None,
    guard: Protection | None = None,
) -> pd.DataFrame:
    n_eval = sum(len(yb) for _, yb in batches)
    eval_data = batches_fingerprint(batches)
    if out is not None and Path(out).is_file():
        recorded = read_table(out, "campaign")
    elif given is not None and len(given):
        recorded = given.reindex(columns=COLUMNS).fillna({"eval_data": "", "protection": "none"})
    else:
        recorded = pd.DataFrame(columns=COLUMNS)
    rows: list[dict] = []
    guard = guard or Protection()
    with eval_mode(model), frozen(model), guard.applied(model):
        # the forward reads only the values: write those alone
        injector = FaultInjector(model, layer_filter, ecc=guard.ecc, write_codes=False)
        layers = layers_label(layer_filter, list(injector.layers))
        old, done = _recorded_rows(
            recorded,
            model_id,
            fingerprint,
            fault_model,
            label,
            layers,
            guard.label,
            n_eval,
            eval_data,
            seed,
            points,
            trials,
        )
        eligible = injector.eligible_bits(bit_positions)
        if any(c > eligible for _, c in points):
            raise ValueError(f"a fault count exceeds the {eligible} eligible bits of the selected layers")
        clean_acc, clean_loss = evaluate_batches(model, batches)
        reuse = prefix_reuse and layer_filter is not None and not guard.transforms  # hooks need the full forward
        faulty_eval = faulty_evaluator(model, batches, set(injector.layers), reuse)
        todo = [(r, c, t) for r, c in points for t in range(trials) if _point_key(r, c, t) not in done]
        bar = Progress(len(todo), f"campaign {model_id} {fault_model}", progress)
        saved = {"rows": 0, "time": time.monotonic(), "failed": False}  # what ``out`` holds, and since when

        def save(final: bool) -> None:
            """Write the rows to ``out`` at the end and at most every CHECKPOINT_SECONDS in between (a write
            rewrites the whole table, seconds for a large one); every row is one finished trial, so rows
            written before an interruption are resumed as they are. A write that failed (a full disk) is not
            retried on the way out."""
            due = final or time.monotonic() - saved["time"] >= CHECKPOINT_SECONDS
            if out is None or saved["failed"] or len(rows) == saved["rows"] or not due:
                return
            saved["failed"] = True  # until this write has landed
            # new rows never repeat a recorded key (done points are skipped), so appending is a merge
            write_schema_table(
                pd.concat([recorded, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True), out, "campaign"
            )
            saved.update(rows=len(rows), time=time.monotonic(), failed=False)

        try:
            for r, c in points:
                accs = old.loc[
                    [
                        _point_key(rr, cc, tt)[:2] == _point_key(r, c, 0)[:2]
                        for rr, cc, tt in zip(old["rate"], old["count"], old["trial"], strict=True)
                    ],
                    "accuracy",
                ].tolist()
                ahead: dict = {}  # trial -> its prepared writes, sampled a block at a time
                skip = {tt for tt in range(trials) if _point_key(r, c, tt) in done}
                for t in range(trials):
                    if (
                        adaptive is not None
                        and t >= adaptive[1]
                        and len(accs) >= adaptive[1]
                        and _halfwidth(accs) <= adaptive[0]
                    ):
                        bar.update(
                            sum(1 for tt in range(t, trials) if _point_key(r, c, tt) not in done), "adaptive stop"
                        )
                        break
                    if _point_key(r, c, t) in done:
                        continue
                    if t not in ahead:
                        block = _trial_block(t, trials, r, c, eligible, adaptive, skip)
                        maps = injector.sample_trials(
                            seed,
                            block,
                            rate=None if c >= 0 else r,
                            count=c if c >= 0 else None,
                            bit_positions=bit_positions,
                        )
                        ahead = dict(zip(block, injector.prepare_trials(maps, fault_model), strict=True))
                    with injector.applied(ahead.pop(t)) as (nbits, changed):
                        # no weight value changed (e.g. stuck-at on bits already at that value): the clean model
                        acc, loss = faulty_eval() if changed else (clean_acc, clean_loss)
                    accs.append(acc)
                    rate = r if c < 0 else c / eligible
                    rows.append(
                        {
                            **extra,
                            "model_id": model_id,
                            "fingerprint": fingerprint,
                            "fault_model": fault_model,
                            "bits": label,
                            "layers": layers,
                            "protection": guard.label,
                            "n_eval": n_eval,
                            "eval_data": eval_data,
                            "rate": rate,
                            "count": c,
                            "seed": seed,
                            "trial": t,
                            "faulty_bits": nbits,
                            "changed_weights": changed,
                            "accuracy": acc,
                            "loss": loss,
                            "clean_accuracy": clean_acc,
                            "clean_loss": clean_loss,
                        }
                    )
                    bar.update(1, f"rate {rate:.2g}")
                save(final=False)
        finally:  # also when interrupted: the finished trials are kept
            save(final=True)
    new = pd.DataFrame(rows, columns=COLUMNS)
    out_df = pd.concat([old, new], ignore_index=True) if len(old) else new
    out_df.attrs["computed_rows"] = len(new)  # rows computed by this call (the rest were resumed)
    return out_df


BLOCK_FAULTY_BITS = 1 << 20  # expected faulty bits sampled ahead at once (bounds the memory of a block)


def _trial_block(
    first: int, trials: int, rate: float, count: int, eligible: int, adaptive, skip: set[int]
) -> list[int]:
    """Trials to sample together from ``first`` on: the ones still to compute, up to ``BLOCK_FAULTY_BITS``
    expected faulty bits; with adaptive trials, no more than the fixed minimum at a time (a point may stop).

    Maps depend only on (seed, layer, trial, rate), so sampling ahead changes no map.
    """
    per_trial = max(1.0, count if count >= 0 else rate * eligible)
    size = max(1, min(64, int(BLOCK_FAULTY_BITS // per_trial)))
    if adaptive is not None:
        size = min(size, adaptive[1])
    return [t for t in range(first, min(trials, first + size)) if t not in skip]


def _halfwidth(values: list[float]) -> float:
    from ..core.intervals import mean_ci

    _, _, lo, hi, _ = mean_ci(values)
    return (hi - lo) / 2


def _point_key(rate: float, count: int, trial: int) -> tuple:
    """Identity of a campaign point: the rate in rate mode, the count in count mode."""
    return (None if count >= 0 else round(float(rate), 12), int(count), int(trial))
