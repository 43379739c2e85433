"""Speed ratios measured against baselines in the same run, interleaved (prints them, asserts nothing).

Every ratio compares operations measured round-robin in one loop (so drifting machine load hits all
alike), wall time and CPU time (process_time) side by side, medians over repeats.

1. Epoch cost of SAQ and of every training method of the mitigations family relative to SGD.
2. Per-trial campaign overhead (sample + write + restore, no forward) for the digits CNN, ResNet-20 and
   an 11M-weight ResNet-18 at rates 1e-5 … 1e-2, split into a per-layer and a per-faulty-bit term
   (least squares over the rates).
3. Campaign trials against the clean-forward limit (digits CNN, ResNet-20), and against pytorchfi 0.6.0
   applying the same faults (checked bit-identical first; skipped with a note when pytorchfi is absent).
4. Per-layer vulnerability maps of ResNet-20 (``flatenn.vulnerability_map``, prefix reuse) against the
   clean-forward limit (layers x bits x trials clean forwards), interleaved layer by layer, at one bit
   with few trials (the frontier is amortized least) and at the default all bits x 20 trials; and the
   same small map with full forwards.
5. Adaptive trial counts on a shipped smoke model: trials needed for the CI half-width of the fixed design.

    python benchmarks/speed_report.py [--repeats N] [--out results/speed]
    python benchmarks/speed_report.py --only method-costs [--repeats N] [--out DIR]   (section 1 alone)

With ``--out`` the report is also written to ``DIR/report.txt`` with ``DIR/provenance.json`` (commit,
dirty flag, versions, CPU, threads, load average before and after: the machine's load is part of what
a speed number means).
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
from speed_setup import calibrated, eval_set, forward_all  # noqa: E402

from flatenn.core.evaluate import as_batches, eval_mode, evaluate_batches, score_batches  # noqa: E402
from flatenn.core.quant import frozen, quantized_layers  # noqa: E402
from flatenn.faults.campaign import BLOCK_FAULTY_BITS, run_campaign  # noqa: E402
from flatenn.faults.injector import FaultInjector  # noqa: E402
from flatenn.faults.vulnerability import vulnerability_map  # noqa: E402


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


BLOCK = 8  # at most this many trials sampled and prepared together per timed call


def block_size(inj: FaultInjector, rate: float) -> int:
    """Trials per timed call: ``BLOCK``, or fewer where a campaign's block would be smaller
    (``flatenn.faults.campaign.BLOCK_FAULTY_BITS`` expected faulty bits at most)."""
    return max(1, min(BLOCK, int(BLOCK_FAULTY_BITS // max(1.0, rate * inj.total_bits))))


def block_op(inj: FaultInjector, rate: float, model=None, batches=None, fault_model: str = "bitflip"):
    """:func:`block_size` trials of flatenn's per-trial work exactly as ``run_campaign`` does it: maps sampled
    and writes prepared for the block at once, then per trial write, score the model (when given; no mode
    switching, as campaigns do), restore. Call ``i`` runs the i-th block of trials; divide by the block size.
    """
    size = block_size(inj, rate)

    def run(i: int) -> None:
        block = list(range(i * size, (i + 1) * size))
        for faults in inj.prepare_trials(inj.sample_trials(0, block, rate=rate), fault_model):
            with inj.applied(faults):
                if model is not None:
                    score_batches(model, batches)

    return run


def per_trial(t: tuple[float, float], inj: FaultInjector, rate: float) -> tuple[float, float]:
    n = block_size(inj, rate)
    return t[0] / n, t[1] / n


def overhead(label: str, model, rates, repeats: int) -> None:
    with frozen(model):
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        n_layers = len(inj.layers)
        t = {r: per_trial(v, inj, r) for r, v in interleaved({r: block_op(inj, r) for r in rates}, repeats).items()}
        bits = [inj.total_bits * r for r in rates]
    ms = [1000 * t[r][0] for r in rates]
    slope, intercept = np.polyfit(bits, ms, 1)
    print(
        f"\n{label}: {n_layers} layers, {inj.total_bits // 8:,} weights; per-trial overhead (sample + write + "
        f"restore, no forward; maps sampled up to {BLOCK} trials at a time as campaigns do), median wall / CPU ms:"
    )
    for r, b in zip(rates, bits, strict=True):
        print(f"  rate {r:.0e} (~{b:,.0f} faulty bits): {1000 * t[r][0]:.3f} / {1000 * t[r][1]:.3f} ms")
    print(f"  fit: {1000 * intercept / n_layers:.1f} us per layer + {1000 * slope:.3f} us per faulty bit")


def campaign_vs_forward(label: str, model, x, y, rates, repeats: int, trials: int) -> None:
    """Whole ``run_campaign`` calls (``trials`` trials plus its clean pass, rows, fingerprint and all) against as
    many clean forwards scored the same way (frozen, in eval mode, no mode switching per forward)."""
    batches = as_batches(x, y, 512, torch.device("cpu"))

    def clean(i: int) -> None:
        with eval_mode(model), frozen(model):  # the campaign's own setup, then bare forwards scored
            for _ in range(trials + 1):
                score_batches(model, batches)

    def campaign(rate):
        return lambda i: run_campaign(model, x, y, "bitflip", rates=[rate], trials=trials, seed=i, progress=False)

    t = interleaved({"clean": clean, **{r: campaign(r) for r in rates}}, repeats)
    c = t["clean"]
    print(
        f"\n{label}, {len(x)} images: clean evaluation {1000 * c[0] / (trials + 1):.2f} ms wall; run_campaign "
        f"with {trials} trials against {trials + 1} clean forwards (its clean pass included):"
    )
    for r in rates:
        print(
            f"  campaign trial at {r:.0e}: {t[r][0] / c[0]:.3f}x wall, {t[r][1] / c[1]:.3f}x CPU of the clean forward"
        )


def channels_last_check(repeats: int, seeds: int = 5) -> None:
    """Would a channels-last evaluation give the same logits on the shipped smoke models, and how much faster
    is it? (Used only where bit-identical; a model whose clean logits differ cannot be trusted under faults.)"""
    import copy

    from flatenn.repro.experiment import Experiment
    from flatenn.repro.scales import SCALES

    root = Path(__file__).resolve().parent.parent
    same, total, speed = 0, 0, []
    with Experiment(
        SCALES["smoke"], Path("/tmp") / "flatenn-speed-layout", progress=False, reference_dir=root / "results" / "smoke"
    ) as exp:
        for seed in range(seeds):
            x, _ = exp.measurements.eval_set(seed)
            for variant in SCALES["smoke"].variants:
                model, _ = exp.model(variant, seed)
                with frozen(model), eval_mode(model), torch.no_grad():
                    twin = copy.deepcopy(model).to(memory_format=torch.channels_last)
                    xc = x.contiguous(memory_format=torch.channels_last)
                    total += 1
                    same += bool(torch.equal(model(x), twin(xc)))
                    if not speed:
                        ops = {
                            "nchw": lambda i, m=model, v=x: forward_all(m, v),
                            "nhwc": lambda i, m=twin, v=xc: forward_all(m, v),
                        }
                        t = interleaved(ops, repeats)
                        speed = [t["nchw"][0], t["nhwc"][0]]
    print(
        f"\nChannels-last evaluation, shipped smoke models (digits CNN, seeds 0-{seeds - 1}, every variant): logits "
        f"bit-identical to NCHW for {same} of {total} models; forward {1000 * speed[0]:.2f} ms NCHW, "
        f"{1000 * speed[1]:.2f} ms channels-last ({speed[0] / speed[1]:.2f}x). "
        + (
            "Not bit-identical for every model, so evaluation stays NCHW (recorded numbers must not move)."
            if same < total
            else "Bit-identical for every model checked."
        )
    )


def versus_pytorchfi(label: str, model, x, rates, repeats: int) -> None:
    """flatenn trials against pytorchfi 0.6.0 writing the same faults (bit-identical logits checked first).

    pytorchfi gets its fault lists precomputed from flatenn's maps (its own sampling is not timed); per
    trial it deep-copies the model, writes each weight in a Python loop and runs the forward. flatenn
    samples, writes, runs the forward and restores.
    """
    try:
        import pytorchfi  # noqa: F401
    except ImportError:
        print(f"\n{label}: pytorchfi not installed, comparison skipped (pip install --no-deps pytorchfi==0.6.0)")
        return
    from pytorchfi_peer import float_twin, pytorchfi_faults, pytorchfi_injector, pytorchfi_layer_numbers

    batches = as_batches(x, torch.zeros(len(x), dtype=torch.long), 512, torch.device("cpu"))
    with frozen(model), eval_mode(model), torch.no_grad():
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        twin = float_twin(model)
        fi = pytorchfi_injector(twin, list(x.shape[1:]))
        numbers = pytorchfi_layer_numbers(twin)
        lists = {
            (r, i): pytorchfi_faults(inj, inj.sample(0, i, rate=r), "bitflip", numbers)
            for r in rates
            for i in range(repeats + 1)
        }
        for r in rates:  # same faults, same logits, before anything is timed
            with inj.applied(inj.sample(0, 0, rate=r), "bitflip"):
                if not torch.equal(fi.declare_weight_fi(**lists[(r, 0)])(x[:64]), model(x[:64])):
                    raise AssertionError(f"pytorchfi and flatenn disagree at rate {r:g}")

        def theirs(r):
            return lambda i: forward_all(fi.declare_weight_fi(**lists[(r, i)]), x)

        ops = {"clean": lambda i: forward_all(model, x)}
        for r in rates:
            ops[("flatenn", r)] = block_op(inj, r, model, batches)
            ops[("pytorchfi", r)] = theirs(r)
        t = interleaved(ops, repeats)
        t.update({("flatenn", r): per_trial(t[("flatenn", r)], inj, r) for r in rates})
    c = t["clean"]
    print(
        f"\n{label}, {len(x)} images, flatenn vs pytorchfi 0.6.0 (same faults, logits bit-identical): "
        f"clean forward {1000 * c[0]:.1f} ms wall"
    )
    for r in rates:
        f, p = t[("flatenn", r)], t[("pytorchfi", r)]
        n = sum(len(v) for v in [lists[(r, i)]["value"] for i in range(repeats + 1)]) / (repeats + 1)
        print(
            f"  rate {r:.0e} (~{n:,.0f} changed weights): flatenn {f[0] / c[0]:.2f}x, pytorchfi {p[0] / c[0]:.2f}x "
            f"the clean forward (wall); pytorchfi / flatenn = {p[0] / f[0]:.2f}x wall, {p[1] / f[1]:.2f}x CPU"
        )


def torchvision_resnet18() -> torch.nn.Module:
    """torchvision's ResNet-18 (10 classes), quantized by flatenn (8-bit weights and layer inputs), calibrated."""
    from torchvision.models import resnet18

    from flatenn.core.convert import quantize_model

    torch.manual_seed(0)
    model = quantize_model(resnet18(num_classes=10))
    model.train()
    with torch.no_grad():
        model(torch.randn(64, 3, 32, 32))
    return model.eval()


