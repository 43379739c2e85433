"""``campaign``, ``vulnerability`` and ``sharpness``: measurements of one model."""

from __future__ import annotations

from pathlib import Path

from .models import check_bits_option, check_eval_examples, check_out, is_foreign, load_model, resolve_config


def campaign_protection(a, model, data):
    """``--protection`` as run_campaign takes it; Ranger and FT-ClipAct are fitted on the training images (never
    the test images; FT-ClipAct under bit flips at the campaign's rates > 0, on maps the campaign does not use)."""
    from ..faults.protection_builder import build_protection

    rates = [r for r in a.rates or [] if r > 0]
    return build_protection(a.protection, model, data.x_train, data.y_train, campaign_seed=a.seed, rates=rates)


def check_protection_option(a) -> None:
    """Refuse ``--protection`` combinations a campaign cannot run, before any model is loaded."""
    if a.protection == "ft-clipact" and not any(r > 0 for r in a.rates or []):
        raise ValueError("--protection ft-clipact chooses its thresholds at the campaign's --rates: give a rate > 0")
    if a.protection == "sign-bit" and a.bits is not None:
        raise ValueError("--protection sign-bit sets the bit positions itself (bits 0..b-2): drop --bits")


def cmd_campaign(a) -> int:
    from ..analysis.stats import summarize_campaign
    from ..faults.campaign import campaign_points, run_campaign

    check_out(a.out, "campaign")
    campaign_points(a.rates, a.counts)  # repeated points are refused before any model is loaded
    check_protection_option(a)
    if is_foreign(a.model):
        check_bits_option(a, None)
    model, data, cfg = load_model(a)
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
        protection=campaign_protection(a, model, data),
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

    from ..core.quant import quantized_layers
    from ..core.results import write_table
    from ..faults.vulnerability import COLUMNS, plot_vulnerability, vulnerability_map

    check_out(a.out)
    if is_foreign(a.model):
        check_bits_option(a, None)
    model, data, cfg = load_model(a)
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
    from ..analysis.sharpness import measure
    from ..core.results import write_table

    check_out(a.out)
    check_sharpness_examples(a)
    model, data, cfg = load_model(a)
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
    from ..core.data import load_dataset

    if is_foreign(a.model):
        if not a.data:
            return  # load_own_model says that --data is needed
        name, sub = a.data, None
    else:
        cfg = resolve_config(a.model, a.cache_dir)
        name, sub = cfg.dataset, cfg.train_subset
    n = sub or len(load_dataset(name).x_train)
    if a.examples > n:
        raise ValueError(f"--examples {a.examples}: the training split of {name} has only {n} examples")
