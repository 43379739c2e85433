import numpy as np
import pandas as pd
import pytest
import torch

from flatenn.core.evaluate import evaluate
from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import frozen, model_codes
from flatenn.core.results import read_table
from flatenn.faults.campaign import run_campaign
from flatenn.faults.protection import Ranger


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
    import flatenn.faults.campaign as camp
    import flatenn.faults.prefix as prefix

    clean, faulty = camp.evaluate_batches, prefix.score_batches
    # the clean pass (campaign) and the faulty passes (prefix.faulty_evaluator)
    monkeypatch.setattr(camp, "evaluate_batches", lambda *a, **k: calls.append(1) or clean(*a, **k))
    monkeypatch.setattr(prefix, "score_batches", lambda *a, **k: calls.append(1) or faulty(*a, **k))
    both = run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=3, out=out, progress=False)
    assert len(calls) == 1 + 3  # the clean pass and the three new trials only
    assert len(both) == 6 and len(read_table(out, "campaign")) == 6
    pd.testing.assert_series_equal(
        both[both["rate"] == 0.01]["accuracy"].reset_index(drop=True), first["accuracy"].reset_index(drop=True)
    )


def test_count_mode_and_bit_positions(data):
    m = _model(0)
    df = run_campaign(m, *data, "bitflip", counts=[0, 5], trials=2, bit_positions=[7], progress=False)
    assert df["faulty_bits"].tolist() == [0, 0, 5, 5] and set(df["bits"]) == {"7"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rates": [2.0]}, r"\[0, 1\]"),
        ({"rates": [0.1], "bit_positions": [8]}, "0..7"),
        ({"rates": [0.1], "trials": 0}, "trials"),
        ({}, "rates= or counts="),
    ],
)
def test_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_campaign(_model(0), *data, "bitflip", progress=False, **{"trials": 1, **kwargs})


def test_unknown_fault_model(data):
    with pytest.raises(ValueError, match="unknown fault model"):
        run_campaign(_model(0), *data, "random", rates=[0.1], progress=False)


def test_resume_key_includes_layer_filter_eval_subset_and_fingerprint(tmp_path, data):
    m, out = _model(0), tmp_path / "c.csv"
    filtered = run_campaign(
        m, *data, "bitflip", rates=[0.05], trials=2, layer_filter="classifier", out=out, progress=False
    )
    full = run_campaign(m, *data, "bitflip", rates=[0.05], trials=2, out=out, progress=False)
    assert full.attrs["computed_rows"] == 2 and set(full["layers"]) == {"all"}
    assert set(filtered["layers"]) == {"re:classifier"}
    small = run_campaign(m, data[0][:50], data[1][:50], "bitflip", rates=[0.05], trials=2, out=out, progress=False)
    assert small.attrs["computed_rows"] == 2 and set(small["n_eval"]) == {50}
    other = run_campaign(_model(1), *data, "bitflip", rates=[0.05], trials=2, out=out, progress=False)
    assert other.attrs["computed_rows"] == 2  # same model_id, another model: nothing reused
    assert other["fingerprint"].iloc[0] != full["fingerprint"].iloc[0]
    again = run_campaign(m, *data, "bitflip", rates=[0.05], trials=2, out=out, progress=False)
    assert again.attrs["computed_rows"] == 0  # resumed rows are the recorded ones (%.6g in the CSV)
    assert again["accuracy"].tolist() == pytest.approx(full["accuracy"].tolist(), rel=1e-5)


def test_rate_column_is_per_eligible_bit_in_both_modes(data):
    m = _model(0)
    n_weights = sum(
        layer.weight.numel() for layer in __import__("flatenn.core.quant").core.quant.quantized_layers(m).values()
    )
    df = run_campaign(m, *data, "bitflip", counts=[8], trials=1, bit_positions=[7], progress=False)
    assert df["rate"].iloc[0] == pytest.approx(8 / n_weights)  # one eligible bit per weight
    df = run_campaign(m, *data, "bitflip", counts=[8], trials=1, progress=False)
    assert df["rate"].iloc[0] == pytest.approx(8 / (8 * n_weights))


