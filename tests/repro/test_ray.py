"""Work units on a local Ray instance (``ray.init(num_cpus=2)``): the rows equal the local executor's (issue 24).

Skipped where Ray is not installed (``pip install 'flatenn[ray]'``; nox and CI install it). One Ray
instance serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from flatenn.core.results import read_result, read_table  # noqa: E402
from flatenn.core.zoo import Zoo  # noqa: E402
from flatenn.repro.experiment import Experiment  # noqa: E402
from flatenn.repro.plan import Unit  # noqa: E402
from flatenn.repro.ray_executor import RayExecutor, UnitsFailedError  # noqa: E402
from flatenn.repro.scales import SCALES  # noqa: E402
from flatenn.repro.tasks import execute_with  # noqa: E402

pytestmark = pytest.mark.slow  # the slow tier: --slow or -m slow

RUN = "20261205T000000Z-test-0000"


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny():
    rates = (0.05, 0.1)
    return dataclasses.replace(
        SCALES["smoke"],
        name="smoke",
        width=4,
        epochs=1,
        seeds=(0, 1),
        rates=rates,
        trials=3,
        informative_rates={fm: rates for fm in ("bitflip", "stuck0", "stuck1")},
        sharpness_examples=32,
        sharpness_metrics=("avg_sharpness", "landscape1d"),
        sharpness_directions=2,
        sweep_thresholds=(0.0, 0.5),
        plan_version=1,
    )


def _run(tiny, root: Path, executor=None, units=None) -> Experiment:
    with Experiment(
        tiny,
        root / "smoke",
        zoo=Zoo(root / "zoo", device="cpu", progress=False),
        device="cpu",
        progress=False,
        executor=executor,
    ) as exp:
        exp.run_id = RUN  # one run id, so whole files can be compared byte for byte
        exp.run(units if units is not None else exp.units)
        exp.finish()
    return exp


def _same_tables(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.csv"))
    assert names == sorted(p.name for p in b.glob("*.csv")) and (b / "campaign.parquet").is_file()
    for n in names:
        assert filecmp.cmp(a / n, b / n, shallow=False), f"{n} differs"


@pytest.fixture(scope="module")
def local_run(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    _run(tiny, root)
    return root / "smoke"


def test_ray_rows_are_byte_identical_to_the_local_run(ray_instance, tiny, local_run, tmp_path):
    _run(tiny, tmp_path, RayExecutor())
    _same_tables(local_run, tmp_path / "smoke")
    training = read_table(tmp_path / "smoke" / "training.csv")
    assert set(training["source"]) == {"trained"}  # trained on the workers, stored by the driver


def test_an_interrupted_ray_run_resumes_to_the_same_rows(ray_instance, tiny, local_run, tmp_path):
    units = Experiment(tiny, tmp_path / "probe", progress=False).units
    first = [u for u in units if u.kind == "models"] + [u for u in units if u.kind == "campaigns"][:3]
    _run(tiny, tmp_path, RayExecutor(), units=first)  # "interrupted" after three campaigns
    assert len(read_result(tmp_path / "smoke", "campaign")) == 3 * 2 * 3
    _run(tiny, tmp_path, RayExecutor())  # the rerun computes the rest
    _same_tables(local_run, tmp_path / "smoke")


def _dies_once(task, state=None, inputs=None):
    """A worker that is killed (os._exit) the first time it gets the stuck1 campaign of standard-sgd-s0."""
    marker = Path(os.environ["FLATENN_TEST_MARKER"])
    if task.label == "standard-sgd-s0 stuck1" and not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    return execute_with(task, state, inputs)


def _always_fails(task, state=None, inputs=None):
    if task.label == "sparse-sgd-s1 bitflip":
        raise RuntimeError("boom: this unit cannot be computed")
    return execute_with(task, state, inputs)


def test_a_killed_worker_is_retried_and_its_unit_recorded_once(ray_instance, tiny, local_run, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("FLATENN_TEST_MARKER", str(marker))
    ray.shutdown()  # the marker path reaches the workers through their environment
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "FLATENN_TEST_MARKER": str(marker)}
        },
    )
    _run(tiny, tmp_path, RayExecutor(function=_dies_once, max_retries=1))
    assert marker.read_text() == "died once"
    _same_tables(local_run, tmp_path / "smoke")


def test_a_failing_unit_is_reported_and_the_others_are_kept(ray_instance, tiny, tmp_path):
    with pytest.raises(UnitsFailedError, match="sparse-sgd-s1 bitflip.*boom") as e:
        _run(tiny, tmp_path, RayExecutor(function=_always_fails, max_retries=0))
    assert "Run the same command again" in str(e.value)
    camp = read_result(tmp_path / "smoke", "campaign")
    done = set(zip(camp["model_id"], camp["fault_model"], strict=True))
    assert ("sparse-sgd-s1", "bitflip") not in done and ("sparse-sgd-s1", "stuck0") in done  # the rest are kept
    assert len(camp) % (len(tiny.rates) * tiny.trials) == 0  # no half-recorded unit


def test_an_unreachable_cluster_is_one_clear_line():
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(ValueError, match="cannot reach the Ray cluster at 127.0.0.1:1") as e:
        RayExecutor(address="127.0.0.1:1").start()
    assert len(str(e.value).splitlines()) == 1


def test_the_local_executor_never_imports_ray(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from flatenn.repro.experiment import Experiment; from flatenn.cli import make_executor; "
        "assert make_executor('local', None) is None; assert 'ray' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_units_are_independent_of_the_executor_order(tiny, tmp_path):
    """The plan lists each unit once, a model before its measurements (what a parallel executor relies on)."""
    units = Experiment(tiny, tmp_path / "p", progress=False).units
    assert len(units) == len(set(units))
    for i, u in enumerate(units):
        if u.kind != "models":
            assert Unit("models", u.variant, u.seed) in units[:i]


def test_rows_are_recorded_while_later_tasks_are_still_being_built(
    ray_instance, tiny, local_run, tmp_path, monkeypatch
):
    """A slow task build on the driver (FT-ClipAct's search) does not hold back the rows of finished tasks."""
    import time

    events: list[str] = []
    refs: list = []  # every submitted task, training first
    first_measurement = {}
    real_task, real_record, real_submit = Experiment.task, Experiment.record, RayExecutor._submit

    def slow_task(self, unit):
        first_measurement.setdefault("at", len(refs))  # refs before the first measurement task are trainings
        measuring = refs[first_measurement["at"] :]
        if len(measuring) == 3:  # three measurement tasks are out: wait (as a slow build would) until one is done
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not ray.wait(measuring, timeout=0.5)[0]:
                pass
        events.append("task")
        return real_task(self, unit)

    def spy_record(self, unit, result):
        events.append("record")
        return real_record(self, unit, result)

    def submit(self, ray_mod, task):
        refs.append(real_submit(self, ray_mod, task))
        return refs[-1]

    monkeypatch.setattr(Experiment, "task", slow_task)
    monkeypatch.setattr(Experiment, "record", spy_record)
    monkeypatch.setattr(RayExecutor, "_submit", submit)
    _run(tiny, tmp_path, RayExecutor())
    last_task = len(events) - 1 - events[::-1].index("task")
    assert "record" in events[:last_task]  # rows were recorded before the last task was built
    _same_tables(local_run, tmp_path / "smoke")  # and they are the same rows
