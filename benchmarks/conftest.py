"""Benchmark options, the per-scale experiment fixture, and the end-of-run report.

Options: ``--scale`` (default ``smoke``; a comma list or the group ``paper``); ``--results-dir``
(default: a fresh ``runs/<UTC time>/`` folder, so a reproduction never rewrites the tracked
``results/``); ``--reference-dir`` (the tracked results to compare with, default ``results/``);
``--retrain`` (train every model instead of loading the shipped ones); ``--cache-dir`` (model zoo);
``--device`` (default: CUDA when present, else CPU); ``--executor ray`` with ``--ray-address`` (work units
as Ray tasks; rows equal the local run's). At the end of the session the tables,
provenance and figures of every scale that computed something are written, and the measured claims
table and the comparison with the reference are printed.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from flatenn.core.data import DatasetNotFoundError
from flatenn.core.zoo import Zoo
from flatenn.repro.experiment import Experiment
from flatenn.repro.scales import DEFAULT_SCALE, expand_scales, get_scale

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    g = parser.getgroup("flatenn")
    g.addoption("--scale", default=DEFAULT_SCALE, help="scale(s) to reproduce: smoke, cpu, paper (comma list)")
    g.addoption("--results-dir", default=None, help="where <scale>/ folders are written (default: runs/<UTC time>/)")
    g.addoption("--reference-dir", default=str(ROOT / "results"), help="tracked results to compare with")
    g.addoption("--retrain", action="store_true", help="train the models instead of loading the shipped ones")
    g.addoption(
        "--all-seeds",
        action="store_true",
        help="plan-v2 scales: re-measure every recorded seed (default: the plan's reproduce_seeds)",
    )
    g.addoption("--cache-dir", default=None, help="model zoo cache folder")
    g.addoption("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    g.addoption("--no-report", action="store_true", help="do not draw figures at the end")
    g.addoption("--executor", default="local", choices=("local", "ray"), help="run work units in process or on Ray")
    g.addoption("--ray-address", default=None, help="Ray cluster to join ('auto', host:port; default: local Ray)")


def pytest_configure(config):
    config._flatenn_experiments = {}
    if not hasattr(config.option, "results_dir"):
        return
    try:  # bad options are one line before collection, not a collection traceback or one failure per test
        expand_scales(config.getoption("--scale"))
        if config.getoption("--results-dir", None) is not None:
            from flatenn.cli import check_results_dir

            check_results_dir(config.getoption("--results-dir"), must_exist=False)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    if config.getoption("--results-dir", None) is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        config.option.results_dir = str(ROOT / "runs" / stamp)


def pytest_sessionstart(session):
    _terminal_progress(session.config)  # the terminal reporter exists from here on (not yet at configure)


def _terminal_progress(config) -> None:
    """Stage progress lines go to the terminal (pytest captures stderr), each on its own line."""
    from flatenn.core.progress import set_sink

    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if tr is None or capman is None:
        return

    def sink(line: str) -> None:
        with capman.global_and_fixture_disabled():
            tr.write_line(line)
            tr._tw.flush()  # a redirected stdout (CI logs) is block-buffered

    set_sink(sink)


def pytest_unconfigure(config):
    from flatenn.core.progress import set_sink

    set_sink(None)


def pytest_collection_modifyitems(config, items):
    """Speed benchmarks run only when asked for (``-m speed`` or naming benchmarks/test_speed.py)."""
    if config.getoption("-m") or any("test_speed" in a for a in config.invocation_params.args):
        return
    speed = [i for i in items if i.get_closest_marker("speed")]
    if speed:
        config.hook.pytest_deselected(items=speed)
        items[:] = [i for i in items if not i.get_closest_marker("speed")]


def pytest_collection_finish(session):
    """The claims the selected cases need, per scale (a ``-k`` run measures and counts only their units)."""
    selected: dict[str, set[str]] = {}
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "scale" in params and "case" in params:
            selected.setdefault(params["scale"], set()).add(params["case"].claim)
    session.config._flatenn_selected = selected


def scales_of(config) -> list[str]:
    return expand_scales(config.getoption("--scale"))


def results_root(config) -> Path:
    return Path(config.getoption("--results-dir"))


@pytest.fixture(scope="session")
def experiments(request):
    """``experiments(scale_name) -> Experiment``, one per scale for the whole session."""
    cache = request.config._flatenn_experiments

    def get(name: str) -> Experiment:
        if name not in cache:
            opt = request.config.getoption
            dev = opt("--device")
            try:
                from flatenn.cli import make_executor

                executor = make_executor(opt("--executor"), opt("--ray-address"))
            except ValueError as e:
                pytest.exit(str(e), returncode=2)
            cache[name] = Experiment(
                get_scale(name),
                results_root(request.config) / name,
                zoo=Zoo(opt("--cache-dir"), device=dev, progress=False),
                device=dev,
                progress=False,
                retrain=opt("--retrain"),
                reference_dir=Path(opt("--reference-dir")) / name,
                command=" ".join(["pytest", *request.config.invocation_params.args]),
                executor=executor,
                all_seeds=opt("--all-seeds"),
            )
            claims = getattr(request.config, "_flatenn_selected", {}).get(name)
            if claims:
                cache[name].plan.limit_to(claims)
            try:
                cache[name].data()  # a missing data set stops the session once, with the instruction
            except DatasetNotFoundError as e:
                pytest.exit(f"{name}: {e}", returncode=2)
        return cache[name]

    return get


def disk_full_message(e: OSError) -> str:
    where = f" writing {e.filename}" if e.filename else ""
    return (
        f"flatenn: the disk is full{where}; finished work is kept (files are written whole or not at all): "
        "free space and run the same command to resume"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A full disk stops the session with one line (not a traceback per remaining test)."""
    from flatenn.core.atomic import is_disk_full

    outcome = yield
    if outcome.excinfo is not None and is_disk_full(outcome.excinfo[1]):
        pytest.exit(disk_full_message(outcome.excinfo[1]), returncode=28)


