"""The commands on results folders: ``reproduce``, ``record``, ``report``, ``verify``, ``power``, ``verdicts``,
``bands`` and ``compare``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .models import check_device, check_results_dir

ROOT = Path(__file__).resolve().parents[2]


def cmd_reproduce(a, extra: list[str]) -> int:
    from ..repro.scales import expand_scales

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
    from ..repro.ray_executor import RayExecutor

    executor = RayExecutor(address=ray_address)
    executor.start()  # an unreachable cluster is one line now, before any work
    return executor


def cmd_record(a) -> int:
    """Re-record a scale's tracked results from retrained models, then its reference values and report."""
    from ..core.zoo import Zoo
    from ..repro.experiment import Experiment
    from ..repro.report import build_report
    from ..repro.scales import get_scale
    from ..repro.verify import record_bands

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
    from ..repro.report import build_report

    for p in build_report(check_results_dir(a.results_dir, must_exist=True)):
        print(p)
    return 0


DEFAULT_REMEASURE = 3  # models per folder whose sharpness rows verify re-measures by default


def cmd_verify(a) -> int:
    import secrets

    from ..repro.verify import verify_all

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
    from ..core.results import read_results
    from ..repro.power import power_table
    from ..repro.scales import get_scale

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
    """A scale's verdicts re-derived from its raw tables under analysis plan v1, v2 or v3."""
    from ..core.results import read_results
    from ..repro.scales import get_scale

    scale = get_scale(a.scale)
    folder = check_results_dir(str(Path(a.results_dir) / a.scale), must_exist=True)
    tables = read_results(folder)
    if not len(tables["campaign"]):
        raise ValueError(f"{folder}: no campaign.csv recorded there")
    pd_opts = {"index": False, "float_format": lambda v: f"{v:.3g}"}
    if a.plan == "v1":
        from ..repro.claims import evaluate_all

        cols = ["case", "effect", "ci_low", "ci_high", "n", "p_holm", "verdict", "magnitude"]
        print(f"{a.scale}, plan v1 (flatenn/repro/plans/v1.md): the first {len(scale.seeds)} seeds")
        print(evaluate_all(tables, scale)[0][cols].to_string(**pd_opts))
        return 0
    from ..repro.decide import PLAN, evaluate_v2

    if scale.name not in PLAN.scales:
        raise ValueError(f"plan v2 declares no looks for scale {a.scale}; plan v2 scales: {sorted(PLAN.scales)}")
    v, _ = evaluate_v2(tables, scale)
    if a.plan == "v2":
        cols = ["family", "case", "n", "effect", "ci_low", "ci_high", "p_value", "p_signflip", "p_nominal", "verdict"]
        print(f"{a.scale}, plan v2 (flatenn/repro/plans/v2.toml)")
        print(v[cols].to_string(**pd_opts))
        return 0
    from ..repro.decide_v3 import v3_tables

    v3 = v3_tables(tables, scale, v)
    print(f"{a.scale}, plan v3 (flatenn/repro/plans/v3.toml): one closed testing procedure over D and E nodes")
    cols = ["contrast", "n", "effect", "ci_low", "ci_high", "p_direction", "nominal_direction"]
    cols += ["p_equivalence", "nominal_equivalence", "verdict", "window"]
    print(v3["verdicts_v3"][0][cols].to_string(**pd_opts))
    print("\nclean + drop = the accuracy contrast, per seed; per-rate signs of the 95% max-t band:")
    cols = ["contrast", "clean_effect", "clean_ci_low", "clean_ci_high", "drop_effect", "drop_ci_low"]
    cols += ["drop_ci_high", "sign_pattern", "seeds_needed"]
    print(v3["verdicts_v3"][0][cols].to_string(**pd_opts))
    print("\nclaim 2 within (activation, method) cells:")
    print(v3["claim2_v3"][0][["case", "n", "rho", "p_permutation", "p_holm", "verdict"]].to_string(**pd_opts))
    return 0


def cmd_bands(a) -> int:
    from ..repro.report import build_report
    from ..repro.verify import record_bands

    path = record_bands(Path(a.results_dir) / a.scale, a.scale)
    build_report(Path(a.results_dir))  # the claims table now shows the bands
    print(f"bands written to {path}")
    return 0


def cmd_compare(a) -> int:
    from ..repro.verify import compare_runs

    problems = compare_runs(Path(a.tracked), Path(a.fresh), retrained=a.retrained)
    for p in problems:
        print(p)
    print("compare: OK" if not problems else f"compare: {len(problems)} difference(s) beyond tolerance")
    return 1 if problems else 0
