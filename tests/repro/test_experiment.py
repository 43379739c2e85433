"""Experiment runner: resume behaviour on a tiny scale (trains 2 one-epoch digits models)."""

import dataclasses

import pytest

from flatenn.core.results import read_result, read_table, table_file
from flatenn.core.zoo import Zoo
from flatenn.repro.experiment import Experiment
from flatenn.repro.scales import SCALES


@pytest.fixture
def tiny_scale():
    return dataclasses.replace(
        SCALES["smoke"],
        name="smoke",
        width=4,
        epochs=1,
        seeds=(0,),
        rates=(0.05,),
        trials=2,
        sharpness_examples=32,
        sharpness_probes=2,
        sharpness_directions=2,
        sharpness_metrics=("lambda_max_fn", "avg_sharpness"),
        plan_version=1,  # a fixed design: the listed seeds, no sequential looks
    )


def test_resume_reuses_models_rows_and_measurements(tmp_path, tiny_scale):
    exp = Experiment(
        tiny_scale,
        tmp_path / "smoke",
        zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False),
        device="cpu",
        progress=False,
    )
    exp.ensure(("standard-sgd",), campaign=("bitflip",), sharpness=True, sparsity=True)
    camp = read_result(tmp_path / "smoke", "campaign")
    assert len(camp) == 2 and set(read_table(tmp_path / "smoke" / "sharpness.csv")["metric"]) == {
        "lambda_max_fn",
        "avg_sharpness",
    }
    exp.close()
    again = Experiment(
        tiny_scale,
        tmp_path / "smoke",
        zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False),
        device="cpu",
        progress=False,
    )
    again.ensure(("standard-sgd",), campaign=("bitflip",), sharpness=True, sparsity=True)
    assert not any(k.startswith(("train/", "campaign/", "sharpness/")) for k in again.timings)  # nothing recomputed
    again.close()
    more = dataclasses.replace(tiny_scale, sharpness_metrics=("lambda_max_fn", "avg_sharpness", "trace_fn"))
    with Experiment(
        more, tmp_path / "smoke", zoo=Zoo(tmp_path / "zoo", device="cpu", progress=False), device="cpu", progress=False
    ) as e:
        e.ensure(("standard-sgd",), sharpness=True)
    assert "trace_fn" in set(read_table(tmp_path / "smoke" / "sharpness.csv")["metric"])  # a new metric is measured


def test_one_writer_per_results_folder_and_stale_temp_files_cleaned(tmp_path):
    from flatenn.core.locks import FolderBusyError
    from flatenn.repro.experiment import Experiment
    from flatenn.repro.scales import SCALES

    d = tmp_path / "smoke"
    d.mkdir()
    (d / "campaign.csv.abc.tmp").write_text("half a row")
    first = Experiment(SCALES["smoke"], d, progress=False)
    assert not (d / "campaign.csv.abc.tmp").exists()
    with pytest.raises(FolderBusyError, match="another --results-dir"):
        Experiment(SCALES["smoke"], d, progress=False)
    first.lock.release()
    Experiment(SCALES["smoke"], d, progress=False).lock.release()


def test_read_only_results_folder_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    import os

    import flatenn.repro.experiment as experiment_mod

    d = tmp_path / "ro"
    d.mkdir()
    real = os.access
    # root ignores permission bits, so the check is exercised through what os.access reports
    monkeypatch.setattr(experiment_mod.os, "access", lambda p, m: False if str(p) == str(d) else real(p, m))
    with pytest.raises(ValueError, match="not writable"):
        experiment_mod.Experiment(SCALES["smoke"], d, progress=False)
    assert not (d / ".lock").exists()  # nothing was started


def test_an_experiment_restores_torch_settings_when_closed(tmp_path, tiny_scale):
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(False)
    scale = dataclasses.replace(tiny_scale, torch_threads=2)
    with Experiment(scale, tmp_path / "smoke", progress=False) as exp:
        assert torch.get_num_threads() == 2 and torch.are_deterministic_algorithms_enabled()
        assert exp.units and all(u.seed == 0 for u in exp.units)
    assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()


