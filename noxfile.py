"""nox sessions for flatenn. All sessions share ONE virtualenv (.nox/flatenn), created on first use
and reused, so torch is installed once. Set FLATENN_TORCH to change the torch pin
(default: torch==2.14.1 torchvision==0.29.1, the builds this project is tested with).

  nox -s tests                      unit tests (tests/)
  nox -s reproduce                  every claim at the default `smoke` scale -> results/smoke/
  nox -s reproduce -- --scale cpu   ... at another scale; args after -- go to pytest
  nox -s verify                     check tracked results/ CSVs against the bands (no recomputation)
  nox -s figures                    redraw figures and results/README.md from the CSVs
  nox -s speed                      speed benchmarks (pytest-benchmark) and the campaign speed ratios
  nox -s lint                       ruff
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
nox.options.sessions = ["tests"]


def _python(session: nox.Session) -> str:
    """Create or reuse the shared virtualenv; reinstall only when pyproject or the torch pin changed."""
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    py = ENV / bindir / "python"
    stamp = ENV / ".flatenn-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + " ".join(TORCH).encode()).hexdigest()
    if not py.exists():
        session.run(sys.executable, "-m", "venv", str(ENV), external=True)
    if not stamp.exists() or stamp.read_text() != want:
        session.run(str(py), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(str(py), "-m", "pip", "install", "-q", *TORCH, external=True)
        session.run(str(py), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]", external=True)
        stamp.write_text(want)
    return str(py)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Unit tests, then a check that the tracked results still verify."""
    py = _python(session)
    session.run(py, "-m", "pytest", "tests", "-q", *session.posargs, external=True)


@nox.session(venv_backend="none")
def reproduce(session: nox.Session) -> None:
    """Run the claims benchmarks (default scale smoke); `-- --scale cpu` etc. go to pytest."""
    py = _python(session)
    session.run(py, "-m", "pytest", "benchmarks", "-m", "not speed", "-p", "no:cacheprovider", "-rxXs",
                *session.posargs, external=True)  # fmt: skip


@nox.session(venv_backend="none")
def verify(session: nox.Session) -> None:
    """Re-derive every tracked claims.csv from its CSVs and check bands and verdicts."""
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
    session.run(py, "-m", "pytest", "benchmarks/test_speed.py", "-m", "speed", "-p", "no:cacheprovider",
                "--benchmark-only", *session.posargs, external=True)  # fmt: skip
    session.run(py, "benchmarks/speed_report.py", external=True)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    py = _python(session)
    session.run(py, "-m", "ruff", "check", "flatenn", "tests", "benchmarks", "noxfile.py", external=True)
