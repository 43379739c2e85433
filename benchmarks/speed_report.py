"""Speed ratios measured against baselines in the same run, interleaved (prints them, asserts nothing).

Every ratio compares operations measured round-robin in one loop (so drifting machine load hits all
alike), wall time and CPU time (process_time) side by side, medians over repeats.

1. SAQ epoch cost relative to SGD.
2. Per-trial campaign overhead (sample + write + restore, no forward) for the digits CNN, ResNet-20 and
   an 11M-weight ResNet-18 at rates 1e-5 … 1e-2, split into a per-layer and a per-faulty-bit term
   (least squares over the rates).
3. Campaign trials against the clean-forward limit (digits CNN, ResNet-20), and the pytorchfi-style
   baseline (deep copy + Python write loop per trial).
4. A per-layer vulnerability map of ResNet-20 with prefix reuse against the same map with full
   forwards and against the clean-forward limit (L layers x T trials clean forwards).
5. Adaptive trial counts on a shipped smoke model: trials needed for the CI half-width of the fixed design.

    python benchmarks/speed_report.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_setup import baseline_trial, calibrated, eval_set, forward_all  # noqa: E402

from flatenn.evaluate import as_batches, evaluate_batches  # noqa: E402
from flatenn.injector import FaultInjector  # noqa: E402
from flatenn.prefix import SuffixEvaluator  # noqa: E402
from flatenn.quant import frozen, quantized_layers  # noqa: E402


def interleaved(ops: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall s, CPU s) per call of each op, measured round-robin."""
    for f in ops.values():
        f(0)  # warm-up
    wall = {k: [] for k in ops}
    cpu = {k: [] for k in ops}
    for i in range(repeats):
        for k, f in ops.items():
            w, c = time.perf_counter(), time.process_time()
            f(i + 1)
            wall[k].append(time.perf_counter() - w)
            cpu[k].append(time.process_time() - c)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in ops}


def overhead(label: str, model, rates, repeats: int) -> None:
    with frozen(model):
        inj = FaultInjector(model)
        n_layers = len(inj.layers)

        def op(rate):
            return lambda i: inj.restore() if inj.apply(inj.sample(0, i, rate=rate), "bitflip") else None

        t = interleaved({r: op(r) for r in rates}, repeats)
        bits = [inj.total_bits * r for r in rates]
    ms = [1000 * t[r][0] for r in rates]
    slope, intercept = np.polyfit(bits, ms, 1)
    print(f"\n{label}: {n_layers} layers, {inj.total_bits // 8:,} weights; per-trial overhead (sample + write + "
          "restore, no forward), median wall / CPU ms:")
    for r, b in zip(rates, bits, strict=True):
        print(f"  rate {r:.0e} (~{b:,.0f} faulty bits): {1000 * t[r][0]:.3f} / {1000 * t[r][1]:.3f} ms")
    print(f"  fit: {1000 * intercept / n_layers:.1f} us per layer + {1000 * slope:.3f} us per faulty bit")


def campaign_vs_forward(label: str, model, x, rates, repeats: int) -> None:
    with frozen(model):
        inj = FaultInjector(model)

        def trial(rate):
            def run(i):
                with inj.applied(inj.sample(0, i, rate=rate), "bitflip"):
                    forward_all(model, x)
            return run

        ops = {"clean": lambda i: forward_all(model, x), **{r: trial(r) for r in rates}}
        ops["pytorchfi-style"] = lambda i: baseline_trial(model, x, rates[-1], 0, i)
        t = interleaved(ops, repeats)
    c = t["clean"]
    print(f"\n{label}, {len(x)} images: clean forward {1000 * c[0]:.1f} ms wall / {1000 * c[1]:.1f} ms CPU")
    for r in rates:
        print(f"  campaign trial at {r:.0e}: {t[r][0] / c[0]:.2f}x wall, {t[r][1] / c[1]:.2f}x CPU of the clean forward")
    b = t["pytorchfi-style"]
    print(f"  pytorchfi-style trial at {rates[-1]:.0e}: {b[0] / c[0]:.2f}x wall, {b[1] / c[1]:.2f}x CPU "
          f"(flatenn is {b[0] / t[rates[-1]][0]:.1f}x faster)")


