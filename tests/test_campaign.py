import pandas as pd
import pytest
import torch

from flatenn.campaign import run_campaign
from flatenn.evaluate import evaluate
from flatenn.models import ModelSpec, build_model
from flatenn.quant import model_codes
from flatenn.results import read_table


def _model(seed):
    torch.manual_seed(seed)
    m = build_model(ModelSpec("cnn_digits", width=4), 8)
    m.train()
    m(torch.randn(64, 1, 8, 8))  # calibrate activation clips
    return m.eval()


@pytest.fixture(scope="module")
def data(digits):
    return digits.x_test[:120], digits.y_test[:120]


def test_rate_zero_equals_clean_accuracy(data):
    m = _model(0)
    acc, loss = evaluate(m, *data)
    df = run_campaign(m, *data, "bitflip", rates=[0.0], trials=3, progress=False)
    assert (df["accuracy"] == acc).all() and (df["loss"] == loss).all() and (df["faulty_bits"] == 0).all()
    assert (df["clean_accuracy"] == acc).all()


def test_identical_maps_for_two_models_of_one_architecture(data):
    a = run_campaign(_model(0), *data, "stuck1", rates=[0.02], trials=4, progress=False, model_id="a")
    b = run_campaign(_model(1), *data, "stuck1", rates=[0.02], trials=4, progress=False, model_id="b")
    assert a["faulty_bits"].tolist() == b["faulty_bits"].tolist()
    assert a["accuracy"].tolist() != b["accuracy"].tolist()


def test_same_results_for_two_batch_sizes(data):
    m = _model(0)
    r1 = run_campaign(m, *data, "bitflip", rates=[0.01, 0.05], trials=3, batch_size=120, progress=False)
    r2 = run_campaign(m, *data, "bitflip", rates=[0.01, 0.05], trials=3, batch_size=7, progress=False)
    assert r1["accuracy"].tolist() == r2["accuracy"].tolist()
    assert r1["loss"].tolist() == pytest.approx(r2["loss"].tolist(), rel=1e-5)


def test_codes_restored_after_campaign(data):
    m = _model(0)
    before = model_codes(m)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    run_campaign(m, *data, "bitflip", rates=[0.1], trials=2, progress=False)
    after = model_codes(m)
    assert all(torch.equal(before[k][0], after[k][0]) for k in before)
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


def test_resume_does_not_recompute(tmp_path, data, monkeypatch):
    m, out = _model(0), tmp_path / "c.csv"
    first = run_campaign(m, *data, "bitflip", rates=[0.01], trials=3, out=out, progress=False)
    calls = []
    import flatenn.campaign as camp

    orig = camp.evaluate
    monkeypatch.setattr(camp, "evaluate", lambda *a, **k: calls.append(1) or orig(*a, **k))
    both = run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=3, out=out, progress=False)
    assert len(calls) == 1 + 3  # the clean pass and the three new trials only
    assert len(both) == 6 and len(read_table(out, "campaign")) == 6
    pd.testing.assert_series_equal(both[both["rate"] == 0.01]["accuracy"].reset_index(drop=True),
                                   first["accuracy"].reset_index(drop=True))


def test_count_mode_and_bit_positions(data):
    m = _model(0)
    df = run_campaign(m, *data, "bitflip", counts=[0, 5], trials=2, bit_positions=[7], progress=False)
    assert df["faulty_bits"].tolist() == [0, 0, 5, 5] and set(df["bits"]) == {"7"}


@pytest.mark.parametrize("kwargs,match", [({"rates": [2.0]}, r"\[0, 1\]"), ({"rates": [0.1], "bit_positions": [8]}, "0..7"),
                                          ({"rates": [0.1], "trials": 0}, "trials"), ({}, "rates= or counts=")])
def test_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_campaign(_model(0), *data, "bitflip", progress=False, **{"trials": 1, **kwargs})


def test_unknown_fault_model(data):
    with pytest.raises(ValueError, match="unknown fault model"):
        run_campaign(_model(0), *data, "random", rates=[0.1], progress=False)
