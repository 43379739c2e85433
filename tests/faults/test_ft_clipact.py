"""FT-ClipAct's threshold search: each layer's threshold is the candidate whose seeded campaign scores best."""

import math

import pytest

from flatenn.core.clipping import profile_bounds
from flatenn.core.quant import frozen
from flatenn.core.train import TrainConfig, fit
from flatenn.faults.campaign import run_campaign
from flatenn.faults.ft_clipact import select_thresholds
from flatenn.faults.protection import FTClipAct

FRACTIONS = (0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def data(digits):
    return digits.x_train[:96], digits.y_train[:96]


@pytest.fixture(scope="module")
def model(digits):
    """A trained model (faults and thresholds change its accuracy; an untrained one is at chance whatever they are)."""
    m, _ = fit(TrainConfig(width=4, epochs=2, seed=0), digits, progress=False)
    return m


def _score(model, x, y, bounds) -> float:
    rows = run_campaign(
        model, x, y, "bitflip", rates=[0.02], trials=3, seed=7, progress=False, protection=FTClipAct(bounds)
    )
    return float(rows["accuracy"].mean())


def test_each_threshold_is_the_best_scoring_candidate_given_the_layers_before_it(model, data):
    x, y = data
    chosen = select_thresholds(model, x, y, "bitflip", rates=[0.02], trials=3, seed=7, fractions=FRACTIONS)
    with frozen(model):
        largest = profile_bounds(model, x)
    assert list(chosen.bounds) == list(largest)  # every activation module, in forward order
    bounds, distinct = dict(largest), []
    for name, top in largest.items():
        scores = {f: _score(model, x, y, {**bounds, name: f * top}) for f in sorted(FRACTIONS, reverse=True)}
        best = max(scores.values())
        first_best = next(f for f, s in scores.items() if s == best)  # ties: the larger threshold
        assert chosen.bounds[name] == first_best * top
        bounds[name] = chosen.bounds[name]
        distinct.append(len(set(scores.values())) > 1)
    assert any(distinct)  # the candidates did score differently: the search had something to choose
    assert select_thresholds(model, x, y, "bitflip", rates=[0.02], trials=3, seed=7, fractions=FRACTIONS) == chosen


def test_only_the_largest_clean_output_as_candidate_gives_the_profiled_bounds(model, data):
    x, y = data
    chosen = select_thresholds(model, x, y, rates=[0.02], trials=1, fractions=(1.0,))
    with frozen(model):
        assert chosen.bounds == profile_bounds(model, x)
    assert not any(m.is_frozen for m in (model.modules()) if hasattr(m, "is_frozen"))  # left as it was


@pytest.mark.parametrize("fractions", [(), (0.0, 0.5), (1.5,), (math.nan,)])
def test_bad_candidates_are_refused(model, data, fractions):
    with pytest.raises(ValueError, match="fractions"):
        select_thresholds(model, *data, rates=[0.02], trials=1, fractions=fractions)


def test_no_rates_is_refused(model, data):
    with pytest.raises(ValueError, match="rate"):
        select_thresholds(model, *data, rates=[], trials=1)