def versus_mrfi(label: str, model, x, rates, repeats: int) -> None:
    """flatenn trials against MRFI 2.1.0 at the same bit error rates on the same codes (see ``mrfi_peer``).

    Each tool against its own clean forward: flatenn's frozen model, and the float twin MRFI wraps (the same
    modules with float weights). MRFI draws its faults inside the forward; flatenn samples, writes, runs the
    forward and restores. Bit counts: flatenn's faulty bits per trial, and the bits MRFI's weights differ in
    from the clean codes after a trial, against the expected p x bits.
    """
    try:
        import mrfi  # noqa: F401
    except ImportError:
        print(f"\n{label}: MRFI not installed, comparison skipped (pip install --no-deps mrfi==2.1.0 pyyaml)")
        return
    from mrfi_peer import flipped_bits, mrfi_model
    from pytorchfi_peer import float_twin

    batches = as_batches(x, torch.zeros(len(x), dtype=torch.long), 512, torch.device("cpu"))
    with frozen(model), eval_mode(model), torch.no_grad():
        inj = FaultInjector(model, write_codes=False)  # as campaigns do: the forward reads only the values
        twin = float_twin(model)
        if not torch.equal(twin(x[:64]), model(x[:64])):
            raise AssertionError("the float twin and the flatenn model disagree without faults")
        ours, theirs, counts = {}, {}, {}
        for r in rates:
            ours[r] = block_op(inj, r, model, batches)
            wrapped = mrfi_model(float_twin(model), model, r)
            theirs[r] = (lambda w: lambda i: forward_all(w, x))(wrapped)
            mrfi_bits = []
            for _ in range(3):
                wrapped(x[:2])
                mrfi_bits.append(flipped_bits(wrapped.model, model))
            ours_bits = [sum(m.faulty_bits for m in inj.sample(0, t, rate=r).values()) for t in range(3)]
            counts[r] = (np.mean(ours_bits), np.mean(mrfi_bits), inj.total_bits * r)
        ops = {"clean": lambda i: forward_all(model, x), "clean twin": lambda i: forward_all(twin, x)}
        for r in rates:
            ops[("flatenn", r)], ops[("mrfi", r)] = ours[r], theirs[r]
        t = interleaved(ops, repeats)
        t.update({("flatenn", r): per_trial(t[("flatenn", r)], inj, r) for r in rates})
    c, ct = t["clean"], t["clean twin"]
    print(
        f"\n{label}, {len(x)} images, flatenn vs MRFI 2.1.0 (bit flips in the same 8-bit codes; MRFI's quantizer "
        f"uses flatenn's per-channel scales): clean forward {1000 * c[0]:.1f} ms (flatenn), {1000 * ct[0]:.1f} ms "
        "(float twin) wall"
    )
    for r in rates:
        f, m = t[("flatenn", r)], t[("mrfi", r)]
        ob, mb, expected = counts[r]
        print(
            f"  rate {r:.0e}: flatenn {f[0] / c[0]:.2f}x, MRFI {m[0] / ct[0]:.2f}x its clean forward (wall); "
            f"MRFI / flatenn = {m[0] / f[0]:.2f}x wall, {m[1] / f[1]:.2f}x CPU; faulty bits per trial: flatenn "
            f"{ob:,.0f}, MRFI {mb:,.0f}, expected {expected:,.0f}"
        )


