"""Command line: ``python -m flatenn {train,campaign,vulnerability,sharpness,reproduce,record,report,verify,bands,
compare,power}``.

Models are named by a *model spec*: ``SCALE:VARIANT:SEED`` (e.g. ``smoke:sparse-saq:0``), a zoo key
(16 hex digits of a cached model), a JSON file holding a training config, or, for your own model,
``torchvision:NAME`` / ``package.module:factory`` (quantized and calibrated on ``--data``). ``train``'s
options are generated from :class:`flatenn.core.train.TrainConfig`; ``--optimizer`` lists the registered
training methods (:mod:`flatenn.core.methods`).
"""

from __future__ import annotations

import argparse
import errno
import json
import math
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


MAX_POINTS = 1000  # rates or counts of one campaign; more is a typo (each is a full set of trials)
MAX_SEED = 2**32 - 1  # training seeds: what every seeded generator the training uses accepts
MAX_EPOCHS = 10_000
MAX_WIDTH = 1024  # channels of the first stage: a wider model of the built-in kinds does not fit this kind of machine
MAX_PROBES = 10_000  # Hutchinson probes / random directions of a sharpness measurement


def _bounded_items(text: str, option: str) -> list[str]:
    items = _items(text, option)
    if len(items) > MAX_POINTS:
        raise argparse.ArgumentTypeError(f"{option} takes at most {MAX_POINTS} values, got {len(items)}")
    return items


def _rates(text: str) -> list[float]:
    out = []
    for t in _bounded_items(text, "--rates"):
        try:
            r = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bit error rates are numbers in [0, 1] like 1e-3,1e-2; got {t!r}"
            ) from None
        if not 0.0 <= r <= 1.0:
            raise argparse.ArgumentTypeError(f"bit error rates must be in [0, 1], got {t}")
        out.append(r)
    return out


def _whole_numbers(text: str, what: str, allow_ranges: bool) -> list[int]:
    out = []
    for t in _bounded_items(text, what):
        a, sep, b = t.partition("-") if allow_ranges and not t.startswith("-") else (t, "", "")
        try:
            vals = list(range(int(a), int(b) + 1)) if sep else [int(a)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} are whole numbers"
                + (" like 7 or 0-3,7" if allow_ranges else " like 1,10,100")
                + f", got {t!r}"
            ) from None
        if any(v < 0 for v in vals):
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {t!r}")
        out += vals
        if len(out) > MAX_POINTS:
            raise argparse.ArgumentTypeError(f"{what}: at most {MAX_POINTS} values, got a range of {len(vals)}")
    return out


def _counts(text: str) -> list[int]:
    return _whole_numbers(text, "fault counts", allow_ranges=False)


def _bits(text: str) -> list[int]:
    return _whole_numbers(text, "bit positions", allow_ranges=True)


def _at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:,}, got {v:,}")
        return v

    return parse


MAX_TRIALS = 1_000_000  # fault maps per point; more is a typo (and points x trials is bounded again by the library)


