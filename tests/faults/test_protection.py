"""Inference-time protections in campaigns: each checked against what its definition says a campaign must give."""

import math

import numpy as np
import pytest
import torch

from flatenn.core.clipping import profile_bounds
from flatenn.core.evaluate import evaluate
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import frozen
from flatenn.faults.campaign import run_campaign
from flatenn.faults.injector import FaultInjector
from flatenn.faults.protection import PROTECTIONS, FTClipAct, Protection, Ranger, get_protection
from tests.helpers import calibrated

_SAME = ["model_id", "fault_model", "layers", "rate", "count", "seed", "trial", "faulty_bits", "changed_weights"]


@pytest.fixture(scope="module")
def data(digits):
    return digits.x_test[:120], digits.y_test[:120]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (64, 1, 8, 8))


def test_sign_bit_protection_is_sampling_the_other_bits(model, data):
    plain = run_campaign(model, *data, "bitflip", rates=[0.05], trials=4, progress=False, bit_positions=range(7))
    guarded = run_campaign(model, *data, "bitflip", rates=[0.05], trials=4, progress=False, protection="sign-bit")
    assert (guarded["protection"] == "sign-bit").all() and (plain["protection"] == "none").all()
    assert (guarded["bits"] == "0,1,2,3,4,5,6").all()
    cols = _SAME + ["accuracy", "loss"]
    assert guarded[cols].equals(plain[cols])
    with pytest.raises(ValueError, match="bit positions itself"):
        run_campaign(
            model, *data, "bitflip", rates=[0.05], trials=1, progress=False, protection="sign-bit", bit_positions=[0]
        )


def test_secded_corrects_every_single_fault(model, data):
    acc, loss = evaluate(model, *data)
    df = run_campaign(model, *data, "bitflip", counts=[1], trials=6, progress=False, protection="secded")
    assert (df["faulty_bits"] == 1).all() and (df["changed_weights"] == 0).all()
    assert (df["accuracy"] == acc).all() and (df["loss"] == loss).all()


@pytest.mark.parametrize("fault_model", ["bitflip", "stuck1"])
def test_secded_rows_count_what_the_protected_memory_reads(model, data, fault_model):
    df = run_campaign(model, *data, fault_model, rates=[0.01], trials=5, progress=False, protection="secded")
    with frozen(model):
        inj = FaultInjector(model, ecc="secded")
        for row in df.itertuples():
            maps = inj.sample(int(row.seed), int(row.trial), rate=0.01)
            changed = sum(inj.faulty_weights(n, m, fault_model)[0].size for n, m in maps.items())
            assert (row.faulty_bits, row.changed_weights) == (sum(m.faulty_bits for m in maps.values()), changed)


def test_ranger_at_infinite_bounds_equals_no_protection(model, data):
    open_bounds = Ranger(dict.fromkeys(profile_bounds(model, data[0]), math.inf))
    plain = run_campaign(model, *data, "bitflip", rates=[0.05], trials=4, progress=False)
    guarded = run_campaign(model, *data, "bitflip", rates=[0.05], trials=4, progress=False, protection=open_bounds)
    cols = _SAME + ["accuracy", "loss", "clean_accuracy"]
    assert guarded[cols].equals(plain[cols]) and (guarded["protection"] == "ranger").all()


def test_ranger_clean_numbers_are_the_clipped_models(model, data):
    x, y = data
    bounds = {n: 0.5 * b for n, b in profile_bounds(model, x).items()}  # tight enough to change outputs
    df = run_campaign(model, x, y, "bitflip", rates=[0.05], trials=2, progress=False, protection=Ranger(bounds))
    from flatenn.core.clipping import clipped

    with clipped(model, bounds):
        acc, loss = evaluate(model, x, y)
    assert (df["clean_accuracy"] == acc).all() and (df["clean_loss"] == loss).all()
    assert loss != evaluate(model, x, y)[1]  # the clipping did change the computation