def vulnerability_speedup(trials: int, bits: list[int] | None, full_forward: bool) -> None:
    """One whole map (as a user runs it) between two sets of clean forwards that give the limit."""
    model = calibrated("resnet20", 16, 3, 32)
    x, y = eval_set(3, 32, 256)
    batches = as_batches(x, y, 256, torch.device("cpu"))
    names = list(quantized_layers(model))
    n_bits = 8 if bits is None else len(bits)

    def clean_forward() -> float:
        w = time.perf_counter()
        for _ in range(3):
            evaluate_batches(model, batches)
        return (time.perf_counter() - w) / 3

    def timed_map(prefix_reuse: bool) -> float:
        w = time.perf_counter()
        vulnerability_map(
            model, x, y, rate=1e-2, trials=trials, bits=bits, batch_size=256, prefix_reuse=prefix_reuse, progress=False
        )
        return time.perf_counter() - w

    with frozen(model):
        before = clean_forward()
        prefix = timed_map(True)
        full = timed_map(False) if full_forward else float("nan")
        after = clean_forward()
    limit = (before + after) / 2 * len(names) * n_bits * trials
    line = (
        f"\nVulnerability map, ResNet-20 width 16, {len(names)} layers x {n_bits} bit(s) x {trials} trials, "
        f"bitflip 1e-2, 256 images: prefix reuse {prefix:.1f} s, clean-forward limit {limit:.1f} s "
        f"(clean forward {1000 * before:.0f} ms before, {1000 * after:.0f} ms after) -> "
        f"{limit / prefix:.2f}x faster than the limit"
    )
    if full_forward:
        line += f"; full forwards {full:.1f} s ({full / prefix:.2f}x slower than prefix reuse)"
    print(line)


