"""Model factories the CLI tests load as ``tests.factories:NAME`` (models flatenn did not build)."""

from torch import nn


def tiny_digits_cnn() -> nn.Module:
    """A plain PyTorch CNN for 1x8x8 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, groups=3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 10),
    )


def seven_class_cnn() -> nn.Module:
    """A CNN with 7 outputs: the wrong number of classes for digits."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 7))