def pytest_sessionfinish(session, exitstatus):
    from flatenn.core.atomic import is_disk_full

    exps: dict[str, Experiment] = getattr(session.config, "_flatenn_experiments", {})
    done = {n: e for n, e in exps.items() if e.computed or (e.dir / "claims.csv").is_file()}
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    session.config._flatenn_interrupted = interrupted
    try:
        for exp in exps.values():  # also completes a folder whose earlier run was killed before its provenance
            exp.finish(interrupted=interrupted)
        if done and not interrupted and not session.config.getoption("--no-report"):
            from flatenn.repro.report import build_report

            build_report(results_root(session.config))
    except OSError as e:
        if not is_disk_full(e):
            raise
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        (tr.write_line if tr else print)(disk_full_message(e))
        session.exitstatus = 28
    finally:
        for exp in reversed(list(exps.values())):  # each restores the torch settings it found: last opened first
            exp.close()


# what `nox -s reproduce` passes to pytest before the arguments given after `--` (noxfile.py)
NOX_REPRODUCE_ARGS = ["-m", "not speed", "-p", "no:cacheprovider", "-ra", "--benchmark-disable-gc"]


def resume_command(config) -> str:
    """The command that resumes this run: its own arguments, with its --results-dir (a plain rerun would start
    a new runs/<time>/ folder)."""
    import shlex

    args = list(config.invocation_params.args)
    if args[:1] and Path(args[0]).resolve() == ROOT / "benchmarks":
        args = args[1:]
    if args[: len(NOX_REPRODUCE_ARGS)] == NOX_REPRODUCE_ARGS:
        args = [a for a in args[len(NOX_REPRODUCE_ARGS) :] if a != "--benchmark-columns=min"]
    if not any(a == "--results-dir" or a.startswith("--results-dir=") for a in args):
        args += ["--results-dir", str(results_root(config))]
    return "nox -s reproduce -- " + shlex.join(args)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from flatenn.repro.verify import summary_lines

    exps: dict[str, Experiment] = getattr(config, "_flatenn_experiments", {})
    if getattr(config, "_flatenn_interrupted", False):
        terminalreporter.section("flatenn: interrupted")
        for name, exp in exps.items():
            done, planned = exp.plan.progress_counts()
            terminalreporter.write_line(
                f"{name}: {done} of {planned} work units finished and kept in {exp.dir}; no claims were derived "
                "from the partial tables, and this run is listed as 'interrupted' in its provenance.json"
            )
        terminalreporter.write_line(f"resume (finished units are not recomputed): {resume_command(config)}")
        return
    for name, exp in exps.items():
        if not (exp.dir / "claims.csv").is_file():
            continue
        terminalreporter.section(f"flatenn: measured claims at {name}")
        for line in summary_lines(exp.dir, exp.reference, retrained=exp.retrain):
            terminalreporter.write_line(line)
