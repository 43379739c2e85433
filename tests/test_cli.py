import subprocess
import sys
from pathlib import Path

import pytest

from flatenn.cli import build_parser, main, resolve_config


def test_help_documents_every_option(capsys):
    for cmd in ("train", "campaign", "sharpness"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert "--cache-dir" in out and "--device" in out


def test_model_spec_resolution():
    cfg = resolve_config("smoke:sparse-saq:1")
    assert (cfg.activation, cfg.optimizer, cfg.seed, cfg.dataset) == ("fatrelu", "saq", 1, "digits")
    with pytest.raises(ValueError, match="not SCALE:VARIANT:SEED"):
        resolve_config("nonsense")


def test_train_and_campaign_commands(tmp_path, capsys):
    cache = str(tmp_path / "zoo")
    args = ["--width", "4", "--epochs", "1", "--train-subset", "128", "--cache-dir", cache, "--quiet"]
    assert main(["train", *args, "--json"]) == 0
    import json

    rec = json.loads(capsys.readouterr().out)
    key = rec["key"]
    out = tmp_path / "c.csv"
    assert (
        main(
            [
                "campaign",
                "--model",
                key,
                "--fault",
                "bitflip",
                "--rates",
                "0,0.05",
                "--trials",
                "2",
                "--cache-dir",
                cache,
                "--out",
                str(out),
                "--quiet",
                "--eval-examples",
                "50",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "bitflip" in text and out.is_file() and len(out.read_text().splitlines()) == 5
    for protection in ("ft-clipact", "secded"):  # more rows in the same file, under their protection
        argv = ["campaign", "--model", key, "--fault", "bitflip", "--rates", "0.05", "--trials", "2"]
        argv += ["--cache-dir", cache, "--out", str(out), "--quiet", "--protection", protection]
        assert main([*argv, "--eval-examples", "50"]) == 0
    from flatenn.core.results import read_table

    assert read_table(out, "campaign").groupby("protection").size().to_dict() == {
        "none": 4,
        "ft-clipact": 2,
        "secded": 2,
    }
    sharp = tmp_path / "s.csv"
    assert (
        main(
            [
                "sharpness",
                "--model",
                key,
                "--metrics",
                "lambda_max_fn,avg_sharpness",
                "--examples",
                "32",
                "--directions",
                "3",
                "--cache-dir",
                cache,
                "--out",
                str(sharp),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        sharp.read_text().splitlines()[0].startswith("model_id,metric,value")
        and len(sharp.read_text().splitlines()) == 3
    )


def _cli_error(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


CAMPAIGN = ["campaign", "--model", "smoke:standard-sgd:0", "--fault", "bitflip", "--quiet"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--rates", "1.5"], "[0, 1]"),
        (["--rates", ","], "at least one"),
        (["--rates", "x"], "numbers"),
        (["--counts", "-1"], ">= 0"),
        (["--counts", "1.7"], "whole numbers"),
        (["--rates", "0.1", "--bits", "-1"], "bit positions must be >= 0"),
        (["--rates", "0.1", "--bits", "1.5"], "whole numbers"),
        (["--rates", "0.1", "--batch-size", "0"], "--batch-size"),
        (["--rates", "0.1", "--batch-size", "-1"], ">= 1"),
        (["--rates", "0.1", "--trials", "0"], "--trials"),
        (["--rates", "0.1", "--layers", "("], "regular expression"),
        (["--rates", "0.1", "--eval-examples", "0"], "--eval-examples"),
        (["--rates", "0.1", "--eval-examples", "-5"], "--eval-examples"),
        (["--rates", "0.1", "--device", "tpu9"], "--device"),
        (["--rates", "0.1", "--seed", "-3"], "--seed"),
        (["--rates", "0.1", "--protection", "tmr"], "--protection"),
        (["--counts", "3", "--protection", "ft-clipact"], "rate > 0"),
        (["--rates", "0.1", "--protection", "sign-bit", "--bits", "7"], "drop --bits"),
    ],
)
def test_bad_campaign_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, extra, match):
    code, err = _cli_error([*CAMPAIGN, "--cache-dir", str(tmp_path / "zoo"), *extra], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "zoo").exists()  # nothing was trained


@pytest.mark.parametrize(
    "argv,match",
    [
        (["campaign", "--model", "smoke:standard-sgd:-1", "--fault", "bitflip", "--rates", "0.1"], "seed"),
        (["campaign", "--model", "smoke:nonsense:0", "--fault", "bitflip", "--rates", "0.1"], "unknown variant"),
        (["train", "--width", "0"], "--width"),
        (["train", "--train-subset", "0"], "--train-subset"),
        (["train", "--train-subset", "-10"], "--train-subset"),
        (["train", "--threshold", "-1"], "--threshold"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--examples", "0"], "--examples"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--sigma", "-1"], "--sigma"),
        # a field the method does not read would change the cache key and be ignored
        (["train", "--optimizer", "sgd", "--rho", "0.1"], "--rho"),
        (["train", "--optimizer", "clip", "--rho", "0.1", "--w-max", "0.1"], "--rho"),
        (["train", "--optimizer", "saq", "--p-train", "0.01"], "--p-train"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "100000000"], "--epochs"),
        (["train", "--width", "1000000"], "--width"),
        (["train", "--seed", "99999999999999999999"], "--seed"),
        (
            ["campaign", "--model", "smoke:standard-sgd:99999999999999999999", "--fault", "bitflip", "--rates", "0.1"],
            "seed",
        ),
        (["campaign", "--model", "smoke:standard-sgd", "--fault", "bitflip", "--rates", "0.1"], "seed is missing"),
        (["sharpness", "--model", "smoke:standard-sgd", "--examples", "10"], "seed is missing"),
        (["power", "--scale", "smoke", "--power", "1.5"], "--power"),
        (["power", "--scale", "smoke", "--power", "0"], "--power"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--examples", "1000000000"], "--examples"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--probes", "1000000000"], "--probes"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--directions", "1000000000"], "--directions"),
        (
            ["campaign", "--model", "smoke:standard-sgd:0", "--fault", "bitflip", "--rates", ",".join(["0.1"] * 5000)],
            "--rates",
        ),
        (["campaign", "--model", "smoke:standard-sgd:0", "--fault", "bitflip", "--counts", "0-100000"], "counts"),
        (["verify", "--no-remeasure", "--remeasure", "5"], "--no-remeasure"),
    ],
)
def test_other_bad_input(tmp_path, capsys, argv, match):
    cache = [] if argv[0] in ("power", "verify") else ["--cache-dir", str(tmp_path / "zoo")]
    code, err = _cli_error([*argv, *cache], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "zoo").exists()


def test_a_method_field_the_method_reads_is_accepted_and_keyed(tmp_path, capsys):
    """--rho with SAQ is its hyper-parameter: accepted, and two radii are two models."""
    from flatenn.cli import check_method_fields
    from flatenn.core.train import TrainConfig

    check_method_fields({"optimizer": "saq", "rho": 0.1})
    check_method_fields({"optimizer": "clip", "w_max": 0.1})
    a, b = (TrainConfig(optimizer="saq", rho=r) for r in (0.05, 0.1))
    assert a.key() != b.key()


def test_a_campaign_at_rate_one_flips_every_bit(tmp_path, capsys):
    """Rate 1 (every stored bit faulty) runs, and every bit of every weight is counted."""
    cache, key = _tiny_model(tmp_path, capsys, subset=128)
    out = tmp_path / "c.parquet"
    argv = [
        "campaign",
        "--model",
        key,
        "--fault",
        "bitflip",
        "--rates",
        "1,0.95",
        "--trials",
        "3",
        "--cache-dir",
        cache,
        "--eval-examples",
        "20",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    from flatenn.core.results import read_table

    rows = read_table(out, "campaign")
    at_one = rows[rows["rate"] == 1.0]
    assert len(at_one) == 3 and (at_one["faulty_bits"] == at_one["faulty_bits"].iloc[0]).all()
    assert (rows.loc[rows["rate"] == 0.95, "faulty_bits"] < at_one["faulty_bits"].iloc[0]).all()


def test_bad_out_and_config_files(tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "zoo")]
    code, err = _cli_error([*CAMPAIGN, "--rates", "0.1", "--out", str(tmp_path), *cache], capsys)
    assert code == 2 and "is a folder" in err
    other = tmp_path / "t.csv"
    other.write_text("model_id,metric,value\n")
    code, err = _cli_error([*CAMPAIGN, "--rates", "0.1", "--out", str(other), *cache], capsys)
    assert code == 2 and "not a campaign table" in err
    for text in ("[1, 2]", '{"no_such_field": 1}', "{not json"):
        cfg = tmp_path / "cfg.json"
        cfg.write_text(text)
        code, err = _cli_error(
            ["campaign", "--model", str(cfg), "--fault", "bitflip", "--rates", "0.1", *cache], capsys
        )
        assert code == 2 and "not a valid training config" in err
    assert not (tmp_path / "zoo").exists()


@pytest.mark.slow
def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "flatenn", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "campaign" in r.stdout


def test_parser_rejects_unknown_fault():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["campaign", "--model", "x", "--fault", "melt", "--rates", "0.1"])


def test_campaign_on_a_model_flatenn_did_not_build(tmp_path, capsys):
    import torch

    from tests.factories import tiny_digits_cnn

    weights = tmp_path / "w.pt"
    torch.save(tiny_digits_cnn().state_dict(), weights)
    out = tmp_path / "c.csv"
    assert (
        main(
            [
                "campaign",
                "--model",
                "tests.factories:tiny_digits_cnn",
                "--weights",
                str(weights),
                "--data",
                "digits",
                "--fault",
                "stuck1",
                "--rates",
                "0.01,0.1",
                "--trials",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "stuck1" in capsys.readouterr().out and len(out.read_text().splitlines()) == 5
    code, err = _cli_error(
        [
            "campaign",
            "--model",
            "torchvision:resnet18",
            "--data",
            "digits",
            "--fault",
            "bitflip",
            "--rates",
            "0.1",
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "does not accept digits inputs" in err
    code, err = _cli_error(
        ["campaign", "--model", "tests.factories:tiny_digits_cnn", "--fault", "bitflip", "--rates", "0.1"], capsys
    )
    assert code == 2 and "--data" in err


def test_vulnerability_command_writes_table_and_heat_map(tmp_path, capsys):
    cache, key = _tiny_model(tmp_path, capsys, subset=128)
    out = tmp_path / "v.csv"
    assert (
        main(
            [
                "vulnerability",
                "--model",
                key,
                "--fault",
                "bitflip",
                "--rate",
                "0.1",
                "--trials",
                "2",
                "--layers",
                "classifier",
                "--bits",
                "6-7",
                "--eval-examples",
                "60",
                "--cache-dir",
                cache,
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 3 and out.with_suffix(".png").stat().st_size > 1000


# ---- issue 19.4, 19.9, 20.2, 20.3, 20.8, 20.10, 20.11: one line, exit 2, before any work -----------------


@pytest.mark.parametrize(
    "argv,match",
    [
        ([*CAMPAIGN, "--rates", "0.1", "--w-bits", "4"], "--w-bits applies only to your own model"),
        ([*CAMPAIGN, "--rates", "0.1", "--weights", "x.pt"], "--weights applies only"),
        ([*CAMPAIGN, "--rates", "0.1", "--data", "cifar10"], "--data applies only"),
        ([*CAMPAIGN, "--rates", "0.1", "--bits", "8"], "bit positions are 0..7"),
        ([*CAMPAIGN, "--rates", "0.1", "--trials", "999999999999999999"], "--trials"),
        ([*CAMPAIGN, "--rates", "1e-2,1e-2"], "given twice"),
        (["train", "--model-spec", "smoke:standard-sgd:0", "--width", "99"], "--width would be ignored"),
        (["train", "--activation", "relu", "--threshold", "0.5"], "applies only to activation='fatrelu'"),
        (["train", "--device", "cuda:7"], "--device"),
        (["record", "--scale", "smoke", "--device", "cuda:7"], "--device"),
        (
            ["vulnerability", "--model", "smoke:standard-sgd:0", "--fault", "bitflip", "--rate", "1e-2,0.5"],
            "one bit error rate",
        ),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--sigma", "inf"], "finite"),
        (["sharpness", "--model", "smoke:standard-sgd:0", "--w-bits", "4"], "applies only"),
    ],
)
def test_conflicting_or_meaningless_options_are_one_line_before_any_work(tmp_path, capsys, argv, match):
    import torch

    if "cuda" in " ".join(argv) and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    code, err = _cli_error([*argv, "--cache-dir", str(tmp_path / "zoo")], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "zoo").exists()  # nothing was trained


def _tiny_model(tmp_path, capsys, subset: int = 64) -> tuple[str, str]:
    """(cache folder, key) of a 1-epoch width-4 digits model trained through the CLI on ``subset`` images."""
    import json

    cache = str(tmp_path / "zoo")
    argv = ["train", "--width", "4", "--epochs", "1", "--train-subset", str(subset), "--cache-dir", cache]
    assert main([*argv, "--quiet", "--json"]) == 0
    return cache, json.loads(capsys.readouterr().out)["key"]


def test_vulnerability_eval_examples_beyond_the_test_set_is_an_error(tmp_path, capsys):
    cache, key = _tiny_model(tmp_path, capsys)
    code, err = _cli_error(
        [
            "vulnerability",
            "--model",
            key,
            "--fault",
            "bitflip",
            "--eval-examples",
            "100000",
            "--cache-dir",
            cache,
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "only 360 examples" in err


def test_an_edited_cache_record_is_refused_on_the_cache_key_path(tmp_path, capsys):
    import json

    folder, key = _tiny_model(tmp_path, capsys)
    cache = Path(folder)
    meta = json.loads((cache / f"{key}.json").read_text())
    meta["record"]["config"]["epochs"] = 2  # another config: would train another model and report it
    (cache / f"{key}.json").write_text(json.dumps(meta))
    before = sorted(p.name for p in cache.iterdir())
    code, err = _cli_error(
        [
            "campaign",
            "--model",
            key,
            "--fault",
            "bitflip",
            "--rates",
            "0.1",
            "--trials",
            "1",
            "--cache-dir",
            str(cache),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "cannot be trusted" in err
    assert sorted(p.name for p in cache.iterdir()) == before  # nothing trained


def test_bad_files_and_folders_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"width": "abc"}')
    code, err = _cli_error(["train", "--model-spec", str(cfg), "--cache-dir", str(tmp_path / "zoo")], capsys)
    assert code == 2 and "'width' must be int" in err
    f = tmp_path / "file.txt"
    f.write_text("x")
    for cmd in ("report", "verify"):
        code, err = _cli_error([cmd, "--results-dir", str(f)], capsys)
        assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    code, err = _cli_error(["reproduce", "--scale", "bogus"], capsys)
    assert code == 2 and "unknown scale 'bogus'" in err
    code, err = _cli_error(["reproduce", "--results-dir", str(f)], capsys)
    assert code == 2 and "is a file" in err


def test_an_own_model_with_the_wrong_number_of_classes_is_one_line(tmp_path, capsys):
    code, err = _cli_error(
        [
            "campaign",
            "--model",
            "tests.factories:seven_class_cnn",
            "--data",
            "digits",
            "--fault",
            "bitflip",
            "--rates",
            "0.1",
            "--trials",
            "1",
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "10 classes" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_and_keeps_finished_rows(tmp_path, capsys, monkeypatch):
    import errno

    import flatenn.core.atomic as atomic

    cache, key = _tiny_model(tmp_path, capsys)
    out = tmp_path / "c.csv"
    argv = [
        "campaign",
        "--model",
        key,
        "--fault",
        "bitflip",
        "--rates",
        "0.05,0.1",
        "--trials",
        "2",
        "--cache-dir",
        cache,
        "--out",
        str(out),
        "--quiet",
        "--eval-examples",
        "40",
    ]
    real, writes = atomic.os.replace, []

    def replace(src, dst):
        writes.append(dst)
        if len(writes) == 2:  # the second rate's rows: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr("flatenn.faults.campaign.CHECKPOINT_SECONDS", 0.0)  # rows written after each rate
    code, err = _cli_error(argv, capsys)
    assert code == 28 and "the disk is full" in err and str(out) in err and len(err.strip().splitlines()) == 1
    assert len(out.read_text().splitlines()) == 3  # the first rate's rows are kept whole
    monkeypatch.undo()
    assert main(argv) == 0 and len(out.read_text().splitlines()) == 5  # and the run resumes


def test_power_command_prints_seeds_per_primary_case(capsys):
    assert main(["power", "--scale", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "sparse_vs_standard[acc_gap]" in out and "v2: primary cases (4)" in out and "seeds_needed" in out


@pytest.mark.slow
def test_verdicts_command_recomputes_both_plans_from_the_csvs(capsys):
    assert main(["verdicts", "--scale", "smoke", "--plan", "v1"]) == 0
    out = capsys.readouterr().out
    assert "plan v1" in out and "the first 5 seeds" in out and "sparse_vs_standard[up_to]" in out
    assert main(["verdicts", "--scale", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "plan v2" in out and "primary" in out and "claim2" in out
    assert main(["verdicts", "--scale", "ablation_base", "--plan", "v2"]) == 2
    assert "plan v2 declares no looks for scale ablation_base" in capsys.readouterr().err