def test_faults_land_in_channels_last_layers(data):
    from flatenn.core.quant import frozen, quantized_layers
    from flatenn.faults.injector import FaultInjector

    m = _model(0).to(memory_format=torch.channels_last)
    with frozen(m):
        inj = FaultInjector(m)
        clean = {n: layer.codes.clone() for n, layer in quantized_layers(m).items()}
        maps = inj.sample(seed=0, trial=0, rate=0.05)
        with inj.applied(maps, "bitflip") as (_, changed):
            diff = {n: int((layer.codes != clean[n]).sum()) for n, layer in quantized_layers(m).items()}
            wdiff = sum(
                int(
                    (
                        layer.frozen_weight
                        != layer.code_scale.reshape(-1, *[1] * (layer.codes.ndim - 1)) * clean[n].float()
                    ).sum()
                )
                for n, layer in quantized_layers(m).items()
            )
        assert all(v > 0 for v in diff.values()) and sum(diff.values()) == changed == wdiff
        assert all(torch.equal(layer.codes, clean[n]) for n, layer in quantized_layers(m).items())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rates": [0.1], "batch_size": 0}, "batch_size"),
        ({"rates": [0.1], "batch_size": -1}, "batch_size"),
        ({"counts": [-1]}, "fault count"),
        ({"counts": [1.7]}, "fault count"),
        ({"rates": []}, "at least one"),
        ({"rates": [0.1], "seed": -1}, "seed"),
        ({"rates": [0.1], "bit_positions": [1.0]}, "whole numbers"),
        ({"rates": [0.1], "layer_filter": "("}, "regular expression"),
        ({"counts": [10**9]}, "eligible bits"),
    ],
)
def test_more_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_campaign(_model(0), *data, "bitflip", progress=False, **{"trials": 1, **kwargs})


@pytest.mark.slow
@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_campaigns_on_one_file_lose_nothing(tmp_path, writers):
    """N processes append to one --out file at once: every row present once, equal to a solo run."""
    import subprocess
    import sys

    script = (
        "import sys, torch\n"
        "from flatenn.faults.campaign import run_campaign\n"
        "from flatenn.core.data import load_digits\n"
        "from tests.faults.test_campaign import _model\n"
        "torch.set_num_threads(1)\n"
        "d = load_digits()\n"
        "run_campaign(_model(0), d.x_test[:60], d.y_test[:60], 'bitflip', rates=[0.01, 0.03, 0.1], trials=4,\n"
        "             model_id='m', out=sys.argv[1], progress=False)\n"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    shared, solo = tmp_path / "shared.csv", tmp_path / "solo.csv"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(shared)], cwd=root) for _ in range(writers)]
    assert all(p.wait(timeout=3600) == 0 for p in procs)  # a hang guard, never a speed check
    assert subprocess.run([sys.executable, "-c", script, str(solo)], cwd=root).returncode == 0
    a = read_table(shared, "campaign").drop(columns="run_id")
    b = read_table(solo, "campaign").drop(columns="run_id")
    assert len(a) == 12 and not a.duplicated(["rate", "trial"]).any()
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_data_loader_gives_the_tensor_paths_numbers(data):
    m = _model(0)
    x, y = data
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=False)
    a = run_campaign(m, loader, None, "stuck0", rates=[0.02, 0.05], trials=3, progress=False)
    b = run_campaign(m, x, y, "stuck0", rates=[0.02, 0.05], trials=3, batch_size=32, progress=False)
    assert a["accuracy"].tolist() == b["accuracy"].tolist() and a["loss"].tolist() == b["loss"].tolist()
    assert set(a["n_eval"]) == {len(x)}


def test_prefix_reuse_is_bit_identical_to_the_full_forward(data):
    m = _model(0)
    for name in ("features.0", "classifier", "features.[37]"):
        fast = run_campaign(m, *data, "bitflip", rates=[0.05], trials=3, layer_filter=name, progress=False)
        full = run_campaign(
            m, *data, "bitflip", rates=[0.05], trials=3, layer_filter=name, progress=False, prefix_reuse=False
        )
        assert fast["accuracy"].tolist() == full["accuracy"].tolist() and fast["loss"].tolist() == full["loss"].tolist()