def test_ft_clipact_zeroes_what_exceeds_its_threshold_and_keeps_the_rest(model, data):
    """FT-ClipAct's clipped ReLU (Hoang et al. 2020): x for x <= T, 0 above; at T = inf it is no protection."""
    x, y = data
    open_bounds = FTClipAct(dict.fromkeys(profile_bounds(model, x), math.inf))
    plain = run_campaign(model, x, y, "bitflip", rates=[0.05], trials=3, progress=False)
    guarded = run_campaign(model, x, y, "bitflip", rates=[0.05], trials=3, progress=False, protection=open_bounds)
    cols = _SAME + ["accuracy", "loss", "clean_accuracy"]
    assert guarded[cols].equals(plain[cols]) and (guarded["protection"] == "ft-clipact").all()
    from flatenn.core.activations import activation_modules

    name, module = next(iter(activation_modules(model).items()))
    outputs: list[torch.Tensor] = []

    def observe(_m, _i, o):  # registered after the protection's hook, so it sees the protected output
        outputs.append(o.clone())

    model.eval()
    with torch.no_grad():
        handle = module.register_forward_hook(observe)
        model(x)
        handle.remove()
        raw = outputs.pop()
        threshold = float(raw[raw > 0].median())
        with FTClipAct({name: threshold}).applied(model):
            handle = module.register_forward_hook(observe)
            model(x)
            handle.remove()
    expect = torch.where(raw > threshold, torch.zeros_like(raw), raw)  # x for x <= T, else 0 (not T: not Ranger)
    assert (expect == 0).sum() > (raw == 0).sum()  # the threshold did cut something
    assert torch.equal(outputs.pop(), expect)


def test_rows_of_one_protection_are_not_reused_for_another(model, data, tmp_path):
    out = tmp_path / "campaign.csv"
    run_campaign(model, *data, "bitflip", rates=[0.05], trials=3, progress=False, out=out)
    again = run_campaign(model, *data, "bitflip", rates=[0.05], trials=3, progress=False, out=out)
    assert again.attrs["computed_rows"] == 0
    guarded = run_campaign(
        model, *data, "bitflip", rates=[0.05], trials=3, progress=False, out=out, protection="secded"
    )
    assert guarded.attrs["computed_rows"] == 3 and (guarded["protection"] == "secded").all()
    from flatenn.core.results import read_table

    assert sorted(read_table(out, "campaign")["protection"]) == ["none"] * 3 + ["secded"] * 3


def test_registry_and_errors():
    assert set(PROTECTIONS) >= {"none", "sign-bit", "secded", "ranger", "ft-clipact"}
    assert get_protection(None).name == "none" and get_protection("secded").ecc == "secded"
    assert get_protection("sign-bit").overhead(8) == pytest.approx(1 / 8)
    assert get_protection("secded").overhead(8) == pytest.approx(8 / 64)
    with pytest.raises(ValueError, match="unknown protection"):
        get_protection("tmr")
    with pytest.raises(ValueError, match="profile_bounds"):
        get_protection("ranger")
    with pytest.raises(ValueError, match="select_thresholds"):
        get_protection("ft-clipact")
    with pytest.raises(ValueError, match="thresholds"):
        FTClipAct({})
    with pytest.raises(ValueError, match="bounds"):
        Ranger({})
    assert not Protection().transforms and Ranger({"a": 1.0}).transforms


def test_an_old_table_without_the_column_reads_as_unprotected(tmp_path, model, data):
    from flatenn.core.results import read_table

    out = tmp_path / "campaign.csv"
    run_campaign(model, *data, "bitflip", rates=[0.05], trials=2, progress=False, out=out)
    text = out.read_text().splitlines()
    col = text[0].split(",").index("protection")
    out.write_text("\n".join(",".join(np.delete(line.split(","), col)) for line in text) + "\n")
    assert (read_table(out, "campaign")["protection"] == "none").all()
    again = run_campaign(model, *data, "bitflip", rates=[0.05], trials=2, progress=False, out=out)
    assert again.attrs["computed_rows"] == 0
