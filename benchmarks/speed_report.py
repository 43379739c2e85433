"""Speed ratios measured against baselines in the same run (prints them, asserts nothing).

SAQ: seconds per training epoch of SAQ relative to SGD (same model, data, seed), interleaved.

Campaigns: throughput against two baselines.
(a) campaign trials/s (sample + write faults + evaluate + restore), (b) the clean-forward limit
(one forward over the same evaluation set, no faults), (c) a pytorchfi-style baseline (deep copy +
Python-loop writes per trial). Also the sampling + application time per trial of an 11M-weight
int8 model (ResNet-18, width 64) at rate 1e-5, without the forward.

    python benchmarks/speed_report.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_setup import baseline_trial, calibrated, eval_set, forward_all  # noqa: E402

from flatenn.injector import FaultInjector  # noqa: E402
from flatenn.quant import frozen, quantized_layers  # noqa: E402


def rate_per_s(fn, n: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def bench_model(label, model, x, rates, n) -> None:
    with frozen(model):
        inj = FaultInjector(model)
        clean = rate_per_s(lambda i=0: forward_all(model, x), n)
        print(f"\n{label}: {sum(m.weight.numel() for m in quantized_layers(model).values()):,} weights, "
              f"{len(x)} eval images; clean-forward limit {clean:.1f}/s")
        for rate in rates:
            def trial(i=0, rate=rate):
                with inj.applied(inj.sample(0, i, rate=rate), "bitflip"):
                    forward_all(model, x)

            camp = rate_per_s(trial, n)
            print(f"  rate {rate:.0e}: campaign {camp:.1f} trials/s = {camp / clean:.2f}x the clean-forward limit")
    base = rate_per_s(lambda i=0: baseline_trial(model, x, rates[-1], 0, i), max(3, n // 4))
    print(f"  pytorchfi-style baseline at rate {rates[-1]:.0e}: {base:.1f} trials/s "
          f"(campaign/baseline = {camp / base:.1f}x)")


def bench_sampling_11m(n: int) -> None:
    model = calibrated("resnet18", 64, 3, 32)
    with frozen(model):
        inj = FaultInjector(model)
        weights = sum(m.codes.numel() for m in inj.layers.values())

        def step(i=0):
            with inj.applied(inj.sample(0, i, rate=1e-5), "bitflip"):
                pass

        per = 1000.0 / rate_per_s(step, n)
    print(f"\nResNet-18: {weights:,} int8 weights; fault sampling + application + restore at 1e-5: {per:.2f} ms/trial")


def bench_saq_cost(epochs: int = 3) -> None:
    from flatenn.data import load_digits
    from flatenn.train import TrainConfig, fit

    data = load_digits()
    times = {"sgd": [], "saq": []}
    for _ in range(epochs):  # interleaved, so drifting machine load hits both alike
        for opt in times:
            _, rec = fit(TrainConfig(width=8, epochs=1, optimizer=opt), data, progress=False)
            times[opt].append(rec.seconds_per_epoch)
    sgd, saq = min(times["sgd"]), min(times["saq"])
    print(f"\nSAQ cost (digits CNN width 8, 1437 images/epoch): SGD {sgd:.3f} s/epoch, SAQ {saq:.3f} s/epoch, "
          f"ratio {saq / sgd:.2f}x (best of {epochs})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=40)
    a = ap.parse_args()
    torch.set_num_threads(2)
    bench_saq_cost()
    x, _ = eval_set(1, 8, 360)
    bench_model("digits CNN (width 8)", calibrated("cnn_digits", 8, 1, 8), x, [1e-4, 1e-3], a.repeats)
    x, _ = eval_set(3, 32, 256)
    bench_model("ResNet-20 (width 16)", calibrated("resnet20", 16, 3, 32), x, [1e-4, 1e-3], max(5, a.repeats // 4))
    bench_sampling_11m(a.repeats)


if __name__ == "__main__":
    main()
