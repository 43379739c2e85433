"""Campaign throughput against two baselines measured in the same run (prints ratios, asserts nothing).

(a) campaign trials/s (sample + write faults + evaluate + restore), (b) the clean-forward limit
(one forward over the same evaluation set, no faults), (c) a pytorchfi-style baseline (deep copy +
Python-loop writes per trial). Also the sampling + application time per trial of an 11M-weight
int8 model (ResNet-18, width 64) at rate 1e-5, without the forward.

    python benchmarks/campaign_speed.py [--repeats N]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=40)
    a = ap.parse_args()
    torch.set_num_threads(2)
    x, _ = eval_set(1, 8, 360)
    bench_model("digits CNN (width 8)", calibrated("cnn_digits", 8, 1, 8), x, [1e-4, 1e-3], a.repeats)
    x, _ = eval_set(3, 32, 256)
    bench_model("ResNet-20 (width 16)", calibrated("resnet20", 16, 3, 32), x, [1e-4, 1e-3], max(5, a.repeats // 4))
    bench_sampling_11m(a.repeats)


if __name__ == "__main__":
    main()
