"""GPU campaign check: throughput against a clean forward, fault maps and accuracies against the CPU, determinism.

For each model (ResNet-20 width 16 and torchvision ResNet-18, both quantized by flatenn; ``--tiny``: the digits
CNN only, for CI on a CPU) the same calibrated model is placed on the CPU and on ``--device``, and:

1. **maps**: for a few (rate, trial) pairs the device model's weight memory after ``apply`` equals the CPU
   model's, code for code (maps are sampled on the CPU from counter-based streams, so the device must not
   change a single position);
2. **accuracy**: a short campaign on both devices; the largest accuracy and loss differences are printed and
   must be within float tolerance (accuracy within ``--acc-tol`` points, loss within ``--loss-tol``);
3. **determinism**: the device campaign run twice gives identical rows;
4. **throughput**: campaign trials per second on the device against clean forwards per second (a trial costs
   ``ratio`` clean forwards; synchronized timings).

    python benchmarks/gpu_check.py [--device cuda] [--tiny] [--out results/speed/gpu]

Exits non-zero when a check fails. Runs in well under 8 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_setup import calibrated, eval_set  # noqa: E402

from flatenn.core.evaluate import as_batches, eval_mode, score_batches  # noqa: E402
from flatenn.core.quant import frozen  # noqa: E402
from flatenn.faults.campaign import run_campaign  # noqa: E402
from flatenn.faults.injector import FaultInjector  # noqa: E402

RATES = [1e-4, 1e-3, 1e-2]
MEASURED = ["accuracy", "loss", "clean_accuracy", "clean_loss"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def same_maps(cpu_model, dev_model, rates, trials: int) -> bool:
    """The device's weight memory after each trial's faults equals the CPU's, code for code and value for value."""
    with frozen(cpu_model), frozen(dev_model):
        ci, di = FaultInjector(cpu_model), FaultInjector(dev_model)
        for r in rates:
            for t in range(trials):
                with ci.applied(ci.sample(0, t, rate=r), "bitflip"), di.applied(di.sample(0, t, rate=r), "bitflip"):
                    for name, layer in ci.layers.items():
                        other = di.layers[name]
                        if not (
                            torch.equal(layer.codes, other.codes.cpu())
                            and torch.equal(layer.frozen_weight, other.frozen_weight.cpu())
                        ):
                            return False
    return True


def campaign(model, x, y, trials: int) -> pd.DataFrame:
    return run_campaign(model, x, y, "bitflip", rates=RATES, trials=trials, seed=0, progress=False, batch_size=256)


def throughput(model, x, y, device: torch.device, trials: int) -> tuple[float, float]:
    """(clean forwards per second, campaign trials per second) on ``device``, synchronized."""
    batches = as_batches(x, y, 256, device)
    with eval_mode(model), frozen(model):
        score_batches(model, batches)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(trials):
            score_batches(model, batches)
        _sync(device)
        clean = trials / (time.perf_counter() - t0)
    campaign(model, x, y, 2)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    run_campaign(model, x, y, "bitflip", rates=[1e-3], trials=trials, seed=1, progress=False, batch_size=256)
    _sync(device)
    return clean, trials / (time.perf_counter() - t0)


def check_model(label: str, cpu_model, x, y, device: torch.device, args) -> dict:
    dev_model = copy.deepcopy(cpu_model).to(device)
    maps_ok = same_maps(cpu_model, dev_model, RATES, 3)
    on_cpu = campaign(cpu_model, x, y, args.trials)
    first, second = campaign(dev_model, x, y, args.trials), campaign(dev_model, x, y, args.trials)
    deterministic = first[MEASURED].equals(second[MEASURED])
    d_acc = float(np.max(np.abs(first["accuracy"].to_numpy() - on_cpu["accuracy"].to_numpy())))
    d_loss = float(np.max(np.abs(first["loss"].to_numpy() - on_cpu["loss"].to_numpy())))
    same_bits = first["faulty_bits"].equals(on_cpu["faulty_bits"]) and first["changed_weights"].equals(
        on_cpu["changed_weights"]
    )
    clean, trials_per_s = throughput(dev_model, x, y, device, args.speed_trials)
    result = {
        "model": label,
        "device": str(device),
        "images": len(x),
        "maps_identical": bool(maps_ok and same_bits),
        "deterministic": bool(deterministic),
        "max_abs_accuracy_diff_points": d_acc,
        "max_abs_loss_diff": d_loss,
        "accuracy_within_tolerance": bool(d_acc <= args.acc_tol and d_loss <= args.loss_tol),
        "clean_forwards_per_s": round(clean, 2),
        "campaign_trials_per_s": round(trials_per_s, 2),
        "trial_cost_in_clean_forwards": round(clean / trials_per_s, 3),
    }
    print(
        f"{label} on {device}, {len(x)} images: maps identical to the CPU's: {result['maps_identical']}; "
        f"deterministic: {deterministic}; vs CPU: max |d accuracy| {d_acc:.3f} points, max |d loss| {d_loss:.2e}; "
        f"{clean:.1f} clean forwards/s, {trials_per_s:.1f} campaign trials/s "
        f"(a trial costs {clean / trials_per_s:.2f} clean forwards)"
    )
    return result


def models(tiny: bool):
    if tiny:
        x, y = eval_set(1, 8, 120)
        return [("digits CNN width 8", calibrated("cnn_digits", 8, 1, 8), x, y)]
    from speed_report import torchvision_resnet18

    x, y = eval_set(3, 32, 256)
    return [
        ("ResNet-20 width 16", calibrated("resnet20", 16, 3, 32), x, y),
        ("torchvision ResNet-18", torchvision_resnet18(), x, y),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="the digits CNN only (a CPU check of this script)")
    ap.add_argument("--trials", type=int, default=5, help="trials per rate of the CPU-vs-device campaigns")
    ap.add_argument("--speed-trials", type=int, default=50, help="trials timed for throughput")
    ap.add_argument("--acc-tol", type=float, default=1.0, help="accuracy tolerance, points (float-order effects)")
    ap.add_argument("--loss-tol", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=None, help="write DIR/gpu_check.json with provenance")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu (CI) or on a GPU machine", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    results = [check_model(label, m, x, y, device, a) for label, m, x, y in models(a.tiny)]
    torch.set_num_threads(threads)
    ok = all(r["maps_identical"] and r["deterministic"] and r["accuracy_within_tolerance"] for r in results)
    if a.out is not None:
        from flatenn.repro.experiment import git_state

        a.out.mkdir(parents=True, exist_ok=True)
        prov = {
            "command": " ".join(["python", *sys.argv]),
            "git": git_state(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "versions": {"torch": torch.__version__, "numpy": np.__version__},
            "results": results,
            "all_checks_passed": ok,
        }
        (a.out / "gpu_check.json").write_text(json.dumps(prov, indent=1) + "\n")
    print("all checks passed" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