def _one_rate(text: str) -> float:
    rates = _rates(text)
    if len(rates) != 1:
        raise argparse.ArgumentTypeError(f"give one bit error rate (a map is per rate), got {text!r}")
    return rates[0]


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _fraction(text: str) -> float:
    """A probability strictly between 0 and 1 (a power, a level)."""
    v = _positive_float(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1) like 0.8, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _remeasure_count(text: str) -> int | str:
    return "all" if text == "all" else _at_least(0)(text)


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
        if not seed.isdigit() or int(seed) > MAX_SEED:
            raise ValueError(f"--model {spec!r}: the training seed must be a whole number in 0..{MAX_SEED}, got {seed}")
        return get_scale(scale).train_config(variant, int(seed))
    if _names_a_scale(spec):
        raise ValueError(
            f"--model {spec!r}: a scale's model is SCALE:VARIANT:SEED, e.g. {spec}:0 (the seed is missing)"
        )
    p = Path(spec)
    if p.is_file():
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict):
                raise TypeError("the file holds a JSON " + type(d).__name__ + ", not an object")
            return TrainConfig.from_dict(d)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"--model {spec}: not a valid training config ({e}); see python -m flatenn train --help for the fields"
            ) from None
    if re.fullmatch(r"[0-9a-f]{16}", spec):
        from .core.zoo import CorruptEntryError, entry_record

        meta = Path(cache_dir or default_cache_dir()) / f"{spec}.json"
        if not meta.is_file():
            raise ValueError(f"no cached model {spec} in {meta.parent}; train it first (python -m flatenn train ...)")
        try:
            cfg = TrainConfig.from_dict(entry_record(meta)["config"])
        except (CorruptEntryError, KeyError, TypeError) as e:
            raise ValueError(
                f"--model {spec}: the cache entry cannot be trusted ({e}); delete {meta} and its .pt and train again"
            ) from None
        if cfg.key() != spec:
            raise ValueError(
                f"--model {spec}: the cache entry holds the config of {cfg.key()}, not {spec}; delete "
                f"{meta} and its .pt and train again"
            )
        return cfg
    raise ValueError(
        f"model spec {spec!r} is not SCALE:VARIANT:SEED, a zoo key, a config JSON file, torchvision:NAME "
        "or package.module:factory"
    )


def _add_foreign(p: argparse.ArgumentParser) -> None:
    """Options for a model flatenn did not build (torchvision:NAME or package.module:factory)."""
    from .core.data import DATASETS

    p.add_argument("--weights", default=None, help="state dict (.pt) for an own model (default: its initial weights)")
    p.add_argument(
        "--data", default=None, choices=sorted(DATASETS), help="data set an own model is calibrated and evaluated on"
    )
    p.add_argument("--w-bits", type=_at_least(2, 16), default=None, help="own model: weight bits (default 8)")
    p.add_argument("--a-bits", type=_at_least(2, 16), default=None, help="own model: input-activation bits (default 8)")
    p.add_argument(
        "--calibration-batches", type=_at_least(1), default=None, help="own model: calibration batches (default 4)"
    )


FOREIGN_OPTIONS = {
    "weights": "--weights",
    "data": "--data",
    "w_bits": "--w-bits",
    "a_bits": "--a-bits",
    "calibration_batches": "--calibration-batches",
}


def check_foreign_options(a) -> None:
    """Options for an own model are an error with a model flatenn trained (they would be ignored)."""
    if is_foreign(a.model):
        return
    given = [opt for k, opt in FOREIGN_OPTIONS.items() if getattr(a, k, None) is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to your own model "
            f"(--model torchvision:NAME or package.module:factory); --model {a.model} is a model "
            "flatenn trains, with its data, bit widths and weights fixed by its config"
        )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir", default=None, help="model zoo folder (default $FLATENN_CACHE or ~/.cache/flatenn/zoo)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


TRAIN_HELP = {
    "dataset": "data set (default digits)",
    "model": "architecture (default cnn_digits)",
    "width": "channels of the first stage (default 16)",
    "activation": "relu or fatrelu (default relu)",
    "threshold": "FATReLU threshold T: f(x)=x if x>T else 0 (fatrelu only)",
    "w_bits": "weight bits, 2..16 (default 8)",
    "a_bits": "activation bits, 2..16 (default 8)",
    "optimizer": "training method (flatenn.core.methods; default sgd)",
    "rho": "SAQ/SAM/ASAM neighbourhood radius (default 0.05; ASAM paper: 0.5)",
    "epochs": "training epochs (default 30)",
    "batch_size": "training batch size (default 64)",
    "lr": "initial learning rate, cosine schedule (default 0.05)",
    "momentum": "SGD momentum (default 0.9)",
    "weight_decay": "weight decay (default 5e-4)",
    "seed": "training seed",
    "train_subset": "use a seeded subset of the training data",
    "test_subset": "use a seeded subset of the test data",
    "eta": "ASAM's offset in T = |w| + eta (asam only; default 0.01, the paper's)",
    "w_max": "weight clipping bound: latent weights kept in [-w_max, w_max] (clip, randbet; Stutz et al.: 0.1)",
    "p_train": "bit error rate: injected during training (randbet; Stutz et al.: 0.01) or weighting the trace (hessian)",
}


