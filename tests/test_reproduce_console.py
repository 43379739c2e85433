"""What a person sees from `pytest benchmarks` (the core of `nox -s reproduce`): stage progress through
pytest's capture, and the measured claims table with the comparison at the end."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stage_progress_and_measured_table_are_printed(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "FLATENN_QUIET"}  # CI exports it; a person does not
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks",
            "-m",
            "not speed",
            "-p",
            "no:cacheprovider",
            "-k",
            "sparsity_level and standard-sgd",
            "--results-dir",
            str(tmp_path),
            "--no-report",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert "[smoke] models 1/30" in r.stdout and "shipped" in r.stdout  # progress, visible through capture
    assert "flatenn: measured claims at smoke" in r.stdout
    assert "sparsity_level[standard-sgd]" in r.stdout and "all cases agree" in r.stdout
    assert (tmp_path / "smoke" / "claims.csv").is_file()


def test_a_full_disk_stops_a_benchmark_run_with_one_line(tmp_path):
    import os

    env = {**os.environ, "FLATENN_FULL_AFTER": "3", "FLATENN_QUIET": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks",
            "-m",
            "not speed",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.disk_full_plugin",
            "-k",
            "sparsity_level",
            "--results-dir",
            str(tmp_path),
            "--no-report",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 28, out[-3000:]
    assert out.count("the disk is full") == 1 and "Traceback" not in out and "resume" in out
