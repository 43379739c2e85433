"""Which model a command works on: a scale's model (``SCALE:VARIANT:SEED``), a zoo key, a training config file, or
your own model (``torchvision:NAME``, ``package.module:factory``), and the checks of its options and output paths
that come before any model is loaded or trained."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from .options import MAX_SEED, whole_number


def resolve_config(spec: str, cache_dir: str | None = None):
    """A TrainConfig from ``SCALE:VARIANT:SEED``, a zoo key, or a JSON config file."""
    from ..core.train import TrainConfig
    from ..core.zoo import default_cache_dir
    from ..repro.scales import get_scale

    if spec.count(":") == 2:
        scale, variant, seed = spec.split(":")
        if not seed.isdigit() or int(seed) > MAX_SEED:
            raise ValueError(f"--model {spec!r}: the training seed must be a whole number in 0..{MAX_SEED}, got {seed}")
        return get_scale(scale).train_config(variant, int(seed))
    if names_a_scale(spec):
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
        from ..core.zoo import CorruptEntryError, entry_record

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


def add_own_model_options(p: argparse.ArgumentParser) -> None:
    """Options for a model flatenn did not build (torchvision:NAME or package.module:factory)."""
    from ..core.data import DATASETS

    p.add_argument("--weights", default=None, help="state dict (.pt) for an own model (default: its initial weights)")
    p.add_argument(
        "--data", default=None, choices=sorted(DATASETS), help="data set an own model is calibrated and evaluated on"
    )
    p.add_argument("--w-bits", type=whole_number(2, 16), default=None, help="own model: weight bits (default 8)")
    p.add_argument(
        "--a-bits", type=whole_number(2, 16), default=None, help="own model: input-activation bits (default 8)"
    )
    p.add_argument(
        "--calibration-batches", type=whole_number(1), default=None, help="own model: calibration batches (default 4)"
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
        from ..core.results import SCHEMAS, is_columnar

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


def names_a_scale(spec: str) -> bool:
    from ..repro.scales import SCALES

    return spec.split(":")[0] in SCALES


def is_foreign(spec: str) -> bool:
    """``torchvision:NAME`` or ``package.module:factory`` (one colon), not ``SCALE:VARIANT:SEED`` (nor that spec
    with its seed missing)."""
    return spec.count(":") == 1 and not names_a_scale(spec)


def load_own_model(a):
    """A model flatenn did not build: load, quantize, calibrate on ``--data``'s training split."""
    import torch

    from ..core.convert import load_named_model, quantize_model
    from ..core.data import load_dataset
    from ..core.determinism import resolve_device
    from ..core.quant import calibrate_activations

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


def load_model(a):
    """(model, data, config) for the ``--model`` spec of a command, trained through the zoo if needed."""
    from ..core.zoo import Zoo

    check_device(a.device)
    check_foreign_options(a)
    if is_foreign(a.model):
        return load_own_model(a)
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
