"""``train``: one model through the zoo cache, its options generated from :class:`flatenn.core.train.TrainConfig`."""

from __future__ import annotations

import argparse
import json

from .models import check_device, resolve_config
from .options import MAX_EPOCHS, MAX_SEED, MAX_WIDTH, nonneg_float, positive_float, whole_number

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


def add_train_options(t: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field (types, choices and defaults from the dataclass; default None = unset)."""
    import dataclasses

    from ..core.activations import ACTIVATIONS
    from ..core.data import DATASETS
    from ..core.methods import METHODS
    from ..core.models import MODELS
    from ..core.train import TrainConfig

    choices = {
        "dataset": sorted(DATASETS),
        "model": sorted(MODELS),
        "activation": ACTIVATIONS,
        "optimizer": sorted(METHODS),
    }
    parse = {
        "width": whole_number(1, MAX_WIDTH),
        "w_bits": whole_number(2, 16),
        "a_bits": whole_number(2, 16),
        "epochs": whole_number(1, MAX_EPOCHS),
        "batch_size": whole_number(1),
        "seed": whole_number(0, MAX_SEED),
        "train_subset": whole_number(1),
        "test_subset": whole_number(1),
        "lr": positive_float,
        "w_max": positive_float,
        "p_train": positive_float,
    }
    for f in dataclasses.fields(TrainConfig):
        if f.name in TRAIN_HELP:
            kind = parse.get(f.name, nonneg_float if "float" in str(f.type) else str)
            t.add_argument(
                "--" + f.name.replace("_", "-"),
                type=kind,
                default=None,
                choices=choices.get(f.name),
                help=TRAIN_HELP[f.name],
            )
    t.add_argument("--float-first-last", action="store_true", help="keep the first and the last layer in float")


def cmd_train(a) -> int:
    from ..core.train import TrainConfig
    from ..core.zoo import Zoo

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
    from ..core.methods import METHODS, get_method

    method = get_method(given.get("optimizer", "sgd"))
    known = {f for m in METHODS.values() for f in m.hyper_parameters}
    stray = [f for f in given if f in known and f not in method.hyper_parameters]
    if stray:
        opts = ", ".join("--" + f.replace("_", "-") for f in stray)
        reads = ", ".join("--" + f.replace("_", "-") for f in method.hyper_parameters) or "no hyper-parameter"
        raise ValueError(f"{opts}: training method {method.name!r} does not read it (it reads {reads}); drop {opts}")