def _train_options(t: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field (types, choices and defaults from the dataclass; default None = unset)."""
    import dataclasses

    from .core.activations import ACTIVATIONS
    from .core.data import DATASETS
    from .core.methods import METHODS
    from .core.models import MODELS
    from .core.train import TrainConfig

    choices = {
        "dataset": sorted(DATASETS),
        "model": sorted(MODELS),
        "activation": ACTIVATIONS,
        "optimizer": sorted(METHODS),
    }
    parse = {
        "width": _at_least(1, MAX_WIDTH),
        "w_bits": _at_least(2, 16),
        "a_bits": _at_least(2, 16),
        "epochs": _at_least(1, MAX_EPOCHS),
        "batch_size": _at_least(1),
        "seed": _at_least(0, MAX_SEED),
        "train_subset": _at_least(1),
        "test_subset": _at_least(1),
        "lr": _positive_float,
        "w_max": _positive_float,
        "p_train": _positive_float,
    }
    for f in dataclasses.fields(TrainConfig):
        if f.name in TRAIN_HELP:
            kind = parse.get(f.name, _nonneg_float if "float" in str(f.type) else str)
            t.add_argument(
                "--" + f.name.replace("_", "-"),
                type=kind,
                default=None,
                choices=choices.get(f.name),
                help=TRAIN_HELP[f.name],
            )
    t.add_argument("--float-first-last", action="store_true", help="keep the first and the last layer in float")


def cmd_train(a) -> int:
    from .core.train import TrainConfig
    from .core.zoo import Zoo

    check_device(a.device)
    given = {k: getattr(a, k) for k in TRAIN_HELP if getattr(a, k) is not None}
    if a.float_first_last:
        given["quantize_first_last"] = False
    if a.model_spec:
        if given:
            raise ValueError(
                f"--model-spec {a.model_spec} fixes the whole training config; "
                f"{', '.join('--' + k.replace('_', '-') for k in given)} would be ignored: drop "
                "them, or give the config by options alone"
            )
        cfg = resolve_config(a.model_spec, a.cache_dir)
    else:
        check_method_fields(given)
        cfg = TrainConfig(**given)
    _, record = Zoo(a.cache_dir, device=a.device, progress=not a.quiet).get(cfg)
    print(json.dumps(record.to_dict(), indent=1) if a.json else record.summary())
    return 0


def check_method_fields(given: dict) -> None:
    """A training method's hyper-parameter given to a method that does not read it is refused: it would be
    ignored, yet change the model's cache key (two keys for one model)."""
    from .core.methods import METHODS, get_method

    method = get_method(given.get("optimizer", "sgd"))
    known = {f for m in METHODS.values() for f in m.hyper_parameters}
    stray = [f for f in given if f in known and f not in method.hyper_parameters]
    if stray:
        opts = ", ".join("--" + f.replace("_", "-") for f in stray)
        reads = ", ".join("--" + f.replace("_", "-") for f in method.hyper_parameters) or "no hyper-parameter"
        raise ValueError(f"{opts}: training method {method.name!r} does not read it (it reads {reads}); drop {opts}")


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
        from .core.results import SCHEMAS, is_columnar

        if is_columnar(p):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                header = pq.read_schema(p).names
            except (pa.ArrowException, OSError):
                header = []
        else:
            header = p.read_bytes()[:4096].decode(errors="replace").split("\n", 1)[0].split(",")
        if header != list(SCHEMAS[table][0]):
            raise ValueError(
                f"--out {path} exists but is not a {table} table of this flatenn version; choose another file"
            )


def _names_a_scale(spec: str) -> bool:
    from .repro.scales import SCALES

    return spec.split(":")[0] in SCALES


def is_foreign(spec: str) -> bool:
    """``torchvision:NAME`` or ``package.module:factory`` (one colon), not ``SCALE:VARIANT:SEED`` (nor that spec
    with its seed missing)."""
    return spec.count(":") == 1 and not _names_a_scale(spec)


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
    quantize_model(model, w_bits=own_w_bits(a), a_bits=a.a_bits or 8)
    dev = resolve_device(a.device)
    model.to(dev)
    n = (a.calibration_batches or 4) * a.batch_size
    try:
        calibrate_activations(
            model,
            [data.x_train[i : i + a.batch_size].to(dev) for i in range(0, min(n, len(data.x_train)), a.batch_size)],
        )
        with torch.no_grad():
            out = model.eval()(data.x_train[:2].to(dev))
    except RuntimeError as e:
        raise ValueError(
            f"--model {a.model} does not accept {a.data} inputs of shape "
            f"{tuple(data.x_train.shape[1:])}: {str(e).splitlines()[0]}"
        ) from None
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise ValueError(
            f"--model {a.model} outputs shape {tuple(out.shape)} on a batch of 2, but {a.data} has "
            f"{data.num_classes} classes: the model must return (batch, {data.num_classes}) logits"
        )
    torch.set_grad_enabled(True)
    return model.eval(), data, None


def own_w_bits(a) -> int:
    return a.w_bits or 8


def _load_model(a):
    """(model, data, config) for the ``--model`` spec of a command, trained through the zoo if needed."""
    from .core.zoo import Zoo

    check_device(a.device)
    check_foreign_options(a)
    if is_foreign(a.model):
        return _load_foreign(a)
    cfg = resolve_config(a.model, a.cache_dir)
    check_bits_option(a, cfg)
    zoo = Zoo(a.cache_dir, device=a.device, progress=not a.quiet)
    model, _ = zoo.get(cfg)
    return model, zoo.data_for(cfg), cfg


def check_bits_option(a, cfg) -> None:
    """``--bits`` positions must exist in the model's weight width, known before any model is loaded or trained."""
    bits = getattr(a, "bits", None)
    width = own_w_bits(a) if cfg is None else cfg.w_bits
    if bits and width is not None and max(bits) >= width:
        raise ValueError(
            f"--bits {max(bits)}: the model stores {width}-bit weights, so bit positions are 0..{width - 1}"
        )


def check_eval_examples(a, data) -> int:
    """The evaluation set size: --eval-examples, at most the test set (all of it by default)."""
    if a.eval_examples is not None and a.eval_examples > len(data.x_test):
        raise ValueError(f"--eval-examples {a.eval_examples}: the test set has only {len(data.x_test)} examples")
    return a.eval_examples or len(data.x_test)


def _cli_protection(a, model, data):
    """``--protection`` as run_campaign takes it; Ranger and FT-ClipAct are fitted on the training images (never
    the test images; FT-ClipAct under bit flips at the campaign's rates > 0, on maps the campaign does not use)."""
    from .faults.protection_builder import build_protection

    rates = [r for r in a.rates or [] if r > 0]
    return build_protection(a.protection, model, data.x_train, data.y_train, campaign_seed=a.seed, rates=rates)


def check_protection_option(a) -> None:
    """Refuse ``--protection`` combinations a campaign cannot run, before any model is loaded."""
    if a.protection == "ft-clipact" and not any(r > 0 for r in a.rates or []):
        raise ValueError("--protection ft-clipact chooses its thresholds at the campaign's --rates: give a rate > 0")
    if a.protection == "sign-bit" and a.bits is not None:
        raise ValueError("--protection sign-bit sets the bit positions itself (bits 0..b-2): drop --bits")


def cmd_campaign(a) -> int:
    from .analysis.stats import summarize_campaign
    from .faults.campaign import campaign_points, run_campaign

    check_out(a.out, "campaign")
    campaign_points(a.rates, a.counts)  # repeated points are refused before any model is loaded
    check_protection_option(a)
    if is_foreign(a.model):
        check_bits_option(a, None)
    model, data, cfg = _load_model(a)
    n = check_eval_examples(a, data)
    df = run_campaign(
        model,
        data.x_test[:n],
        data.y_test[:n],
        a.fault,
        rates=a.rates,
        counts=a.counts,
        trials=a.trials,
        seed=a.seed,
        model_id=a.model_id or (cfg.key() if cfg else a.model),
        bit_positions=a.bits,
        layer_filter=a.layers,
        batch_size=a.batch_size,
        out=a.out,
        progress=not a.quiet,
        protection=_cli_protection(a, model, data),
    )
    summ = summarize_campaign(df)
    cols = [
        "fault_model",
        "bits",
        "rate",
        "count",
        "trials",
        "accuracy_mean",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "faulty_bits_mean",
        "clean_accuracy",
    ]
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
    if is_foreign(a.model):
        check_bits_option(a, None)
    model, data, cfg = _load_model(a)
    n = check_eval_examples(a, data)
    names = [k for k in quantized_layers(model) if a.layers is None or _re.search(a.layers, k)]
    if not names:
        raise ValueError(f"--layers {a.layers!r} matches no quantized layer; layers: {list(quantized_layers(model))}")
    df = vulnerability_map(
        model,
        data.x_test[:n],
        data.y_test[:n],
        a.fault,
        rate=a.rate,
        trials=a.trials,
        seed=a.seed,
        layers=names,
        bits=a.bits,
        batch_size=a.batch_size,
        progress=not a.quiet,
    )
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
    check_sharpness_examples(a)
    model, data, cfg = _load_model(a)
    x, y = data.x_train[: a.examples], data.y_train[: a.examples]
    rows, land = measure(
        model,
        x,
        y,
        a.metrics,
        model_id=a.model_id or (cfg.key() if cfg else a.model),
        seed=a.seed,
        options={"probes": a.probes, "directions": a.directions, "sigma": a.sigma},
    )
    print(rows.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    if a.out:
        write_table(rows.drop(columns="seconds"), a.out)
        if len(land):
            write_table(land, Path(a.out).with_name(Path(a.out).stem + "_landscape.csv"))
    return 0


def check_sharpness_examples(a) -> None:
    """``--examples`` must fit the model's training split, known before any model is loaded or trained."""
    from .core.data import load_dataset

    if is_foreign(a.model):
        if not a.data:
            return  # _load_foreign says that --data is needed
        name, sub = a.data, None
    else:
        cfg = resolve_config(a.model, a.cache_dir)
        name, sub = cfg.dataset, cfg.train_subset
    n = sub or len(load_dataset(name).x_train)
    if a.examples > n:
        raise ValueError(f"--examples {a.examples}: the training split of {name} has only {n} examples")


def check_results_dir(path: str, must_exist: bool) -> Path:
    """A results folder: an existing folder to read, or a folder that can be created and written to."""
    import os

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"--results-dir {path} is a file, not a folder")
    if must_exist and not p.is_dir():
        raise ValueError(f"--results-dir {path} does not exist")
    if not must_exist:
        existing = next(q for q in (p, *p.parents) if q.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise ValueError(f"--results-dir {path}: {existing} is not a writable folder; choose another --results-dir")
    return p


def cmd_reproduce(a, extra: list[str]) -> int:
    from .repro.scales import expand_scales

    expand_scales(a.scale)  # an unknown scale is one line here, not a pytest collection error
    if a.results_dir:
        check_results_dir(a.results_dir, must_exist=False)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "benchmarks"),
        "-m",
        "not speed",
        "--scale",
        a.scale,
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    if a.results_dir:
        cmd += ["--results-dir", a.results_dir]
    return subprocess.call(cmd)


def make_executor(name: str, ray_address: str | None):
    """The executor a command asked for: ``local`` (in process, no Ray import) or ``ray`` (started here)."""
    if name == "local":
        if ray_address:
            raise ValueError("--ray-address goes with --executor ray")
        return None
    from .repro.ray_executor import RayExecutor

    executor = RayExecutor(address=ray_address)
    executor.start()  # an unreachable cluster is one line now, before any work
    return executor


def add_executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run the work units in this process (default) or as Ray tasks (pip install 'flatenn[ray]')",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join: 'auto' (this machine's cluster) or host:port (default: start a local Ray instance)",
    )


