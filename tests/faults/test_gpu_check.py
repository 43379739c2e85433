"""benchmarks/gpu_check.py on the CPU with the digits CNN (the GPU run uses the same code on CUDA)."""

from __future__ import annotations

import json

from benchmarks import gpu_check


def test_gpu_check_runs_and_its_checks_pass_on_the_cpu(tmp_path, capsys):
    rc = gpu_check.main(["--device", "cpu", "--tiny", "--trials", "2", "--speed-trials", "4", "--out", str(tmp_path)])
    assert rc == 0
    out = json.loads((tmp_path / "gpu_check.json").read_text())
    (result,) = out["results"]
    assert out["all_checks_passed"] and result["maps_identical"] and result["deterministic"]
    assert result["max_abs_accuracy_diff_points"] == 0.0 and result["campaign_trials_per_s"] > 0
    assert "all checks passed" in capsys.readouterr().out


def test_gpu_check_detects_a_map_that_differs():
    from benchmarks.speed_setup import calibrated

    cpu = calibrated("cnn_digits", 8, 1, 8)
    other = calibrated("cnn_digits", 8, 1, 8, seed=1)  # different codes: the weight memories cannot agree
    assert not gpu_check.same_maps(cpu, other, [1e-2], 1)
    assert gpu_check.same_maps(cpu, calibrated("cnn_digits", 8, 1, 8), [1e-2], 2)