def test_adaptive_trials_respect_minimum_and_target(data):
    m = _model(0)
    wide = run_campaign(
        m, *data, "stuck1", rates=[0.0, 0.3], trials=40, target_halfwidth=50.0, min_trials=6, progress=False
    )
    counts = wide.groupby("rate")["trial"].count()
    assert (counts == 6).all()  # a loose target stops every point at the minimum
    tight = run_campaign(
        m, *data, "stuck1", rates=[0.0, 0.3], trials=40, target_halfwidth=1e-6, min_trials=6, progress=False
    )
    counts = tight.groupby("rate")["trial"].count()
    assert counts[0.0] == 6 and counts[0.3] == 40  # no spread at rate 0 (half-width 0); a noisy point runs all
    fixed = run_campaign(m, *data, "stuck1", rates=[0.3], trials=40, progress=False)
    assert tight[tight["rate"] == 0.3]["accuracy"].tolist() == fixed["accuracy"].tolist()  # same maps, same order


def test_vulnerability_map_sign_bit_dominates(data, digits):
    from flatenn.core.train import TrainConfig, fit
    from flatenn.faults.vulnerability import vulnerability_map

    m, _ = fit(TrainConfig(width=4, epochs=3, seed=0), digits, progress=False)  # a trained model: faults can hurt
    df = vulnerability_map(
        m, *data, "bitflip", rate=0.2, trials=6, layers=["features.0", "classifier"], bits=[0, 7], progress=False
    )
    assert len(df) == 4 and set(df["bit"]) == {0, 7}
    drop = df.set_index(["layer", "bit"])["drop_mean"]
    assert drop[("features.0", 7)] > drop[("features.0", 0)]  # the sign bit of a conv costs more than its LSB
    assert (df["drop_ci_low"] <= df["drop_mean"]).all() and (df["drop_mean"] <= df["drop_ci_high"]).all()


def test_trials_that_change_no_weight_skip_the_forward_and_score_clean(data):
    """stuck-at-0 with one or two faulty bits: about half the trials only hit bits that are already 0."""
    m = _model(0)
    calls = []
    handle = m.register_forward_hook(lambda *_: calls.append(1))
    try:
        df = run_campaign(m, *data, "stuck0", counts=[1, 2], trials=20, progress=False)
    finally:
        handle.remove()
    unchanged = df[df["changed_weights"] == 0]
    assert 0 < len(unchanged) < len(df) and (unchanged["faulty_bits"] > 0).any()
    assert (unchanged["accuracy"] == unchanged["clean_accuracy"]).all() and (
        unchanged["loss"] == unchanged["clean_loss"]
    ).all()
    assert len(calls) == 1 + (df["changed_weights"] > 0).sum()  # one clean forward (one batch) + one per changed trial


