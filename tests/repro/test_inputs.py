"""Evaluation and sharpness inputs: drawn per training seed under plan v2, one draw for all under v1."""

import dataclasses

import torch

from flatenn.core.data import DataSplit
from flatenn.repro.inputs import eval_inputs, sharpness_inputs
from flatenn.repro.scales import SCALES


def _data(n_test: int = 50, n_train: int = 80) -> DataSplit:
    x_test = torch.arange(n_test, dtype=torch.float32).view(-1, 1)
    x_train = torch.arange(n_train, dtype=torch.float32).view(-1, 1)
    return DataSplit("toy", x_train, torch.arange(n_train) % 10, x_test, torch.arange(n_test) % 10, 10, 1, 1)


def test_per_seed_evaluation_images_differ_between_seeds_and_repeat_within_one():
    scale = dataclasses.replace(SCALES["smoke"], eval_examples=20, inputs_per_seed=True)
    data = _data()
    a0, b0 = eval_inputs(scale, data, 0)
    a0_again, _ = eval_inputs(scale, data, 0)
    a1, _ = eval_inputs(scale, data, 1)
    assert torch.equal(a0, a0_again) and not torch.equal(a0, a1)
    assert len(a0) == 20 and len(set(a0.flatten().tolist())) == 20  # without replacement
    assert torch.equal(b0, (a0.flatten().long()) % 10)  # labels travel with their images
    assert a0.flatten().tolist() == sorted(a0.flatten().tolist())  # in test-split order


def test_v1_and_whole_test_set_evaluation_are_the_same_for_every_seed():
    data = _data()
    v1 = dataclasses.replace(SCALES["smoke"], eval_examples=20, inputs_per_seed=False)
    assert torch.equal(eval_inputs(v1, data, 3)[0], data.x_test[:20])
    whole = dataclasses.replace(SCALES["smoke"], eval_examples=None, inputs_per_seed=True)
    assert torch.equal(eval_inputs(whole, data, 3)[0], data.x_test)
    more = dataclasses.replace(SCALES["smoke"], eval_examples=500, inputs_per_seed=True)
    assert torch.equal(eval_inputs(more, data, 3)[0], data.x_test)


def test_sharpness_subset_and_probe_seed_follow_the_training_seed_under_plan_v2():
    data = _data()
    v2 = dataclasses.replace(SCALES["smoke"], sharpness_examples=16, inputs_per_seed=True)
    v1 = dataclasses.replace(v2, inputs_per_seed=False)
    assert not torch.equal(sharpness_inputs(v2, data, 0)[0], sharpness_inputs(v2, data, 1)[0])
    assert torch.equal(sharpness_inputs(v1, data, 0)[0], sharpness_inputs(v1, data, 1)[0])
    assert v2.sharpness_seed_for(3) != v2.sharpness_seed_for(4) and v1.sharpness_seed_for(3) == v1.sharpness_seed
