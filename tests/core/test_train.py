import dataclasses

import pytest
import torch

from flatenn.core.train import TrainConfig, fit


def _state(cfg, digits):
    model, record = fit(cfg, digits, progress=False)
    return {k: v.clone() for k, v in model.state_dict().items()}, record


@pytest.mark.parametrize("optimizer", ["sgd", "saq"])
def test_same_seed_bit_identical_different_seed_differs(digits, tiny_config, optimizer):
    cfg = dataclasses.replace(tiny_config, optimizer=optimizer)
    s1, r1 = _state(cfg, digits)
    s2, _ = _state(cfg, digits)
    s3, _ = _state(dataclasses.replace(cfg, seed=1), digits)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point())
    assert len(r1.epochs) == 1 and 0 <= r1.clean_accuracy <= 100 and 0 <= r1.sparsity <= 1


def test_record_contents(digits, tiny_config):
    cfg = dataclasses.replace(tiny_config, activation="fatrelu", threshold=1.0)
    _, rec = fit(cfg, digits, progress=False)
    d = rec.to_dict()
    assert d["config"]["activation"] == "fatrelu" and d["key"] == cfg.key()
    assert {"train_loss", "train_accuracy", "epoch"} <= set(d["epochs"][0])
    assert rec.threshold == 1.0 and rec.wall_time_s > 0


def test_config_key_covers_every_field(tiny_config):
    keys = {tiny_config.key()}
    for change in (
        {"seed": 5},
        {"rho": 0.1},
        {"optimizer": "saq"},
        {"w_bits": 4},
        {"activation": "fatrelu", "threshold": 0.5},
        {"epochs": 2},
    ):
        keys.add(dataclasses.replace(tiny_config, **change).key())
    assert len(keys) == 7
    assert TrainConfig.from_dict(tiny_config.to_dict()) == tiny_config


def test_bad_config_errors():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="parent"):
        TrainConfig(parent=TrainConfig())


def test_finetune_needs_parent_weights(digits, tiny_config):
    cfg = dataclasses.replace(tiny_config, activation="fatrelu", threshold=0.5, parent=tiny_config)
    with pytest.raises(ValueError, match="init_state"):
        fit(cfg, digits, progress=False)


def test_fit_applies_the_configs_subset_to_passed_data(digits):
    cfg = TrainConfig(width=4, epochs=1, train_subset=100, test_subset=50, seed=0)
    _, rec = fit(cfg, digits, progress=False)
    # 100 training examples: per-epoch accuracy is a multiple of 1 point; 50 test: of 2 points
    assert (rec.epochs[0]["train_accuracy"] * 100) % 100 == pytest.approx(0, abs=1e-6)
    assert rec.clean_accuracy % 2 == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="config says"):
        fit(TrainConfig(dataset="fashion_mnist", epochs=1), digits, progress=False)


def test_killed_training_resumes_bit_identical(digits, tmp_path, monkeypatch):
    import flatenn.core.train as train_mod

    cfg = TrainConfig(width=4, epochs=3, train_subset=128, seed=3, optimizer="saq")
    ref, _ = fit(cfg, digits, progress=False)
    ckpt = tmp_path / "run.ckpt"
    calls = {"n": 0}
    orig = train_mod.Progress.update

    def killed_after_two_epochs(self, *a, **k):
        orig(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod.Progress, "update", killed_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, digits, progress=False, checkpoint=ckpt)
    monkeypatch.setattr(train_mod.Progress, "update", orig)
    assert ckpt.is_file()
    resumed, rec = fit(cfg, digits, progress=False, checkpoint=ckpt)
    assert len(rec.epochs) == 3
    for (n, a), b in zip(ref.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), n


class _Payload:
    """Pickles to a call that creates a file: what a planted checkpoint would run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_planted_training_checkpoint_runs_no_code(digits, tmp_path):
    cfg = TrainConfig(width=4, epochs=1, train_subset=128, seed=0)
    ckpt = tmp_path / "planted.ckpt"
    marker = tmp_path / "pwned"
    torch.save({"key": cfg.key(), "epochs": [], "payload": _Payload(marker)}, ckpt)
    with pytest.warns(UserWarning, match="unreadable"):
        model, rec = fit(cfg, digits, progress=False, checkpoint=ckpt)
    assert not marker.exists()  # weights_only: the payload was refused, training started over
    assert len(rec.epochs) == 1


def test_fit_leaves_global_torch_state_as_it_found_it(digits):
    import random

    import numpy as np

    torch.use_deterministic_algorithms(False)
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    threads = torch.get_num_threads()
    before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())
    fit(TrainConfig(width=4, epochs=1, train_subset=64, seed=3), digits, progress=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.get_rng_state(), before[0]) and (np.random.get_state()[1] == before[1]).all()
    assert random.getstate() == before[2] and torch.get_num_threads() == threads


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"activation": "relu", "threshold": 0.5}, "applies only to activation='fatrelu'"),
        ({"width": "abc"}, "'width' must be int"),
        ({"lr": "0.1"}, "'lr' must be float"),
        ({"train_subset": 1.5}, "'train_subset' must be int or null"),
        ({"quantize_first_last": 1}, "must be bool"),
    ],
)
def test_meaningless_or_mistyped_configs_are_named_errors(fields, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**TrainConfig().to_dict(), **fields})