def adaptive_savings() -> None:
    from flatenn.analysis.stats import mean_ci
    from flatenn.faults.campaign import run_campaign
    from flatenn.repro.experiment import Experiment
    from flatenn.repro.scales import SCALES

    root = Path(__file__).resolve().parent.parent
    with Experiment(
        SCALES["smoke"],
        Path("/tmp") / "flatenn-speed-adaptive",
        progress=False,
        reference_dir=root / "results" / "smoke",
    ) as exp:
        model, _ = exp.model("standard-sgd", 0)
        x, y = exp.measurements.eval_set(0)
    rates = SCALES["smoke"].rates
    fixed = run_campaign(model, x, y, "bitflip", rates=rates, trials=50, seed=0, progress=False)
    half = {r: (lambda c: (c[3] - c[2]) / 2)(mean_ci(g["accuracy"])) for r, g in fixed.groupby("rate")}
    target = float(np.median(list(half.values())))
    adaptive = run_campaign(
        model, x, y, "bitflip", rates=rates, trials=50, seed=0, progress=False, target_halfwidth=target, min_trials=10
    )
    got = {r: (lambda c: (c[3] - c[2]) / 2)(mean_ci(g["accuracy"])) for r, g in adaptive.groupby("rate")}
    print(
        f"\nAdaptive trials, smoke standard-sgd-s0 (shipped), bitflip at {len(rates)} rates: target half-width "
        f"{target:.2f} points (median of the fixed 50-trial design): {len(adaptive)} trials instead of "
        f"{len(fixed)} ({100 * (1 - len(adaptive) / len(fixed)):.0f}% saved); per rate trials / half-width: "
        + ", ".join(f"{r:g}: {int((adaptive['rate'] == r).sum())} / {got[r]:.2f}" for r in rates)
    )