def vulnerability_speedup(trials: int) -> None:
    model = calibrated("resnet20", 16, 3, 32)
    x, y = eval_set(3, 32, 256)
    batches = as_batches(x, y, 256, torch.device("cpu"))
    with frozen(model):
        names = list(quantized_layers(model))
        t0 = time.perf_counter()
        for _ in range(3):
            evaluate_batches(model, batches)
        clean = (time.perf_counter() - t0) / 3
        times = {"prefix reuse": 0.0, "full forward": 0.0}
        for name in names:  # interleaved per layer
            inj = FaultInjector(model, lambda n, name=name: n == name)
            t0 = time.perf_counter()
            ev = SuffixEvaluator(model, batches, {name})
            for t in range(trials):
                with inj.applied(inj.sample(0, t, rate=1e-2, bit_positions=[7]), "bitflip"):
                    ev.evaluate()
            times["prefix reuse"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for t in range(trials):
                with inj.applied(inj.sample(0, t, rate=1e-2, bit_positions=[7]), "bitflip"):
                    evaluate_batches(model, batches)
            times["full forward"] += time.perf_counter() - t0
    limit = clean * len(names) * trials
    print(f"\nVulnerability map, ResNet-20 width 16, {len(names)} layers x {trials} trials, 256 images: "
          f"prefix reuse {times['prefix reuse']:.2f} s, full forwards {times['full forward']:.2f} s, "
          f"clean-forward limit {limit:.2f} s -> {limit / times['prefix reuse']:.2f}x faster than the limit "
          f"({times['full forward'] / times['prefix reuse']:.2f}x faster than full forwards)")


def adaptive_savings() -> None:
    from flatenn.campaign import run_campaign
    from flatenn.experiment import Experiment
    from flatenn.scales import SCALES
    from flatenn.stats import mean_ci

    root = Path(__file__).resolve().parent.parent
    with Experiment(SCALES["smoke"], Path("/tmp") / "flatenn-speed-adaptive", progress=False,
                    reference_dir=root / "results" / "smoke") as exp:  # fmt: skip
        model, _ = exp.model("standard-sgd", 0)
        x, y = exp.eval_set()
    rates = SCALES["smoke"].rates
    fixed = run_campaign(model, x, y, "bitflip", rates=rates, trials=50, seed=0, progress=False)
    half = {r: (lambda c: (c[3] - c[2]) / 2)(mean_ci(g["accuracy"])) for r, g in fixed.groupby("rate")}
    target = float(np.median(list(half.values())))
    adaptive = run_campaign(model, x, y, "bitflip", rates=rates, trials=50, seed=0, progress=False,
                            target_halfwidth=target, min_trials=10)  # fmt: skip
    got = {r: (lambda c: (c[3] - c[2]) / 2)(mean_ci(g["accuracy"])) for r, g in adaptive.groupby("rate")}
    print(f"\nAdaptive trials, smoke standard-sgd-s0 (shipped), bitflip at {len(rates)} rates: target half-width "
          f"{target:.2f} points (median of the fixed 50-trial design): {len(adaptive)} trials instead of "
          f"{len(fixed)} ({100 * (1 - len(adaptive) / len(fixed)):.0f}% saved); per rate trials / half-width: "
          + ", ".join(f"{r:g}: {int((adaptive['rate'] == r).sum())} / {got[r]:.2f}" for r in rates))


def bench_saq_cost(repeats: int = 3) -> None:
    from flatenn.data import load_digits
    from flatenn.train import TrainConfig, fit

    data = load_digits()
    times = {"sgd": [], "saq": []}
    for _ in range(repeats):  # interleaved
        for opt in times:
            _, rec = fit(TrainConfig(width=8, epochs=1, optimizer=opt), data, progress=False)
            times[opt].append(rec.seconds_per_epoch)
    sgd, saq = statistics.median(times["sgd"]), statistics.median(times["saq"])
    print(f"SAQ cost (digits CNN width 8): SGD {sgd:.3f} s/epoch, SAQ {saq:.3f} s/epoch, ratio {saq / sgd:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("pytorchfi itself is not run: it writes float weights, and flatenn's frozen int8 codes are not float "
          "parameters; the pytorchfi-style baseline reproduces its per-trial deep copy and Python write loop.")
    bench_saq_cost()
    rates = [1e-5, 1e-4, 1e-3, 1e-2]
    overhead("digits CNN width 8", calibrated("cnn_digits", 8, 1, 8), rates, a.repeats)
    overhead("ResNet-20 width 16", calibrated("resnet20", 16, 3, 32), rates, a.repeats)
    overhead("ResNet-18 width 64", calibrated("resnet18", 64, 3, 32), rates[:3], max(5, a.repeats // 2))
    campaign_vs_forward("digits CNN width 8", calibrated("cnn_digits", 8, 1, 8), eval_set(1, 8, 360)[0],
                        [1e-4, 1e-3, 1e-2], a.repeats)  # fmt: skip
    campaign_vs_forward("ResNet-20 width 16", calibrated("resnet20", 16, 3, 32), eval_set(3, 32, 256)[0],
                        [1e-4, 1e-3], max(5, a.repeats // 4))  # fmt: skip
    vulnerability_speedup(trials=5)
    adaptive_savings()


if __name__ == "__main__":
    main()