def cmd_record(a) -> int:
    """Re-record a scale's tracked results from retrained models, then its reference values and report."""
    from .core.zoo import Zoo
    from .repro.experiment import Experiment
    from .repro.report import build_report
    from .repro.scales import get_scale
    from .repro.verify import record_bands

    check_device(a.device)
    root = Path(a.results_dir)
    executor = make_executor(a.executor, a.ray_address)
    exp = Experiment(
        get_scale(a.scale),
        root / a.scale,
        zoo=Zoo(a.cache_dir, device=a.device, progress=not a.quiet),
        device=a.device,
        progress=not a.quiet,
        retrain=True,
        command="python -m flatenn " + " ".join(sys.argv[1:]),
        executor=executor,
    )
    exp.ensure_all()
    exp.computed = True
    exp.finish()
    print(f"reference values written to {record_bands(root / a.scale, a.scale)}")
    for p in build_report(root):
        print(p)
    return 0


def cmd_report(a) -> int:
    from .repro.report import build_report

    for p in build_report(check_results_dir(a.results_dir, must_exist=True)):
        print(p)
    return 0


DEFAULT_REMEASURE = 3  # models per folder whose sharpness rows verify re-measures by default


def cmd_verify(a) -> int:
    import secrets

    from .repro.verify import verify_all

    root = check_results_dir(a.results_dir, must_exist=True)
    if a.no_remeasure and (a.remeasure != DEFAULT_REMEASURE or a.remeasure_seed is not None):
        raise ValueError("--no-remeasure re-measures nothing: drop --remeasure and --remeasure-seed")
    seed = secrets.randbits(32) if a.remeasure_seed is None else a.remeasure_seed
    notes: list[str] = []
    problems = verify_all(
        root,
        remeasure=0 if a.no_remeasure else a.remeasure,
        notes=notes,
        measured_tables=not a.no_remeasure,
        sample_seed=seed,
    )
    for p in problems:
        print(p)
    for n in notes:
        print(n)
    scales = sorted(d.name for d in root.iterdir() if (d / "claims.csv").is_file())
    print(
        f"checked {len(scales)} folder(s) ({', '.join(scales)}): every derived table re-derived from the raw "
        "tables, every shipped model (checksums, key, fingerprint, record) against training.csv and provenance, "
        "faulty bits and changed weights of every campaign row from the fault sampler, completeness of every "
        "table against the scale's plan, checksums and run records in provenance.json, recorded verdicts"
        + (
            ""
            if a.no_remeasure
            else "; re-measured from the shipped models where the data set is here: every landscape and sparsity "
            f"row, and every sharpness row of {a.remeasure} model(s) per folder (seed {seed})"
        )
    )
    print("verify: OK" if not problems else f"verify: {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_power(a) -> int:
    """Seeds needed per primary claim for the requested power at its SESOI (from the recorded seed SDs)."""
    from .core.results import read_results
    from .repro.power import power_table
    from .repro.scales import get_scale

    scale = get_scale(a.scale)
    folder = check_results_dir(str(Path(a.results_dir) / a.scale), must_exist=True)
    table = power_table(read_results(folder), scale, a.power)
    if not len(table):
        raise ValueError(f"{folder}: no primary claim is recorded there (campaign.csv missing?)")
    print(
        f"{a.scale}: seeds for {a.power:.0%} power at each primary case's SESOI (two-sided one-sample t over "
        f"seeds, Holm's first-step level of the family), from the recorded seed-level SDs:"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="> 10000"))
    return 0