def bench_method_costs(repeats: int = 3) -> None:
    """Seconds per epoch of SGD, SAQ and every training method of the mitigations family (the scales' settings,
    ``METHOD_SETTINGS``) on the digits CNN width 8, interleaved in one run: the training-cost ratio that models
    trained in different recordings (other sittings, other thread layouts) cannot give."""
    from flatenn.core.data import load_digits
    from flatenn.core.train import TrainConfig, fit
    from flatenn.repro.scales import METHOD_SETTINGS

    data = load_digits()
    methods = {"sgd": {}, "saq": {}, **METHOD_SETTINGS}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(repeats):  # interleaved
        for method, settings in methods.items():
            _, rec = fit(TrainConfig(width=8, epochs=1, optimizer=method, **settings), data, progress=False)
            times[method].append(rec.seconds_per_epoch)
    sgd = statistics.median(times["sgd"])
    print(
        f"Training cost per method (digits CNN width 8, one epoch, median of {repeats}; ratio to SGD): "
        + ", ".join(
            f"{m} {statistics.median(t):.3f} s/epoch ({statistics.median(t) / sgd:.2f}x)" for m, t in times.items()
        )
    )


class _Tee:
    """Writes to the terminal and keeps a copy (for ``--out``)."""

    def __init__(self, stream) -> None:
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _provenance(started: str, load_before: tuple[float, ...], wall_s: float, threads: int) -> dict:
    import datetime
    import os
    import platform

    from flatenn.repro.experiment import git_state

    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else platform.processor()
    )
    return {
        "command": " ".join(["python", *sys.argv]),
        "git": git_state(),
        "started_utc": started,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 1),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads_timed": threads,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }


def main() -> None:
    import datetime
    import json
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="also write DIR/report.txt and DIR/provenance.json")
    ap.add_argument("--only", choices=("method-costs",), default=None, help="run one section alone")
    a = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before, t0 = os.getloadavg(), time.perf_counter()
    torch.set_num_threads(1)  # every timed section runs at one thread (the adaptive section counts trials only)
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        bench_method_costs(a.repeats) if a.only == "method-costs" else run(a.repeats)
    finally:
        sys.stdout = tee.stream
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "report.txt").write_text("".join(tee.parts))
        prov = _provenance(started, load_before, time.perf_counter() - t0, threads=1)
        (a.out / "provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
        print(f"wrote {a.out / 'report.txt'} and {a.out / 'provenance.json'}")


def run(repeats: int) -> None:
    """Every section of the report, in order (see the module docstring)."""
    torch.set_num_threads(1)
    bench_method_costs()
    rates = [1e-5, 1e-4, 1e-3, 1e-2]
    digits = calibrated("cnn_digits", 8, 1, 8)
    x_digits, y_digits = eval_set(1, 8, 360)
    resnet20 = calibrated("resnet20", 16, 3, 32)
    x_cifar, y_cifar = eval_set(3, 32, 256)
    resnet18 = torchvision_resnet18()
    overhead("digits CNN width 8", digits, rates, repeats)
    overhead("ResNet-20 width 16", resnet20, rates, repeats)
    overhead("torchvision ResNet-18", resnet18, rates, max(3, repeats // 4))
    campaign_vs_forward("digits CNN width 8", digits, x_digits, y_digits, [1e-4, 1e-3, 1e-2], max(5, repeats // 2), 50)
    campaign_vs_forward("ResNet-20 width 16", resnet20, x_cifar, y_cifar, [1e-4, 1e-3, 1e-2], 3, 5)
    channels_last_check(repeats)
    versus_mrfi("torchvision ResNet-18", resnet18, x_cifar, rates, max(5, repeats // 4))
    versus_pytorchfi("digits CNN width 8", digits, x_digits, [1e-4, 1e-3, 1e-2], repeats)
    versus_pytorchfi("ResNet-20 width 16", resnet20, x_cifar, [1e-4, 1e-3, 1e-2], max(9, repeats // 2))
    versus_pytorchfi("torchvision ResNet-18", resnet18, x_cifar, [1e-2], 3)
    vulnerability_speedup(trials=5, bits=[7], full_forward=True)
    vulnerability_speedup(trials=20, bits=None, full_forward=False)
    adaptive_savings()


if __name__ == "__main__":
    main()