# ---- issue 19.5 / 20.7 / 20.8 / 20.12: keys, duplicates and input forms -----------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rates": [1e-2, 1e-2]}, "given twice"),
        ({"rates": [0.01, np.float32(0.01)]}, "given twice"),
        ({"counts": [5, 5]}, "given twice"),
        ({"rates": [0.01], "model_id": ""}, "model_id"),
        ({"rates": [0.01], "model_id": " m"}, "model_id"),
        ({"rates": [0.01], "trials": 10**7 + 1}, "trial evaluations"),
    ],
)
def test_repeated_points_empty_ids_and_huge_trial_counts_are_refused(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_campaign(_model(0), *data, "bitflip", **{"trials": 2, "progress": False, **kwargs})


def test_float32_and_scalar_rates_are_the_points_the_table_writes(tmp_path, data):
    out = tmp_path / "c.csv"
    m = _model(0)
    first = run_campaign(
        m, *data, "bitflip", rates=np.array([0.01, 0.03], dtype=np.float32), trials=2, progress=False, out=out
    )
    assert sorted(set(first["rate"])) == [0.01, 0.03]
    again = run_campaign(m, *data, "bitflip", rates=0.01, trials=2, progress=False, out=out)
    assert again.attrs["computed_rows"] == 0 and len(again) == 2  # resumed: the same points as written
    assert len(read_table(out, "campaign")) == 4


def test_two_lambda_filters_never_share_rows_and_a_list_of_names_works(tmp_path, data):
    out = tmp_path / "c.csv"
    m = _model(0)
    a = run_campaign(
        m,
        *data,
        "bitflip",
        rates=[0.05],
        trials=2,
        progress=False,
        out=out,
        layer_filter=lambda n: n.startswith("features"),
    )
    b = run_campaign(
        m,
        *data,
        "bitflip",
        rates=[0.05],
        trials=2,
        progress=False,
        out=out,
        layer_filter=lambda n: n.startswith("classifier"),
    )
    assert b.attrs["computed_rows"] == 2 and set(a["layers"]) != set(b["layers"])
    names = sorted(n for n in b["layers"].iloc[0].removeprefix("names:").split(","))
    c = run_campaign(m, *data, "bitflip", rates=[0.05], trials=2, progress=False, out=out, layer_filter=names)
    assert c.attrs["computed_rows"] == 0 and np.allclose(c["accuracy"], b["accuracy"], rtol=1e-5)  # as written (%.6g)
    with pytest.raises(ValueError, match="not quantized layers"):
        run_campaign(m, *data, "bitflip", rates=[0.05], trials=1, progress=False, layer_filter=["nope"])


def test_rows_are_not_reused_for_other_evaluation_data_of_the_same_size(tmp_path, data, digits):
    out = tmp_path / "c.csv"
    m = _model(0)
    run_campaign(m, *data, "bitflip", rates=[0.05], trials=2, progress=False, out=out)
    other = (digits.x_test[120:240], digits.y_test[120:240])
    df = run_campaign(m, *other, "bitflip", rates=[0.05], trials=2, progress=False, out=out)
    assert df.attrs["computed_rows"] == 2 and read_table(out, "campaign")["eval_data"].nunique() == 2


def test_loader_numpy_inputs_and_three_argument_call(data):
    m = _model(0)
    x, y = data
    ref = run_campaign(m, x, y, "stuck0", rates=[0.05], trials=2, progress=False, batch_size=40)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=40)
    via_loader = run_campaign(m, loader, "stuck0", rates=[0.05], trials=2, progress=False)
    via_numpy = run_campaign(m, x.numpy(), y.numpy(), "stuck0", rates=[0.05], trials=2, progress=False, batch_size=40)
    assert via_loader["accuracy"].tolist() == ref["accuracy"].tolist() == via_numpy["accuracy"].tolist()


def test_trials_do_not_switch_modes_and_evaluators_need_eval_mode(data, monkeypatch):
    import flatenn.core.evaluate as evaluate
    import flatenn.faults.campaign as camp
    from flatenn.faults.prefix import faulty_evaluator

    m = _model(0)
    switches = []
    real = evaluate.eval_mode

    def counting(model):
        switches.append(1)
        return real(model)

    monkeypatch.setattr(evaluate, "eval_mode", counting)
    monkeypatch.setattr(camp, "eval_mode", counting)
    run_campaign(m, *data, "bitflip", rates=[0.01, 0.05], trials=6, progress=False)
    assert len(switches) == 2  # the campaign's own block and its clean evaluation, none per trial
    m.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        faulty_evaluator(m, [(data[0], data[1])], {"classifier"})