def cmd_verdicts(a) -> int:
    """A scale's verdicts re-derived from its raw tables under analysis plan v1 or v2."""
    from .core.results import read_results
    from .repro.scales import get_scale

    scale = get_scale(a.scale)
    folder = check_results_dir(str(Path(a.results_dir) / a.scale), must_exist=True)
    tables = read_results(folder)
    if not len(tables["campaign"]):
        raise ValueError(f"{folder}: no campaign.csv recorded there")
    pd_opts = {"index": False, "float_format": lambda v: f"{v:.3g}"}
    if a.plan == "v1":
        from .repro.claims import evaluate_all

        cols = ["case", "effect", "ci_low", "ci_high", "n", "p_holm", "verdict", "magnitude"]
        print(f"{a.scale}, plan v1 (flatenn/repro/plans/v1.md): the first {len(scale.seeds)} seeds")
        print(evaluate_all(tables, scale)[0][cols].to_string(**pd_opts))
        return 0
    from .repro.decide import PLAN, evaluate_v2

    if scale.name not in PLAN.scales:
        raise ValueError(f"plan v2 declares no looks for scale {a.scale}; plan v2 scales: {sorted(PLAN.scales)}")
    v, _ = evaluate_v2(tables, scale)
    cols = ["family", "case", "n", "effect", "ci_low", "ci_high", "p_value", "p_signflip", "p_nominal", "verdict"]
    print(f"{a.scale}, plan v2 (flatenn/repro/plans/v2.toml)")
    print(v[cols].to_string(**pd_opts))
    return 0


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
    from .faults.sampling import FAULT_MODELS

    ap = _Parser(prog="python -m flatenn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train (or load from the cache) one model and print its record")
    t.add_argument("--model-spec", help="SCALE:VARIANT:SEED instead of the options below (e.g. smoke:sparse-saq:0)")
    _train_options(t)
    t.add_argument("--json", action="store_true", help="print the whole record as JSON")
    _add_common(t)

    c = sub.add_parser("campaign", help="run a seeded fault campaign on one model")
    c.add_argument(
        "--model",
        required=True,
        help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or "
        "package.module:factory (your own model: quantized and calibrated on --data)",
    )
    c.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--rates", type=_rates, help="bit error rates, e.g. 1e-3,1e-2")
    g.add_argument("--counts", type=_counts, help="exact numbers of faulty bits, e.g. 1,10,100")
    c.add_argument("--trials", type=_at_least(1, MAX_TRIALS), default=50, help="fault maps per point (default 50)")
    c.add_argument("--seed", type=_at_least(0), default=0, help="campaign seed (same seed = same maps for every model)")
    c.add_argument("--bits", type=_bits, default=None, help="only these bit positions, e.g. 7 or 0-3 (default all)")
    c.add_argument("--layers", type=_regex, default=None, help="regex: only layers whose name matches")
    c.add_argument("--eval-examples", type=_at_least(1), default=None, help="evaluate on the first N test examples")
    c.add_argument(
        "--batch-size", type=_at_least(1), default=512, help="evaluation batch size (pin it: results depend on it)"
    )
    c.add_argument("--model-id", default=None, help="id written in the rows (default: the zoo key)")
    c.add_argument(
        "--protection",
        choices=("none", "sign-bit", "secded", "ranger", "ft-clipact"),
        default="none",
        help="inference-time protection (ranger, ft-clipact: built from training images; default none)",
    )
    _add_foreign(c)
    c.add_argument(
        "--out",
        default=None,
        help="table to write: CSV, or Parquet for a .parquet name; rows already there are not recomputed (resume)",
    )
    _add_common(c)

    v = sub.add_parser("vulnerability", help="accuracy drop per (layer, bit position): which bits to protect")
    v.add_argument(
        "--model",
        required=True,
        help="SCALE:VARIANT:SEED, zoo key, config JSON, torchvision:NAME or package.module:factory",
    )
    v.add_argument("--fault", required=True, choices=FAULT_MODELS, help="fault model")
    v.add_argument("--rate", type=_one_rate, default=1e-2, help="one bit error rate per eligible bit (default 1e-2)")
    v.add_argument(
        "--trials", type=_at_least(2, MAX_TRIALS), default=20, help="fault maps per (layer, bit) (default 20)"
    )
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
    s.add_argument(
        "--metrics",
        type=lambda t: t.split(","),
        default=["lambda_max_fn", "trace_fn", "avg_sharpness"],
        help=f"comma list from {','.join(METRICS)}",
    )
    s.add_argument(
        "--examples",
        type=_at_least(2),
        default=512,
        help="training examples used, at most the training set (default 512)",
    )
    s.add_argument("--probes", type=_at_least(2, MAX_PROBES), default=20, help="Hutchinson probes (default 20)")
    s.add_argument(
        "--directions", type=_at_least(2, MAX_PROBES), default=20, help="directions for average sharpness (default 20)"
    )
    s.add_argument("--sigma", type=_positive_float, default=0.05, help="relative perturbation size (default 0.05)")
    s.add_argument("--seed", type=_at_least(0), default=0)
    s.add_argument("--model-id", default=None)
    s.add_argument("--batch-size", type=_at_least(1), default=512, help="batch size (calibration of own models)")
    _add_foreign(s)
    s.add_argument("--out", default=None, help="CSV for the metric rows")
    _add_common(s)

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
    _add_common(rec)

    for name, helptext in (
        ("report", "draw figures and results/README.md from the CSVs"),
        ("verify", "check tracked CSVs, shipped models and provenance (no retraining)"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--results-dir", default=str(ROOT / "results"))
    q.add_argument(
        "--remeasure",
        type=_remeasure_count,
        default=DEFAULT_REMEASURE,
        help="re-measure every sharpness row of N models per folder from the shipped models, drawn at random "
        f"('all' for every model; default {DEFAULT_REMEASURE}); every landscape and sparsity row is re-measured "
        "too. Needs each folder's data set (a folder without it is re-derived only, and says so)",
    )
    q.add_argument(
        "--remeasure-seed",
        type=_at_least(0, 2**32 - 1),
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
    pw.add_argument("--power", type=_fraction, default=0.8, help="target power, in (0, 1) (default 0.8)")

    vd = sub.add_parser("verdicts", help="a recorded scale's verdicts under analysis plan v1 or v2 (from the CSVs)")
    vd.add_argument("--scale", required=True, help="a recorded scale (smoke, cpu)")
    vd.add_argument("--results-dir", default=str(ROOT / "results"))
    vd.add_argument("--plan", choices=("v1", "v2"), default="v2", help="analysis plan (default v2)")

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
    handlers = {
        "vulnerability": cmd_vulnerability,
        "record": cmd_record,
        "train": cmd_train,
        "campaign": cmd_campaign,
        "sharpness": cmd_sharpness,
        "report": cmd_report,
        "verify": cmd_verify,
        "bands": cmd_bands,
        "power": cmd_power,
        "verdicts": cmd_verdicts,
        "compare": cmd_compare,
    }
    try:
        if a.command == "reproduce":
            return cmd_reproduce(a, extra)
        return handlers[a.command](a)
    except RuntimeError as e:
        from .core.locks import FolderBusyError
        from .repro.ray_executor import UnitsFailedError

        if not isinstance(e, (FolderBusyError, UnitsFailedError)):
            raise
        print(f"python -m flatenn {a.command}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, TypeError, PermissionError) as e:
        msg = str(e).strip("'\"") or type(e).__name__
        print(f"python -m flatenn {a.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.ENOSPC:
            where = f" writing {e.filename}" if e.filename else ""
            print(
                f"python -m flatenn {a.command}: error: the disk is full{where}; finished work is kept (files are "
                "written whole or not at all): free space and run the same command to resume",
                file=sys.stderr,
            )
            return 28
        raise
    except KeyboardInterrupt:
        print(
            f"python -m flatenn {a.command}: interrupted; finished work is kept, run the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
