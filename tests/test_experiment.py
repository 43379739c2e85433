"""Experiment runner: resume behaviour on a tiny scale (trains 2 one-epoch digits models)."""

import dataclasses

import pytest

from flatenn.experiment import Experiment
from flatenn.results import read_table
from flatenn.scales import SCALES
from flatenn.zoo import Zoo


@pytest.fixture
def tiny_scale():
    return dataclasses.replace(SCALES["smoke"], name="smoke", width=4, epochs=1, seeds=(0,), rates=(0.05,), trials=2,
                               sharpness_examples=32, sharpness_probes=2, sharpness_directions=2,
                               sharpness_metrics=("lambda_max_fn", "avg_sharpness"))


def test_resume_reuses_models_rows_and_measurements(tmp_path, tiny_scale):
    exp = Experiment(tiny_scale, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False),
                     device="cpu", progress=False)
    exp.ensure(("standard-sgd",), campaign=("bitflip",), sharpness=True, sparsity=True)
    camp = read_table(tmp_path / "smoke" / "campaign.csv", "campaign")
    assert len(camp) == 2 and set(read_table(tmp_path / "smoke" / "sharpness.csv")["metric"]) == {"lambda_max_fn", "avg_sharpness"}
    again = Experiment(tiny_scale, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False),
                       device="cpu", progress=False)
    again.ensure(("standard-sgd",), campaign=("bitflip",), sharpness=True, sparsity=True)
    assert not any(k.startswith(("train/", "campaign/", "sharpness/")) for k in again.timings)  # nothing recomputed
    more = dataclasses.replace(tiny_scale, sharpness_metrics=("lambda_max_fn", "avg_sharpness", "trace_fn"))
    Experiment(more, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False), device="cpu",
               progress=False).ensure(("standard-sgd",), sharpness=True)
    assert "trace_fn" in set(read_table(tmp_path / "smoke" / "sharpness.csv")["metric"])  # a new metric is measured