def test_protection_variants_share_the_model_and_record_their_protection(tmp_path, tiny_scale):
    """The inference-time variants run on the SGD model itself; Ranger's bounds and FT-ClipAct's thresholds come
    from training images, FT-ClipAct's search on fault maps no scoring campaign uses."""
    from flatenn.core.clipping import profile_bounds
    from flatenn.core.quant import frozen
    from flatenn.faults.ft_clipact import select_thresholds
    from flatenn.faults.protection_builder import selection_seed
    from flatenn.repro.scales import MITIGATION_VARIANTS, VARIANTS

    scale = dataclasses.replace(
        tiny_scale,
        variants={**VARIANTS, **MITIGATION_VARIANTS},
        ranger_examples=64,
        clipact_examples=48,
        clipact_trials=2,
    )
    names = (
        "standard-sgd",
        "standard-sgd+sign-bit",
        "standard-sgd+secded",
        "standard-sgd+ranger",
        "standard-sgd+ft-clipact",
    )
    zoo = Zoo(tmp_path / "zoo", device="cpu", progress=False)
    with Experiment(scale, tmp_path / "smoke", zoo=zoo, device="cpu", progress=False) as exp:
        exp.ensure(names, campaign=("bitflip",))
        model, _ = exp.model("standard-sgd", 0)
        with frozen(model):
            expect = profile_bounds(model, exp.data().x_train[:64])
        assert exp.measurements.protection("standard-sgd+ranger", 0).bounds == expect
        x, y = exp.data().x_train[:48], exp.data().y_train[:48]
        rates = scale.informative_rates["bitflip"]
        chosen = select_thresholds(model, x, y, "bitflip", rates, trials=2, seed=selection_seed(scale.map_seed(0)))
        assert exp.measurements.protection("standard-sgd+ft-clipact", 0) == chosen
        assert selection_seed(scale.map_seed(0)) not in {scale.map_seed(s) for s in range(10_000)}
    camp = read_result(tmp_path / "smoke", "campaign")
    protections = camp.groupby("variant")["protection"].agg(set).to_dict()
    assert protections == {
        "standard-sgd": {"none"},
        "standard-sgd+sign-bit": {"sign-bit"},
        "standard-sgd+secded": {"secded"},
        "standard-sgd+ranger": {"ranger"},
        "standard-sgd+ft-clipact": {"ft-clipact"},
    }
    assert camp["fingerprint"].nunique() == 1 and len(camp) == 5 * 2  # one model under five protections
    assert set(camp.loc[camp["variant"] == "standard-sgd+sign-bit", "bits"]) == {"0,1,2,3,4,5,6"}
    # resuming the folder rebuilds no protection (FT-ClipAct's search is the costly part of a resumed walk)
    # and does not re-read campaign.csv per campaign: completeness is checked on the table in memory
    import flatenn.faults.campaign as campaign_module
    import flatenn.repro.measurements as measurements_module

    def refuse(*a, **k):
        raise AssertionError("a resumed campaign rebuilt a protection or re-ran a campaign")

    before = table_file(tmp_path / "smoke", "campaign").read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(measurements_module, "build_protection", refuse)
        mp.setattr(measurements_module, "run_campaign", refuse)
        mp.setattr(campaign_module, "read_table", refuse)
        with Experiment(scale, tmp_path / "smoke", zoo=zoo, device="cpu", progress=False) as exp:
            exp.ensure(names, campaign=("bitflip",))
            assert not any(k.startswith("campaign/") for k in exp.timings)
    assert table_file(tmp_path / "smoke", "campaign").read_bytes() == before
    # one more trial per point: only the missing rows are computed, under the rebuilt protections
    more = dataclasses.replace(scale, trials=3)
    with Experiment(more, tmp_path / "smoke", zoo=zoo, device="cpu", progress=False) as exp:
        exp.ensure(names, campaign=("bitflip",))
    grown = read_result(tmp_path / "smoke", "campaign")
    assert len(grown) == 5 * 3 and grown.groupby("variant")["protection"].agg(set).to_dict() == protections
    kept = grown.merge(camp, on=["model_id", "protection", "trial"], suffixes=("", "_old"))
    assert len(kept) == 10 and (kept["accuracy"] == kept["accuracy_old"]).all()  # recorded rows untouched
