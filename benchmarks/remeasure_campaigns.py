"""Re-measure the campaign rows of chosen training seeds of a recorded scale from its shipped models with the
current code, and compare them with the recorded rows at the cross-CPU tolerances of
``flatenn/repro/tolerances.py`` (faulty bits and changed weights exactly, losses to float noise, a trial's accuracy
to one evaluation example). Plan v3 asks for it at ``cpu`` seeds 0-9, whose first recording ran from a commit that
is not in the repository's history.

    python benchmarks/remeasure_campaigns.py --scale cpu --seeds 0-9 --out results/remeasure_cpu

Writes ``report.txt`` (what was compared and every difference) and ``provenance.json`` (commit, command, machine)
to ``--out``; the re-measured rows stay in ``--work`` (default: a temporary folder), which resumes when the same
command is run again. Exits non-zero when a row does not reproduce.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seed_list(text: str) -> list[int]:
    """``0-9`` or ``0,3,5`` -> seeds."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"--seeds takes whole numbers >= 0 such as 0-9 or 0,3,5, got {text!r}")
    return sorted(set(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="cpu", help="a recorded scale (default cpu)")
    ap.add_argument("--seeds", type=seed_list, default=list(range(10)), help="training seeds (default 0-9)")
    ap.add_argument("--reference-dir", default=str(ROOT / "results"), help="the recorded results (default results/)")
    ap.add_argument("--out", required=True, help="folder for report.txt and provenance.json")
    ap.add_argument("--work", default=None, help="folder for the re-measured rows (default: a temporary one)")
    a = ap.parse_args(argv)

    from flatenn.core.results import read_results
    from flatenn.core.zoo import Zoo
    from flatenn.repro.experiment import Experiment, git_state
    from flatenn.repro.plan import plan
    from flatenn.repro.scales import get_scale
    from flatenn.repro.verify import compare_units

    scale = get_scale(a.scale)
    reference = Path(a.reference_dir) / scale.name
    if not (reference / "models").is_dir():
        raise SystemExit(f"--reference-dir: {reference} has no shipped models/; give the recorded results folder")
    recorded = set(read_results(reference)["campaign"]["train_seed"].unique())
    missing = [s for s in a.seeds if s not in recorded]
    if missing:
        raise SystemExit(f"--seeds: {missing} not recorded in {reference}; recorded: {sorted(recorded)}")
    units = [u for u in plan(scale, seeds=a.seeds) if u.kind == "campaigns"]
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="remeasure-"))
    command = "python benchmarks/remeasure_campaigns.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    with Experiment(
        scale,
        work / scale.name,
        zoo=Zoo(work / "zoo", progress=False),
        reference_dir=reference,
        command=command,
        progress=True,
    ) as exp:
        exp.run(units)
        fresh = exp.tables()
    seconds = time.perf_counter() - t0
    problems = compare_units(fresh, read_results(reference), scale, units, retrained=False, n_cases=1)
    rows = int(fresh["campaign"]["model_id"].isin({scale.model_id(u.variant, u.seed) for u in units}).sum())
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{scale.name}: campaign rows of seeds {a.seeds} re-measured from the shipped models in {reference}",
        f"units: {len(units)} (variants {sorted({u.variant for u in units})}, fault models {list(scale.fault_models)})",
        f"rows re-measured and compared: {rows}",
        "tolerances: faulty bits and changed weights exactly; loss to float noise; accuracy to one evaluation example",
        f"wall time: {seconds:.0f} s on {platform.processor() or platform.machine()}",
        f"result: {'every row reproduces' if not problems else f'{len(problems)} difference(s)'}",
        *problems,
    ]
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    prov = {"command": command, "git": git_state(), "python": platform.python_version(), "machine": platform.node()}
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
