"""Benchmark options and the per-scale experiment fixture.

``--scale`` (default ``smoke``; a comma list or the group ``paper``), ``--results-dir`` (default
``results/``), ``--cache-dir`` (model zoo; default $FLATENN_CACHE or ~/.cache/flatenn/zoo) and
``--device`` (default: CUDA when present, else CPU). At the end of the session the campaign
summary, provenance, figures and ``results/README.md`` are (re)written from the CSVs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flatenn.experiment import Experiment
from flatenn.scales import DEFAULT_SCALE, expand_scales, get_scale
from flatenn.zoo import Zoo

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    g = parser.getgroup("flatenn")
    g.addoption("--scale", default=DEFAULT_SCALE, help="scale(s) to reproduce: smoke, cpu, paper (comma list)")
    g.addoption("--results-dir", default=str(ROOT / "results"), help="where results/<scale>/ are written")
    g.addoption("--cache-dir", default=None, help="model zoo cache folder")
    g.addoption("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    g.addoption("--no-report", action="store_true", help="do not redraw figures and results/README.md at the end")


def pytest_configure(config):
    config._flatenn_experiments = {}


def scales_of(config) -> list[str]:
    return expand_scales(config.getoption("--scale"))


@pytest.fixture(scope="session")
def experiments(request):
    """``experiments(scale_name) -> Experiment``, one per scale for the whole session."""
    cache = request.config._flatenn_experiments

    def get(name: str) -> Experiment:
        if name not in cache:
            opt = request.config.getoption
            zoo_dev = opt("--device")
            cache[name] = Experiment(
                get_scale(name), Path(opt("--results-dir")) / name,
                zoo=Zoo(opt("--cache-dir"), device=zoo_dev), device=zoo_dev,
            )  # fmt: skip
        return cache[name]

    return get


def pytest_sessionfinish(session, exitstatus):
    exps: dict[str, Experiment] = getattr(session.config, "_flatenn_experiments", {})
    if not exps:
        return
    for exp in exps.values():
        exp.write_summary()
        exp.write_provenance()
    if not session.config.getoption("--no-report"):
        from flatenn.report import build_report

        build_report(Path(session.config.getoption("--results-dir")))
