"""The argument parser of ``python -m flatenn``: every command and option, with its help (the command-line reference
is generated from it)."""

from __future__ import annotations

import argparse

from .models import add_own_model_options
from .options import (
    MAX_PROBES,
    MAX_TRIALS,
    OneLineErrorParser,
    add_common_options,
    add_executor_options,
    bit_list,
    count_list,
    fraction,
    one_rate,
    positive_float,
    rate_list,
    regex,
    remeasure_count,
    whole_number,
)
from .results import DEFAULT_REMEASURE, ROOT
from .train import add_train_options

DESCRIPTION = """Fault tolerance of quantized, activation-sparse networks: train models, run seeded fault campaigns,
measure sharpness, and reproduce, verify and compare the FlatENN claims.

A model is named by a model spec: SCALE:VARIANT:SEED (e.g. smoke:sparse-saq:0), a zoo key (16 hex digits of a
cached model), a JSON file holding a training config, or your own model, torchvision:NAME or
package.module:factory (quantized and calibrated on --data). Every error is one line naming the option."""


def build_parser() -> argparse.ArgumentParser:
    from ..analysis.sharpness import METRICS
    from ..faults.sampling import FAULT_MODELS

    ap = OneLineErrorParser(
        prog="python -m flatenn", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)

    t = sub.add_parser("train", help="train (or load from the cache) one model and print its record")
    t.add_argument("--model-spec", help="SCALE:VARIANT:SEED instead of the options below (e.g. smoke:sparse-saq:0)")
    add_train_options(t)
    t.add_argument("--json", action="store_true", help="print the whole record as JSON")
    add_common_options(t)

    c = sub.add_parser("campaign", help="run a seeded fault campaign on one model")
    c.add_argument(
        "--model",
        required=True,
        help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or "
        "package.module:factory (your own model: quantized and calibrated on --data)",
    )
    c.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--rates", type=rate_list, help="bit error rates, e.g. 1e-3,1e-2")
    g.add_argument("--counts", type=count_list, help="exact numbers of faulty bits, e.g. 1,10,100")
    c.add_argument("--trials", type=whole_number(1, MAX_TRIALS), default=50, help="fault maps per point (default 50)")
    c.add_argument(
        "--seed", type=whole_number(0), default=0, help="campaign seed (same seed = same maps for every model)"
    )
    c.add_argument("--bits", type=bit_list, default=None, help="only these bit positions, e.g. 7 or 0-3 (default all)")
    c.add_argument("--layers", type=regex, default=None, help="regex: only layers whose name matches")
    c.add_argument("--eval-examples", type=whole_number(1), default=None, help="evaluate on the first N test examples")
    c.add_argument(
        "--batch-size", type=whole_number(1), default=512, help="evaluation batch size (pin it: results depend on it)"
    )
    c.add_argument("--model-id", default=None, help="id written in the rows (default: the zoo key)")
    c.add_argument(
        "--protection",
        choices=("none", "sign-bit", "secded", "ranger", "ft-clipact"),
        default="none",
        help="inference-time protection (ranger, ft-clipact: built from training images; default none)",
    )
    add_own_model_options(c)
    c.add_argument(
        "--out",
        default=None,
        help="table to write: CSV, or Parquet for a .parquet name; rows already there are not recomputed (resume)",
    )
    add_common_options(c)

    v = sub.add_parser("vulnerability", help="accuracy drop per (layer, bit position): which bits to protect")
    v.add_argument(
        "--model",
        required=True,
        help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or package.module:factory",
    )
    v.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    v.add_argument("--rate", type=one_rate, default=1e-2, help="one bit error rate per eligible bit (default 1e-2)")
    v.add_argument(
        "--trials", type=whole_number(2, MAX_TRIALS), default=20, help="fault maps per (layer, bit) (default 20)"
    )
    v.add_argument("--seed", type=whole_number(0), default=0)
    v.add_argument("--layers", type=regex, default=None, help="regex: only these layers (default all)")
    v.add_argument("--bits", type=bit_list, default=None, help="bit positions (default all)")
    v.add_argument("--eval-examples", type=whole_number(1), default=None)
    v.add_argument("--batch-size", type=whole_number(1), default=512)
    v.add_argument("--out", default=None, help="CSV to write (a heat map .png is written beside it)")
    add_own_model_options(v)
    add_common_options(v)

    s = sub.add_parser("sharpness", help="measure sharpness metrics of one model")
    s.add_argument("--model", required=True, help="model spec: SCALE:VARIANT:SEED, zoo key, or config JSON")
    s.add_argument(
        "--metrics",
        type=lambda t: t.split(","),
        default=["lambda_max_fn", "trace_fn", "avg_sharpness"],
        help=f"comma list from {','.join(METRICS)}",
    )
    s.add_argument(
        "--examples",
        type=whole_number(2),
        default=512,
        help="training examples used, at most the training set (default 512)",
    )
    s.add_argument("--probes", type=whole_number(2, MAX_PROBES), default=20, help="Hutchinson probes (default 20)")
    s.add_argument(
        "--directions",
        type=whole_number(2, MAX_PROBES),
        default=20,
        help="directions for average sharpness (default 20)",
    )
    s.add_argument("--sigma", type=positive_float, default=0.05, help="relative perturbation size (default 0.05)")
    s.add_argument("--seed", type=whole_number(0), default=0)
    s.add_argument("--model-id", default=None)
    s.add_argument("--batch-size", type=whole_number(1), default=512, help="batch size (calibration of own models)")
    add_own_model_options(s)
    s.add_argument("--out", default=None, help="CSV for the metric rows")
    add_common_options(s)

    r = sub.add_parser("reproduce", help="run the claims benchmarks (pytest benchmarks); extra args go to pytest")
    r.add_argument("--scale", default="smoke", help="smoke (default), cpu, paper, or a comma list")
    r.add_argument(
        "--results-dir",
        default=None,
        help="where <scale>/ folders are written (default: a fresh "
        "runs/<UTC time>/; the tracked results/ are never rewritten by a reproduction)",
    )

    rec = sub.add_parser("record", help="re-record results/<scale>/ from retrained models (tracked results)")
    rec.add_argument("--scale", required=True, help="smoke or cpu")
    rec.add_argument("--results-dir", default=str(ROOT / "results"))
    add_executor_options(rec)
    add_common_options(rec)

    for name, helptext in (
        ("report", "draw figures and results/README.md from the CSVs"),
        ("verify", "check tracked CSVs, shipped models and provenance (no retraining)"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--results-dir", default=str(ROOT / "results"))
    q.add_argument(
        "--remeasure",
        type=remeasure_count,
        default=DEFAULT_REMEASURE,
        help="re-measure every sharpness row of N models per folder from the shipped models, drawn at random "
        f"('all' for every model; default {DEFAULT_REMEASURE}); every landscape and sparsity row is re-measured "
        "too. Needs each folder's data set (a folder without it is re-derived only, and says so)",
    )
    q.add_argument(
        "--remeasure-seed",
        type=whole_number(0, 2**32 - 1),
        default=None,
        help="draw the re-measured models with this seed (default: a fresh one, printed, so a run can be replayed)",
    )
    q.add_argument(
        "--no-remeasure",
        action="store_true",
        help="re-derive and check the tables only; re-measure nothing (no data set needed)",
    )

    pw = sub.add_parser("power", help="seeds each primary claim needs for a decisive verdict (from recorded SDs)")
    pw.add_argument("--scale", required=True, help="a recorded scale (smoke, cpu)")
    pw.add_argument("--results-dir", default=str(ROOT / "results"))
    pw.add_argument("--power", type=fraction, default=0.8, help="target power, in (0, 1) (default 0.8)")

    vd = sub.add_parser("verdicts", help="a recorded scale's verdicts under analysis plan v1, v2 or v3 (from the CSVs)")
    vd.add_argument("--scale", required=True, help="a recorded scale (smoke, cpu)")
    vd.add_argument("--results-dir", default=str(ROOT / "results"))
    vd.add_argument("--plan", choices=("v1", "v2", "v3"), default="v2", help="analysis plan (default v2)")

    b = sub.add_parser("bands", help="record a scale's bands from its claims.csv (flatenn/repro/bands/<scale>.json)")
    b.add_argument("--scale", required=True)
    b.add_argument("--results-dir", default=str(ROOT / "results"))

    m = sub.add_parser("compare", help="compare a fresh results/<scale> folder with the tracked one")
    m.add_argument("tracked")
    m.add_argument("fresh")
    m.add_argument("--retrained", action="store_true", help="the fresh run retrained its models: compare statistically")
    return ap
