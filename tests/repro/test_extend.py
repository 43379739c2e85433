"""Adding a claim and a training method takes data and one small class (issue 21).

The toy method is one registered class; the toy claim is one TOML entry; the toy variant is one entry of
a scale's ``variants``. Nothing else is edited, and the suite trains, measures and evaluates the case.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from flatenn.core.methods import METHODS, TrainingMethod, register_method
from flatenn.core.zoo import Zoo
from flatenn.repro import claims as claims_mod
from flatenn.repro.experiment import Experiment
from flatenn.repro.scales import SCALES, VARIANTS

TOY_CLAIM = """
[claims.toy_gain]
statement = "Toy: half-step training raises the accuracy of standard models under faults."
source = "tests/repro/test_extend.py"
estimator = "paired_contrast"
needs = ["campaign"]
variants = ["standard-sgd", "standard-toy"]
args = { better = "standard-toy", worse = "standard-sgd" }
marks = ["saq"]
tier = "primary"
sesoi = 1.0
sesoi_reason = "a test value"
title = "toy: half-step - SGD"
metrics = [{ name = "acc_gain", direction = 1, unit = "accuracy points" }]
"""


class HalfStep(TrainingMethod):
    """SGD with every gradient halved: a method that trains, in one small class."""

    name = "toy-halfstep"

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        (0.5 * loss).backward()
        self.optimizer.step()
        return float(loss.detach()), logits


@pytest.fixture
def toy(monkeypatch):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    if "toy-halfstep" not in METHODS:
        register_method(HalfStep)
    parsed = claims_mod.parse_claims(tomllib.loads(TOY_CLAIM), "test")
    monkeypatch.setitem(claims_mod.CLAIMS, "toy_gain", parsed["toy_gain"])
    return dataclasses.replace(
        SCALES["smoke"],
        name="smoke",
        width=4,
        epochs=1,
        seeds=(0, 1),
        rates=(0.05,),
        trials=3,
        fault_models=("bitflip",),
        informative_rates={"bitflip": (0.05,)},
        claims=("toy_gain",),
        variants={**VARIANTS, "standard-toy": ("relu", "toy-halfstep")},
        plan_version=1,
    )


def test_a_toy_claim_and_method_are_computed_end_to_end(tmp_path, toy):
    with Experiment(
        toy, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False), device="cpu", progress=False
    ) as exp:
        assert {u.variant for u in exp.units} == {"standard-sgd", "standard-toy"}  # the plan reads the claim
        exp.ensure_all()
        claims = exp.record_claims()
    row = claims.set_index("case").loc["toy_gain[acc_gain]"]
    assert (
        row["n"] == 2
        and np.isfinite(row["effect"])
        and row["verdict"] in ("supported", "contradicted", "equivalent", "inconclusive")
    )
    assert row["family_complete"]  # the toy claim is the whole hypothesis family of this scale
    training = exp.tables()["training"].set_index("model_id")
    assert training.loc["standard-toy-s0", "optimizer"] == "toy-halfstep"


def test_the_method_registry_feeds_the_config_and_the_command_line():
    from flatenn.cli import build_parser
    from flatenn.core.train import TrainConfig

    if "toy-halfstep" not in METHODS:
        register_method(HalfStep)
    assert TrainConfig(optimizer="toy-halfstep").optimizer == "toy-halfstep"
    a = build_parser().parse_args(["train", "--optimizer", "toy-halfstep"])
    assert a.optimizer == "toy-halfstep"
    with pytest.raises(ValueError, match="registered training method"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="already registered"):

        class Other(TrainingMethod):
            name = "sgd"

        register_method(Other)


def test_a_bad_claim_entry_is_a_named_error():
    doc = {"claims": {"x": {"statement": "s", "source": "s", "estimator": "nope", "metrics": []}}}
    with pytest.raises(ValueError, match="claim x: unknown estimator 'nope'"):
        claims_mod.parse_claims(doc)
    doc["claims"]["x"]["estimator"] = "paired_contrast"
    doc["claims"]["x"]["colour"] = "red"
    with pytest.raises(ValueError, match="unknown field"):
        claims_mod.parse_claims(doc)
