"""A run killed at any point leaves a folder whose rerun lists every run (issue 19.3).

A kill is simulated by an exception at the point in question and by *not* closing or finishing the
experiment (a SIGKILL runs no cleanup; the folder lock dies with the process, released here by hand).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from flatenn.core.results import read_results, table_checksums
from flatenn.core.zoo import Zoo
from flatenn.repro.experiment import Experiment
from flatenn.repro.measurements import Measurements
from flatenn.repro.scales import SCALES


class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it."""


@pytest.fixture
def tiny():
    return dataclasses.replace(
        SCALES["smoke"],
        name="smoke",
        width=4,
        epochs=1,
        seeds=(0,),
        rates=(0.05, 0.1),
        trials=2,
        informative_rates={"bitflip": (0.05, 0.1)},
        sharpness_examples=32,
        sharpness_metrics=("avg_sharpness",),
        sharpness_directions=2,
        plan_version=1,
    )


def _exp(tiny, tmp_path) -> Experiment:
    return Experiment(
        tiny, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False), device="cpu", progress=False
    )


def _work(exp: Experiment) -> None:
    exp.ensure(("standard-sgd",), campaign=("bitflip",), sparsity=True)


def _killed(exp: Experiment) -> None:
    exp.lock.release()
    exp._torch.__exit__(None, None, None)


def _assert_complete(d, killed_run: str | None) -> None:
    prov = json.loads((d / "provenance.json").read_text())
    runs = {r["run_id"]: r for r in prov["runs"]}
    used = set().union(*(set(t["run_id"]) for t in read_results(d).values() if len(t)))
    assert used <= set(runs), "a row names a run that provenance.json does not list"
    assert not any(r["status"] == "running" for r in runs.values())
    assert prov["tables_sha256"] == table_checksums(d)
    if killed_run is not None:
        assert runs[killed_run]["status"] == "interrupted" and runs[killed_run]["git"] and runs[killed_run]["versions"]


def _rerun(tiny, tmp_path) -> Experiment:
    again = _exp(tiny, tmp_path)
    _work(again)
    again.finish()
    again.close()
    return again


def test_killed_during_model_loading(tiny, tmp_path, monkeypatch):
    first = _exp(tiny, tmp_path)
    monkeypatch.setattr(Measurements, "campaign", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        _work(first)
    _killed(first)
    prov = json.loads((tmp_path / "smoke" / "provenance.json").read_text())
    assert [r["status"] for r in prov["runs"]] == ["running"]  # listed before its first row was written
    monkeypatch.undo()
    again = _rerun(tiny, tmp_path)
    assert again.run_id != first.run_id
    _assert_complete(tmp_path / "smoke", first.run_id)  # training.csv still names the killed run


def test_killed_mid_campaign(tiny, tmp_path, monkeypatch):
    from flatenn.faults.injector import FaultInjector

    first = _exp(tiny, tmp_path)
    real, calls = FaultInjector.sample_trials, []

    def sample_trials(self, seed, trials, rate=None, **kw):  # campaigns sample a block of trials at a time
        calls.append(rate)
        if rate == 0.1:  # the second rate: the first rate's rows are already written
            raise Killed()
        return real(self, seed, trials, rate=rate, **kw)

    monkeypatch.setattr(FaultInjector, "sample_trials", sample_trials)
    with pytest.raises(Killed):
        _work(first)
    _killed(first)
    monkeypatch.undo()
    _rerun(tiny, tmp_path)
    camp = read_results(tmp_path / "smoke")["campaign"]
    assert set(camp["run_id"]) == {first.run_id, camp["run_id"].iloc[-1]} and len(camp) == 4
    _assert_complete(tmp_path / "smoke", first.run_id)


def test_killed_after_claims_before_provenance(tiny, tmp_path, monkeypatch):
    first = _exp(tiny, tmp_path)
    _work(first)
    monkeypatch.setattr(Experiment, "prune_models", lambda self: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        first.finish()
    _killed(first)
    assert (tmp_path / "smoke" / "claims.csv").is_file()
    monkeypatch.undo()
    again = _rerun(tiny, tmp_path)
    assert not again.computed  # nothing left to compute, yet the folder is completed
    _assert_complete(tmp_path / "smoke", None)
    runs = json.loads((tmp_path / "smoke" / "provenance.json").read_text())["runs"]
    assert [r["run_id"] for r in runs] == [first.run_id] and runs[0]["status"] == "interrupted"


def test_a_run_that_computes_nothing_leaves_provenance_unchanged(tiny, tmp_path):
    first = _exp(tiny, tmp_path)
    _work(first)
    first.finish()
    first.close()
    before = (tmp_path / "smoke" / "provenance.json").read_text()
    _rerun(tiny, tmp_path)
    assert (tmp_path / "smoke" / "provenance.json").read_text() == before
