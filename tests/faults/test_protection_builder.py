"""One builder for data-fitted protections: what the experiment and the command line both use."""

from flatenn.core.clipping import profile_bounds
from flatenn.core.quant import frozen
from flatenn.core.train import TrainConfig, fit
from flatenn.faults.ft_clipact import select_thresholds
from flatenn.faults.protection import Ranger
from flatenn.faults.protection_builder import build_protection, selection_seed


def test_builds_each_protection_from_the_first_training_images(digits):
    model, _ = fit(TrainConfig(width=4, epochs=1, train_subset=256, seed=0), digits, progress=False)
    x, y = digits.x_train, digits.y_train
    ranger = build_protection("ranger", model, x, y, campaign_seed=5, rates=[0.02], ranger_examples=64)
    with frozen(model):
        assert ranger == Ranger(profile_bounds(model, x[:64]))
    clipact = build_protection(
        "ft-clipact", model, x, y, campaign_seed=5, rates=[0.02], clipact_examples=48, clipact_trials=2
    )
    assert clipact == select_thresholds(model, x[:48], y[:48], "bitflip", [0.02], trials=2, seed=selection_seed(5))
    assert selection_seed(5) != 5 and selection_seed(5) > 2023 * 1000 + 10_000  # past every scale's map seeds
    assert build_protection("secded", model, x, y, campaign_seed=5, rates=[]) == "secded"
