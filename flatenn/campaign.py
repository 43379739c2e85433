"""Fault campaigns: accuracy and loss of a model under sampled weight-memory faults.

``run_campaign`` freezes the model at its integer codes, evaluates it clean, then for every
(rate or count, trial) samples a fault map (:mod:`flatenn.faults`), writes it into the weight memory
(:class:`~flatenn.injector.FaultInjector`), evaluates and restores. Results are tidy rows (schema
``campaign`` in :mod:`flatenn.results`). With ``out=`` the rows are written after every rate and
rows already in that file are not recomputed (resume).

Trials are evaluated one after another over the whole evaluation set. Batching several trials per
forward (grouped weights) was considered; at the model sizes here a trial already costs about one
clean forward plus well under a millisecond of sampling, so the simple path is kept (see
``benchmarks/speed_report.py`` for the measured ratio).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .determinism import model_device
from .evaluate import evaluate
from .faults import bits_label, check_fault_model, check_rate
from .injector import FaultInjector, LayerFilter
from .progress import Progress
from .quant import frozen
from .results import SCHEMAS, read_table, write_schema_table

COLUMNS = list(SCHEMAS["campaign"][0])
KEY = ["model_id", "fault_model", "bits", "rate", "count", "seed", "trial"]


def run_campaign(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    fault_model: str,
    rates: Sequence[float] | None = None,
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
) -> pd.DataFrame:
    """Run a seeded fault campaign; returns every (point, trial) row, old (resumed) ones included.

    ``rates`` (bit error rates per stored bit) or ``counts`` (exact numbers of faulty bits over the
    whole memory). ``extra`` adds constant columns (``variant``, ``train_seed``) to every row.
    """
    check_fault_model(fault_model)
    if (rates is None) == (counts is None):
        raise ValueError("give rates= or counts= (exactly one)")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    points = [(check_rate(r), -1) for r in rates] if rates is not None else [(float("nan"), int(c)) for c in counts]
    if any(c < -1 for _, c in points):
        raise ValueError("fault counts must be >= 0")
    label = bits_label(bit_positions)
    extra = {"variant": "", "train_seed": -1, **(extra or {})}
    recorded = read_table(out, "campaign") if out is not None and Path(out).is_file() else pd.DataFrame(columns=COLUMNS)
    sel = ((recorded["model_id"] == model_id) & (recorded["fault_model"] == fault_model)
           & (recorded["bits"] == label) & (recorded["seed"] == seed))  # fmt: skip
    old = recorded[sel].reset_index(drop=True)
    done = {_point_key(r, c, t) for r, c, t in zip(old["rate"], old["count"], old["trial"], strict=True)}
    device = model_device(model)
    x, y = x.to(device), y.to(device)
    rows: list[dict] = []
    model.eval()
    with frozen(model):
        injector = FaultInjector(model, layer_filter)
        clean_acc, clean_loss = evaluate(model, x, y, batch_size)
        todo = [(r, c, t) for r, c in points for t in range(trials) if _point_key(r, c, t) not in done]
        bar = Progress(len(todo), f"campaign {model_id} {fault_model}", progress)
        for r, c in points:
            for t in range(trials):
                if _point_key(r, c, t) in done:
                    continue
                maps = injector.sample(seed, t, rate=None if c >= 0 else r, count=c if c >= 0 else None,
                                       bit_positions=bit_positions)  # fmt: skip
                with injector.applied(maps, fault_model) as (nbits, changed):
                    acc, loss = evaluate(model, x, y, batch_size)
                rate = r if c < 0 else c / injector.total_bits
                rows.append({**extra, "model_id": model_id, "fault_model": fault_model, "bits": label,
                             "rate": rate, "count": c, "seed": seed, "trial": t, "faulty_bits": nbits,
                             "changed_weights": changed, "accuracy": acc, "loss": loss,
                             "clean_accuracy": clean_acc, "clean_loss": clean_loss})  # fmt: skip
                bar.update(1, f"rate {rate:.2g}")
            if out is not None and rows:
                # new rows never repeat a recorded key (done points are skipped), so appending is a merge
                write_schema_table(pd.concat([recorded, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True),
                                   out, "campaign")  # fmt: skip
    new = pd.DataFrame(rows, columns=COLUMNS)
    out_df = pd.concat([old, new], ignore_index=True) if len(old) else new
    out_df.attrs["computed_rows"] = len(new)  # rows computed by this call (the rest were resumed)
    return out_df


def _point_key(rate: float, count: int, trial: int) -> tuple:
    """Identity of a campaign point: the rate in rate mode, the count in count mode."""
    return (None if count >= 0 else round(float(rate), 12), int(count), int(trial))