def test_pending_trials_counts_the_rows_a_campaign_would_compute(tmp_path, data):
    """``pending_trials`` is the number of rows ``run_campaign`` then computes, for every resume-key change; a
    data-fitted protection is matched by its name, so it need not be built to know."""
    import shutil

    from flatenn.core.clipping import profile_bounds
    from flatenn.faults.campaign import pending_trials
    from flatenn.faults.protection import FTClipAct

    m, out = _model(0), tmp_path / "c.csv"
    with frozen(m):
        clipact = FTClipAct(profile_bounds(m, data[0][:32]))
    run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=3, out=out, progress=False, model_id="m")
    run_campaign(m, *data, "stuck0", rates=[0.01], trials=2, out=out, progress=False, model_id="m", protection=clipact)
    recorded = read_table(out, "campaign")
    both = {"rates": [0.01, 0.03], "trials": 3}
    cases = [
        ("bitflip", both, 0),
        ("bitflip", {**both, "trials": 4}, 2),  # one more trial per point
        ("bitflip", {**both, "rates": [0.01, 0.03, 0.05]}, 3),  # one more point
        ("bitflip", {"rates": [0.01], "trials": 2}, 0),  # a part of what is recorded
        ("bitflip", {**both, "seed": 1}, 6),  # other maps
        ("stuck1", both, 6),
        ("bitflip", {**both, "protection": "sign-bit"}, 6),
        ("bitflip", {**both, "bit_positions": [7]}, 6),
        ("bitflip", {**both, "layer_filter": "classifier"}, 6),
        ("stuck0", {"rates": [0.01], "trials": 2, "protection": "ft-clipact"}, 0),  # matched by its name
        ("stuck0", {"rates": [0.01], "trials": 2}, 2),  # unprotected: not those rows
        ("stuck0", {"rates": [0.01], "trials": 2, "protection": "ranger"}, 2),
    ]
    for fault_model, kwargs, expect in cases:
        assert pending_trials(m, *data, fault_model, recorded, model_id="m", **kwargs) == expect, (fault_model, kwargs)
        if kwargs.get("protection") in ("ft-clipact", "ranger"):  # the campaign itself needs the built one
            kwargs = {
                **kwargs,
                "protection": clipact if kwargs["protection"] == "ft-clipact" else Ranger(clipact.bounds),
            }
        shutil.copy(out, tmp_path / "copy.csv")
        ran = run_campaign(m, *data, fault_model, out=tmp_path / "copy.csv", progress=False, model_id="m", **kwargs)
        assert ran.attrs["computed_rows"] == expect, (fault_model, kwargs)
    assert pending_trials(_model(1), *data, "bitflip", recorded, rates=[0.01], trials=3, model_id="m") == 3
    assert pending_trials(m, data[0][:50], data[1][:50], "bitflip", recorded, rates=[0.01], trials=3, model_id="m") == 3
    assert pending_trials(m, *data, "bitflip", recorded.iloc[:0], rates=[0.01], trials=3, model_id="m") == 3


def test_an_interrupted_campaign_keeps_its_finished_trials_and_resumes_to_the_same_rows(tmp_path, data, monkeypatch):
    """Rows are written at the end and at most every CHECKPOINT_SECONDS (a write rewrites the whole table), and
    when a campaign is interrupted its finished trials are written: resuming gives the uninterrupted rows."""
    import flatenn.faults.campaign as camp

    m = _model(0)
    run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=4, out=tmp_path / "whole.csv", progress=False)
    writes = []
    write = camp.write_schema_table
    monkeypatch.setattr(camp, "write_schema_table", lambda *a, **k: writes.append(1) or write(*a, **k))
    run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=4, out=tmp_path / "once.csv", progress=False)
    assert len(writes) == 1  # no checkpoint within CHECKPOINT_SECONDS: one write, at the end
    monkeypatch.setattr(camp, "CHECKPOINT_SECONDS", 0.0)
    run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=4, out=tmp_path / "each.csv", progress=False)
    assert len(writes) == 1 + 2  # a checkpoint after each point
    assert (
        (tmp_path / "once.csv").read_bytes()
        == (tmp_path / "each.csv").read_bytes()
        == (tmp_path / "whole.csv").read_bytes()
    )

    monkeypatch.setattr(camp, "CHECKPOINT_SECONDS", 60.0)
    import flatenn.faults.prefix as prefix

    score, seen = prefix.score_batches, []

    def interrupted(*a, **k):
        if len(seen) == 5:
            raise KeyboardInterrupt
        seen.append(1)
        return score(*a, **k)

    out = tmp_path / "cut.csv"
    with monkeypatch.context() as mp:
        mp.setattr(prefix, "score_batches", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=4, out=out, progress=False)
    assert len(read_table(out, "campaign")) == 5  # the five finished trials, written on the way out
    resumed = run_campaign(m, *data, "bitflip", rates=[0.01, 0.03], trials=4, out=out, progress=False)
    assert resumed.attrs["computed_rows"] == 3
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
