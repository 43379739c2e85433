"""nox sessions for flatenn. All sessions share ONE virtualenv (.nox/flatenn), created on first use
and reused, so torch is installed once. Set FLATENN_TORCH to change the torch pin
(default: torch==2.14.1 torchvision==0.29.1, the builds this project is tested with).

  nox -s tests                      the fast tier of tests/ (unit tests of every module), on every core
  nox -s tests-slow                 the slow tier (end-to-end, subprocess command lines, Ray, tracked folders)
  nox -s tests -- --slow            both tiers
  nox -s reproduce                  every claim at the default `smoke` scale from the shipped models -> runs/<time>/
  nox -s reproduce -- --retrain     ... retraining every model (statistical comparison with results/)
  nox -s reproduce -- --scale cpu   ... at another scale; args after -- go to pytest
  nox -s record -- --scale smoke    re-record the tracked results/<scale>/ from retrained models
  nox -s verify                     re-derive every tracked results/<scale>/ table and check it (no recomputation)
  nox -s figures                    redraw figures and results/README.md from the CSVs
  nox -s speed                      speed benchmarks (pytest-benchmark) and the campaign speed ratios
  nox -s docs                       the documentation site -> site/ (strict; the CLI reference regenerated first)
  nox -s lint                       ruff check and ruff format --check
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
ENV = ROOT / ".nox" / "flatenn"
TORCH = os.environ.get("FLATENN_TORCH", "torch==2.14.1 torchvision==0.29.1").split()
# benchmark peers (tests/faults/test_pytorchfi_peer.py, nox -s speed), never runtime dependencies of flatenn;
# installed --no-deps so they can never move the torch pin
PEERS = ["pytorchfi==0.6.0", "mrfi==2.1.0"]
nox.options.sessions = ["tests"]


def _python(session: nox.Session) -> str:
    """Create or reuse the shared virtualenv; reinstall only when pyproject or the torch pin changed."""
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    py = ENV / bindir / "python"
    stamp = ENV / ".flatenn-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + " ".join(TORCH + PEERS).encode()).hexdigest()
    if not py.exists():
        session.run(sys.executable, "-m", "venv", str(ENV), external=True)
    if not stamp.exists() or stamp.read_text() != want:
        session.log(f"installing {' '.join(TORCH)} and flatenn into {ENV} (one time, about 3 minutes)")
        session.run(str(py), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(str(py), "-m", "pip", "install", "-q", *TORCH, external=True)
        session.run(str(py), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev,ray]", external=True)
        session.run(str(py), "-m", "pip", "install", "-q", "--no-deps", *PEERS, external=True)
        stamp.write_text(want)
    return str(py)


# pytest-xdist on every core; a test file stays on one worker (its module fixtures are built once, and one Ray
# instance serves the Ray tests). "-n 0" after -- runs in this process.
PARALLEL = ["-n", "auto", "--dist", "loadfile", "--durations=15"]  # and the 15 slowest tests, to keep an eye on


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The fast tier of tests/: the unit tests of every module (`-- --slow` adds the slow tier)."""
    py = _python(session)
    session.run(py, "-m", "pytest", "tests", "-q", *PARALLEL, *session.posargs, external=True)


@nox.session(name="tests-slow", venv_backend="none")
def tests_slow(session: nox.Session) -> None:
    """The slow tier of tests/: end-to-end runs, subprocess command lines, Ray, whole tracked-folder checks."""
    py = _python(session)
    session.run(py, "-m", "pytest", "tests", "-q", "-m", "slow", *PARALLEL, *session.posargs, external=True)


@nox.session(venv_backend="none")
def reproduce(session: nox.Session) -> None:
    """Claims benchmarks into a fresh runs/<time>/ folder, compared with results/ (`-- --scale cpu`, `--retrain`)."""
    py = _python(session)
    session.run(
        py,
        "-m",
        "pytest",
        "benchmarks",
        "-m",
        "not speed",
        "-p",
        "no:cacheprovider",
        "-ra",
        "--benchmark-disable-gc",
        "--benchmark-columns=min",
        *session.posargs,
        external=True,
    )


@nox.session(venv_backend="none")
def record(session: nox.Session) -> None:
    """Re-record tracked results/<scale>/ from retrained models (`-- --scale smoke`), then its reference values."""
    py = _python(session)
    session.run(py, "-m", "flatenn", "record", *(session.posargs or ["--scale", "smoke"]), external=True)


@nox.session(venv_backend="none")
def verify(session: nox.Session) -> None:
    """Re-derive every tracked table from its CSVs and check fingerprints, completeness, checksums and verdicts."""
    py = _python(session)
    session.run(py, "-m", "flatenn", "verify", *session.posargs, external=True)


@nox.session(venv_backend="none")
def figures(session: nox.Session) -> None:
    """Redraw results/<scale>/figures/ and results/README.md from the CSVs alone."""
    py = _python(session)
    session.run(py, "-m", "flatenn", "report", *session.posargs, external=True)


@nox.session(venv_backend="none")
def speed(session: nox.Session) -> None:
    """Speed benchmarks: pytest-benchmark cases and the campaign-vs-forward ratio script."""
    py = _python(session)
    session.run(
        py,
        "-m",
        "pytest",
        "benchmarks/test_speed.py",
        "-m",
        "speed",
        "-p",
        "no:cacheprovider",
        "--benchmark-only",
        *session.posargs,
        external=True,
    )
    session.run(py, "benchmarks/speed_report.py", external=True)


@nox.session(name="gpu-check", venv_backend="none")
def gpu_check(session: nox.Session) -> None:
    """Campaigns on a GPU against the CPU: maps, accuracies, determinism, throughput (benchmarks/gpu_check.py)."""
    py = _python(session)
    session.run(py, "benchmarks/gpu_check.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """The documentation site: regenerate the command-line reference from the parser, then build docs/ into site/
    with MkDocs in strict mode (a broken link or an API docstring that does not render is an error)."""
    py = _python(session)
    session.run(py, "-m", "flatenn.cli.reference", "--write", "docs/cli.md", external=True)
    session.run(
        py, "-m", "mkdocs", "build", "--strict", *session.posargs, external=True, env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check (the formatter formats; nothing is exempted)."""
    py = _python(session)
    paths = ["flatenn", "tests", "benchmarks", "examples", "docs", "noxfile.py"]
    session.run(py, "-m", "ruff", "check", *paths, external=True)
    session.run(py, "-m", "ruff", "format", "--check", *paths, external=True)
