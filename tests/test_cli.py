import subprocess
import sys

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
    with pytest.raises(SystemExit, match="not SCALE:VARIANT:SEED"):
        resolve_config("nonsense")


def test_train_and_campaign_commands(tmp_path, capsys):
    cache = str(tmp_path / "zoo")
    args = ["--width", "4", "--epochs", "1", "--train-subset", "128", "--cache-dir", cache, "--quiet"]
    assert main(["train", *args, "--json"]) == 0
    import json

    rec = json.loads(capsys.readouterr().out)
    key = rec["key"]
    out = tmp_path / "c.csv"
    assert main(["campaign", "--model", key, "--fault", "bitflip", "--rates", "0,0.05", "--trials", "2",
                 "--cache-dir", cache, "--out", str(out), "--quiet", "--eval-examples", "50"]) == 0
    text = capsys.readouterr().out
    assert "bitflip" in text and out.is_file() and len(out.read_text().splitlines()) == 5
    sharp = tmp_path / "s.csv"
    assert main(["sharpness", "--model", key, "--metrics", "lambda_max_fn,avg_sharpness", "--examples", "32",
                 "--directions", "3", "--cache-dir", cache, "--out", str(sharp), "--quiet"]) == 0
    assert sharp.read_text().splitlines()[0].startswith("model_id,metric,value") and len(sharp.read_text().splitlines()) == 3


def test_bad_rate_is_a_clear_error(tmp_path, capsys):
    code = main(["campaign", "--model", "smoke:standard-sgd:0", "--fault", "bitflip", "--rates", "1.5",
                 "--cache-dir", str(tmp_path), "--quiet"])
    assert code == 2 and "[0, 1]" in capsys.readouterr().err


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "flatenn", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "campaign" in r.stdout


def test_parser_rejects_unknown_fault():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["campaign", "--model", "x", "--fault", "melt", "--rates", "0.1"])
