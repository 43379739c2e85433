"""What a person sees from `pytest benchmarks` (the core of `nox -s reproduce`): stage progress through
pytest's capture, and the measured claims table with the comparison at the end."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the slow tier: --slow or -m slow

ROOT = Path(__file__).resolve().parent.parent


def _benchmarks(tmp_path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``pytest benchmarks`` as ``nox -s reproduce`` runs it, into ``tmp_path``, with more pytest arguments."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks",
            "-m",
            "not speed",
            "-p",
            "no:cacheprovider",
            *args,
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,  # a hang guard, never a speed check
        env=env,
    )


def test_stage_progress_and_measured_table_are_printed(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "FLATENN_QUIET"}  # CI exports it; a person does not
    r = _benchmarks(tmp_path, "-k", "sparsity_level and standard-sgd", "--no-report", env=env)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "[smoke] models 1/" in r.stdout and "shipped" in r.stdout  # progress, visible through capture
    # -k: the counters count only what the selected claim needs (its models and sparsity units), not the run's 30
    totals = {int(line.split("models 1/")[1].split(",")[0]) for line in r.stdout.splitlines() if "models 1/" in line}
    assert totals and max(totals) < 30, totals
    assert "flatenn: measured claims at smoke" in r.stdout
    assert "sparsity_level[standard-sgd]" in r.stdout and "all cases agree" in r.stdout
    assert (tmp_path / "smoke" / "claims.csv").is_file()


def test_a_full_disk_stops_a_benchmark_run_with_one_line(tmp_path):
    import os

    env = {**os.environ, "FLATENN_FULL_AFTER": "3", "FLATENN_QUIET": "1"}
    r = _benchmarks(tmp_path, "-p", "tests.disk_full_plugin", "-k", "sparsity_level", "--no-report", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 28, out[-3000:]
    assert out.count("the disk is full") == 1 and "Traceback" not in out and "resume" in out


def test_an_interrupted_reproduction_says_so_and_how_to_resume(tmp_path):
    """Ctrl-C in the middle: no claims from a partial table, no "all cases agree", the run listed as interrupted,
    a non-zero exit, and the command that resumes it (with its --results-dir)."""
    import json
    import os

    env = {**os.environ, "FLATENN_INTERRUPT_AFTER": "2", "FLATENN_QUIET": "1"}
    r = _benchmarks(tmp_path, "-p", "tests.interrupt_plugin", "-k", "sparse_vs_standard", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-3000:]  # pytest's "interrupted"
    assert "all cases agree" not in out and "flatenn: interrupted" in out
    assert f"--results-dir {tmp_path}" in out and "resume" in out
    assert "work units finished and kept" in out
    smoke = tmp_path / "smoke"
    assert not (smoke / "claims.csv").exists()  # nothing derived from a partial table
    runs = json.loads((smoke / "provenance.json").read_text())["runs"]
    assert [x["status"] for x in runs] == ["interrupted"]
    from flatenn.core.results import read_result

    camp = read_result(smoke, "campaign")
    assert camp.groupby(["model_id", "fault_model"]).ngroups == 3  # two finished campaigns, the third cut short
