"""Command line: ``python -m flatenn {train,campaign,sharpness,reproduce,report,verify,bands,compare}``.

Models are named by a *model spec*: ``SCALE:VARIANT:SEED`` (e.g. ``smoke:sparse-saq:0``), a zoo key
(16 hex digits of a cached model), or a JSON file holding a training config.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``python -m flatenn campaign: error: --rates: ...`` and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _items(text: str, option: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{option} needs at least one value, got {text!r}")
    return items


def _rates(text: str) -> list[float]:
    out = []
    for t in _items(text, "--rates"):
        try:
            r = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bit error rates are numbers in [0, 1] like 1e-3,1e-2; got {t!r}") from None
        if not 0.0 <= r <= 1.0:
            raise argparse.ArgumentTypeError(f"bit error rates must be in [0, 1], got {t}")
        out.append(r)
    return out


def _whole_numbers(text: str, what: str, allow_ranges: bool) -> list[int]:
    out = []
    for t in _items(text, what):
        a, sep, b = t.partition("-") if allow_ranges and not t.startswith("-") else (t, "", "")
        try:
            vals = list(range(int(a), int(b) + 1)) if sep else [int(a)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} are whole numbers" + (" like 7 or 0-3,7" if allow_ranges else
                                             " like 1,10,100") + f", got {t!r}") from None  # fmt: skip
        if any(v < 0 for v in vals):
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {t!r}")
        out += vals
    return out


def _counts(text: str) -> list[int]:
    return _whole_numbers(text, "fault counts", allow_ranges=False)


def _bits(text: str) -> list[int]:
    return _whole_numbers(text, "bit positions", allow_ranges=True)


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a valid regular expression ({e}): {text!r}") from None
    return text


def resolve_config(spec: str, cache_dir: str | None = None):
    """A TrainConfig from ``SCALE:VARIANT:SEED``, a zoo key, or a JSON config file."""
    from .core.train import TrainConfig
    from .core.zoo import default_cache_dir
    from .repro.scales import get_scale

    if spec.count(":") == 2:
        scale, variant, seed = spec.split(":")
        if not seed.isdigit():
            raise ValueError(f"--model {spec!r}: the training seed must be a whole number >= 0, got {seed!r}")
        return get_scale(scale).train_config(variant, int(seed))
    p = Path(spec)
    if p.is_file():
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict):
                raise TypeError("the file holds a JSON " + type(d).__name__ + ", not an object")
            return TrainConfig.from_dict(d)
        except (ValueError, TypeError) as e:
            raise ValueError(f"--model {spec}: not a valid training config ({e}); see python -m flatenn train --help "
                             "for the fields") from None  # fmt: skip
    if re.fullmatch(r"[0-9a-f]{16}", spec):
        meta = Path(cache_dir or default_cache_dir()) / f"{spec}.json"
        if meta.is_file():
            return TrainConfig.from_dict(json.loads(meta.read_text())["record"]["config"])
        raise SystemExit(f"error: no cached model {spec} in {meta.parent}; train it first (python -m flatenn train ...)")
    raise SystemExit(f"error: model spec {spec!r} is not SCALE:VARIANT:SEED, a zoo key or a config JSON file")


def _add_foreign(p: argparse.ArgumentParser) -> None:
    """Options for a model flatenn did not build (torchvision:NAME or package.module:factory)."""
    from .core.data import DATASETS

    p.add_argument("--weights", default=None, help="state dict (.pt) for an own model (default: its initial weights)")
    p.add_argument("--data", default=None, choices=sorted(DATASETS), help="data set an own model is calibrated and "
                   "evaluated on")  # fmt: skip
    p.add_argument("--w-bits", type=int, default=8, help="own model: weight bits (default 8)")
    p.add_argument("--a-bits", type=int, default=8, help="own model: input-activation bits (default 8)")
    p.add_argument("--calibration-batches", type=_at_least(1), default=4, help="own model: calibration batches")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", default=None, help="model zoo folder (default $FLATENN_CACHE or ~/.cache/flatenn/zoo)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_train(a) -> int:
    from .core.train import TrainConfig
    from .core.zoo import Zoo

    if a.model_spec:
        cfg = resolve_config(a.model_spec, a.cache_dir)
    else:
        cfg = TrainConfig(dataset=a.dataset, model=a.model, width=a.width, activation=a.activation,
                          threshold=a.threshold, w_bits=a.w_bits, a_bits=a.a_bits,
                          quantize_first_last=not a.float_first_last, optimizer=a.optimizer, rho=a.rho,
                          epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, momentum=a.momentum,
                          weight_decay=a.weight_decay, seed=a.seed, train_subset=a.train_subset,
                          test_subset=a.test_subset)  # fmt: skip
    _, record = Zoo(a.cache_dir, device=a.device, progress=not a.quiet).get(cfg)
    print(json.dumps(record.to_dict(), indent=1) if a.json else record.summary())
    return 0


def check_device(name: str | None) -> None:
    """A named device must exist here (checked before any work)."""
    import torch

    if name in (None, "auto"):
        return
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available on this machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: only cpu and cuda are supported")


def check_out(path: str | None, table: str | None = None) -> None:
    """``--out`` must be a writable file path; an existing file must be a table of the same kind (resume)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name such as {p / 'campaign.csv'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: folder {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"--out {path}: not writable")
    if table and p.is_file():
        from .core.results import SCHEMAS

        header = p.read_text().split("\n", 1)[0].split(",")
        if header != list(SCHEMAS[table][0]):
            raise ValueError(f"--out {path} exists but is not a {table} table of this flatenn version; "
                             "choose another file")  # fmt: skip


def is_foreign(spec: str) -> bool:
    """``torchvision:NAME`` or ``package.module:factory`` (one colon), not ``SCALE:VARIANT:SEED``."""
    return spec.count(":") == 1


def _load_foreign(a):
    """A model flatenn did not build: load, quantize, calibrate on ``--data``'s training split."""
    import torch

    from .core.convert import load_named_model, quantize_model
    from .core.data import load_dataset
    from .core.determinism import resolve_device
    from .core.quant import calibrate_activations

    if not a.data:
        raise ValueError(f"--model {a.model}: name the data set to calibrate and evaluate on with --data")
    data = load_dataset(a.data)
    model = load_named_model(a.model, a.weights, num_classes=data.num_classes)
    quantize_model(model, w_bits=a.w_bits, a_bits=a.a_bits)
    dev = resolve_device(a.device)
    model.to(dev)
    n = a.calibration_batches * a.batch_size
    try:
        calibrate_activations(model, [data.x_train[i : i + a.batch_size].to(dev)
                                      for i in range(0, min(n, len(data.x_train)), a.batch_size)])
    except RuntimeError as e:
        raise ValueError(f"--model {a.model} does not accept {a.data} inputs of shape "
                         f"{tuple(data.x_train.shape[1:])}: {str(e).splitlines()[0]}") from None  # fmt: skip
    torch.set_grad_enabled(True)
    return model.eval(), data, None


def _load_model(a):
    """(model, data, config) for the ``--model`` spec of a command, trained through the zoo if needed."""
    from .core.zoo import Zoo

    check_device(a.device)
    if is_foreign(a.model):
        return _load_foreign(a)
    cfg = resolve_config(a.model, a.cache_dir)
    zoo = Zoo(a.cache_dir, device=a.device, progress=not a.quiet)
    model, _ = zoo.get(cfg)
    return model, zoo.data_for(cfg), cfg


def cmd_campaign(a) -> int:
    from .analysis.stats import summarize_campaign
    from .faults.campaign import run_campaign

    check_out(a.out, "campaign")
    model, data, cfg = _load_model(a)
    if a.eval_examples is not None and a.eval_examples > len(data.x_test):
        raise ValueError(f"--eval-examples {a.eval_examples}: the test set has only {len(data.x_test)} examples")
    n = a.eval_examples or len(data.x_test)
    df = run_campaign(model, data.x_test[:n], data.y_test[:n], a.fault, rates=a.rates, counts=a.counts,
                      trials=a.trials, seed=a.seed, model_id=a.model_id or (cfg.key() if cfg else a.model),
                      bit_positions=a.bits,
                      layer_filter=a.layers, batch_size=a.batch_size, out=a.out, progress=not a.quiet)  # fmt: skip
    summ = summarize_campaign(df)
    cols = ["fault_model", "bits", "rate", "count", "trials", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high",
            "faulty_bits_mean", "clean_accuracy"]  # fmt: skip
    print(summ[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if a.out:
        print(f"rows written to {a.out}")
    return 0


def cmd_vulnerability(a) -> int:
    import re as _re

    from .core.quant import quantized_layers
    from .core.results import write_table
    from .faults.vulnerability import COLUMNS, plot_vulnerability, vulnerability_map

    check_out(a.out)
    model, data, cfg = _load_model(a)
    n = a.eval_examples or len(data.x_test)
    names = [k for k in quantized_layers(model) if a.layers is None or _re.search(a.layers, k)]
    if not names:
        raise ValueError(f"--layers {a.layers!r} matches no quantized layer; layers: {list(quantized_layers(model))}")
    df = vulnerability_map(model, data.x_test[:n], data.y_test[:n], a.fault, rate=a.rate, trials=a.trials,
                           seed=a.seed, layers=names, bits=a.bits, batch_size=a.batch_size,
                           progress=not a.quiet)  # fmt: skip
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if a.out:
        write_table(df, a.out, COLUMNS)
        fig = Path(a.out).with_suffix(".png")
        plot_vulnerability(df, fig, a.model)
        print(f"rows written to {a.out}, heat map to {fig}")
    return 0


def cmd_sharpness(a) -> int:
    from .analysis.sharpness import measure
    from .core.results import write_table

    check_out(a.out)
    model, data, cfg = _load_model(a)
    x, y = data.x_train[: a.examples], data.y_train[: a.examples]
    rows, land = measure(model, x, y, a.metrics, model_id=a.model_id or (cfg.key() if cfg else a.model), seed=a.seed,
                         options={"probes": a.probes, "directions": a.directions, "sigma": a.sigma})  # fmt: skip
    print(rows.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    if a.out:
        write_table(rows.drop(columns="seconds"), a.out)
        if len(land):
            write_table(land, Path(a.out).with_name(Path(a.out).stem + "_landscape.csv"))
    return 0


def cmd_reproduce(a, extra: list[str]) -> int:
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks"), "-m", "not speed", "--scale", a.scale,
           "-p", "no:cacheprovider", *extra]  # fmt: skip
    if a.results_dir:
        cmd += ["--results-dir", a.results_dir]
    return subprocess.call(cmd)


def cmd_record(a) -> int:
    """Re-record a scale's tracked results from retrained models, then its reference values and report."""
    from .core.zoo import Zoo
    from .repro.experiment import Experiment
    from .repro.report import build_report
    from .repro.scales import get_scale
    from .repro.verify import record_bands

    root = Path(a.results_dir)
    exp = Experiment(get_scale(a.scale), root / a.scale, zoo=Zoo(a.cache_dir, device=a.device, progress=not a.quiet),
                     device=a.device, progress=not a.quiet, retrain=True,
                     command="python -m flatenn " + " ".join(sys.argv[1:]))  # fmt: skip
    exp.ensure_all()
    exp.computed = True
    exp.finish()
    print(f"reference values written to {record_bands(root / a.scale, a.scale)}")
    for p in build_report(root):
        print(p)
    return 0


def cmd_report(a) -> int:
    from .repro.report import build_report

    for p in build_report(Path(a.results_dir)):
        print(p)
    return 0


def cmd_verify(a) -> int:
    from .repro.verify import verify_all

    root = Path(a.results_dir)
    problems = verify_all(root)
    for p in problems:
        print(p)
    scales = sorted(d.name for d in root.iterdir() if (d / "claims.csv").is_file())
    print(f"checked {len(scales)} folder(s) ({', '.join(scales)}): every derived table re-derived from the raw "
          "CSVs, fingerprints against training.csv, completeness, checksums in provenance.json, recorded verdicts")
    print("verify: OK" if not problems else f"verify: {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_bands(a) -> int:
    from .repro.report import build_report
    from .repro.verify import record_bands

    path = record_bands(Path(a.results_dir) / a.scale, a.scale)
    build_report(Path(a.results_dir))  # the claims table now shows the bands
    print(f"bands written to {path}")
    return 0


def cmd_compare(a) -> int:
    from .repro.verify import compare_runs

    problems = compare_runs(Path(a.tracked), Path(a.fresh), retrained=a.retrained)
    for p in problems:
        print(p)
    print("compare: OK" if not problems else f"compare: {len(problems)} difference(s) beyond tolerance")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    from .analysis.sharpness import METRICS
    from .core.activations import ACTIVATIONS
    from .core.data import DATASETS
    from .core.models import MODELS
    from .faults.sampling import FAULT_MODELS

    ap = _Parser(prog="python -m flatenn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train (or load from the cache) one model and print its record")
    t.add_argument("--model-spec", help="SCALE:VARIANT:SEED instead of the options below (e.g. smoke:sparse-saq:0)")
    t.add_argument("--dataset", default="digits", choices=sorted(DATASETS), help="data set (default digits)")
    t.add_argument("--model", default="cnn_digits", choices=sorted(MODELS), help="architecture")
    t.add_argument("--width", type=_at_least(1), default=16, help="channels of the first stage (default 16)")
    t.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="relu or fatrelu")
    t.add_argument("--threshold", type=_nonneg_float, default=0.0, help="FATReLU threshold T: f(x)=x if x>T else 0")
    t.add_argument("--w-bits", type=int, default=8, help="weight bits, 2..16 (default 8)")
    t.add_argument("--a-bits", type=int, default=8, help="activation bits, 2..16 (default 8)")
    t.add_argument("--float-first-last", action="store_true", help="keep the first and last layers in float")
    t.add_argument("--optimizer", default="sgd", choices=("sgd", "saq"), help="conventional SGD or SAQ")
    t.add_argument("--rho", type=_nonneg_float, default=0.05, help="SAQ neighbourhood radius (default 0.05)")
    t.add_argument("--epochs", type=_at_least(0), default=30)
    t.add_argument("--batch-size", type=_at_least(1), default=64)
    t.add_argument("--lr", type=_positive_float, default=0.05, help="initial learning rate (cosine schedule)")
    t.add_argument("--momentum", type=_nonneg_float, default=0.9)
    t.add_argument("--weight-decay", type=_nonneg_float, default=5e-4)
    t.add_argument("--seed", type=_at_least(0), default=0)
    t.add_argument("--train-subset", type=_at_least(1), default=None, help="use a seeded subset of the training data")
    t.add_argument("--test-subset", type=_at_least(1), default=None, help="use a seeded subset of the test data")
    t.add_argument("--json", action="store_true", help="print the whole record as JSON")
    _add_common(t)

    c = sub.add_parser("campaign", help="run a seeded fault campaign on one model")
    c.add_argument("--model", required=True, help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or "
                   "package.module:factory (your own model: quantized and calibrated on --data)")
    c.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--rates", type=_rates, help="bit error rates, e.g. 1e-3,1e-2")
    g.add_argument("--counts", type=_counts, help="exact numbers of faulty bits, e.g. 1,10,100")
    c.add_argument("--trials", type=_at_least(1), default=50, help="fault maps per point (default 50)")
    c.add_argument("--seed", type=_at_least(0), default=0, help="campaign seed (same seed = same maps for every model)")
    c.add_argument("--bits", type=_bits, default=None, help="only these bit positions, e.g. 7 or 0-3 (default all)")
    c.add_argument("--layers", type=_regex, default=None, help="regex: only layers whose name matches")
    c.add_argument("--eval-examples", type=_at_least(1), default=None, help="evaluate on the first N test examples")
    c.add_argument("--batch-size", type=_at_least(1), default=512, help="evaluation batch size (pin it: results depend on it)")
    c.add_argument("--model-id", default=None, help="id written in the rows (default: the zoo key)")
    _add_foreign(c)
    c.add_argument("--out", default=None, help="CSV to write; rows already there are not recomputed (resume)")
    _add_common(c)

    v = sub.add_parser("vulnerability", help="accuracy drop per (layer, bit position): which bits to protect")
    v.add_argument("--model", required=True, help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or "
                   "package.module:factory")  # fmt: skip
    v.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    v.add_argument("--rate", type=lambda t: _rates(t)[0], default=1e-2, help="bit error rate per eligible bit")
    v.add_argument("--trials", type=_at_least(2), default=20, help="fault maps per (layer, bit) (default 20)")
    v.add_argument("--seed", type=_at_least(0), default=0)
    v.add_argument("--layers", type=_regex, default=None, help="regex: only these layers (default all)")
    v.add_argument("--bits", type=_bits, default=None, help="bit positions (default all)")
    v.add_argument("--eval-examples", type=_at_least(1), default=None)
    v.add_argument("--batch-size", type=_at_least(1), default=512)
    v.add_argument("--out", default=None, help="CSV to write (a heat map .png is written beside it)")
    _add_foreign(v)
    _add_common(v)

    s = sub.add_parser("sharpness", help="measure sharpness metrics of one model")
    s.add_argument("--model", required=True, help="model spec: SCALE:VARIANT:SEED, zoo key, or config JSON")
    s.add_argument("--metrics", type=lambda t: t.split(","), default=["lambda_max_fn", "trace_fn", "avg_sharpness"],
                   help=f"comma list from {','.join(METRICS)}")
    s.add_argument("--examples", type=_at_least(2), default=512, help="training examples used (default 512)")
    s.add_argument("--probes", type=_at_least(2), default=20, help="Hutchinson probes (default 20)")
    s.add_argument("--directions", type=_at_least(2), default=20, help="directions for average sharpness (default 20)")
    s.add_argument("--sigma", type=_positive_float, default=0.05, help="relative perturbation size (default 0.05)")
    s.add_argument("--seed", type=_at_least(0), default=0)
    s.add_argument("--model-id", default=None)
    s.add_argument("--batch-size", type=_at_least(1), default=512, help="batch size (calibration of own models)")
    _add_foreign(s)
    s.add_argument("--out", default=None, help="CSV for the metric rows")
    _add_common(s)

    r = sub.add_parser("reproduce", help="run the claims benchmarks (pytest benchmarks); extra args go to pytest")
    r.add_argument("--scale", default="smoke", help="smoke (default), cpu, paper, or a comma list")
    r.add_argument("--results-dir", default=None, help="default: results/")

    rec = sub.add_parser("record", help="re-record results/<scale>/ from retrained models (tracked results)")
    rec.add_argument("--scale", required=True, help="smoke or cpu")
    rec.add_argument("--results-dir", default=str(ROOT / "results"))
    _add_common(rec)

    for name, helptext in (("report", "draw figures and results/README.md from the CSVs"),
                           ("verify", "check tracked CSVs against the bands without recomputing")):  # fmt: skip
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--results-dir", default=str(ROOT / "results"))

    b = sub.add_parser("bands", help="record a scale's bands from its claims.csv (flatenn/repro/bands/<scale>.json)")
    b.add_argument("--scale", required=True)
    b.add_argument("--results-dir", default=str(ROOT / "results"))

    m = sub.add_parser("compare", help="compare a fresh results/<scale> folder with the tracked one")
    m.add_argument("tracked")
    m.add_argument("fresh")
    m.add_argument("--retrained", action="store_true", help="the fresh run retrained its models: compare statistically")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if argv[:1] == ["reproduce"] and "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    a = build_parser().parse_args(argv)
    if getattr(a, "quiet", False):
        import os

        os.environ["FLATENN_QUIET"] = "1"
    handlers = {"vulnerability": cmd_vulnerability, "record": cmd_record, "train": cmd_train, "campaign": cmd_campaign, "sharpness": cmd_sharpness, "report": cmd_report,
                "verify": cmd_verify, "bands": cmd_bands, "compare": cmd_compare}  # fmt: skip
    try:
        if a.command == "reproduce":
            return cmd_reproduce(a, extra)
        return handlers[a.command](a)
    except (ValueError, FileNotFoundError, KeyError, TypeError, PermissionError) as e:
        msg = str(e).strip("'\"") or type(e).__name__
        print(f"python -m flatenn {a.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"python -m flatenn {a.command}: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)  # fmt: skip
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
