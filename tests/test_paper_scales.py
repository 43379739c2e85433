"""The `paper` scales end to end on a tiny CIFAR-format folder (seconds, CPU; CUDA too when present).

Nothing else runs paper_resnet20 / paper_resnet18 here (no GPU, no CIFAR-10), so this is where their
bugs are found: fine-tuned sparse models (parent configs), SAQ, campaigns, sharpness, claims, report
and verify all run with epochs, subsets, rates and trials overridden to seconds. ResNet-18 keeps its
architecture at width 8 so the test stays fast; see ``test_paper_configs_fit_a_gpu`` for the full widths.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

import flatenn.repro.scales as scales_mod
from flatenn.core.models import build_model
from flatenn.core.zoo import Zoo
from flatenn.repro.experiment import Experiment
from flatenn.repro.report import build_report
from flatenn.repro.verify import verify_scale

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def write_tiny_cifar(root, n: int = 48, seed: int = 0) -> None:
    """A CIFAR-10 python-format folder with ``n`` random images per batch file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, n)
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        data[:, :1024] = np.clip(data[:, :1024].astype(int) // 4 + 24 * labels[:, None], 0, 255)  # learnable signal
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels.tolist()}, f)


def tiny(name: str) -> scales_mod.ScaleConfig:
    s = scales_mod.SCALES[name]
    rates = (1e-3, 1e-2)
    return dataclasses.replace(
        s,
        width=8 if s.model == "resnet18" else s.width,
        epochs=1,
        finetune_epochs=1,
        batch_size=32,
        train_subset=64,
        test_subset=32,
        eval_examples=32,
        rates=rates,
        trials=2,
        seeds=(0, 1),
        informative_rates={fm: rates for fm in s.fault_models},
        sweep_thresholds=(0.0, 0.5, 1.0),
        sharpness_examples=16,
        sharpness_probes=2,
        sharpness_directions=2,
        sensitivity_rate=1e-3,
        sharpness_iters=3,
        eval_batch_size=16,
    )


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["paper_resnet20", "paper_resnet18"])
def test_paper_scale_pipeline_end_to_end(tmp_path, monkeypatch, name, device):
    write_tiny_cifar(tmp_path / "data")
    monkeypatch.setenv("FLATENN_DATA", str(tmp_path / "data"))
    scale = tiny(name)
    monkeypatch.setitem(scales_mod.SCALES, name, scale)
    exp = Experiment(
        scale,
        tmp_path / "results" / name,
        zoo=Zoo(tmp_path / "zoo", device=device, progress=False),
        device=device,
        progress=False,
        reference_dir=tmp_path / "none",
    )
    exp.ensure_all()
    exp.finish()
    claims = exp.record_claims()
    assert len(claims) == 27 and claims["family_complete"].all()  # every case computed, Holm over the family
    training = exp.tables()["training"]
    sparse = training[training["activation"] == "fatrelu"]
    assert len(sparse) and (sparse["epochs"] == 1).all()  # fine-tuned from the standard parent
    assert set(exp.tables()["campaign"]["fault_model"]) == {"bitflip", "stuck0", "stuck1"}
    assert verify_scale(exp.dir) == []
    figures = build_report(tmp_path / "results")
    assert any(p.name == "claim_gaps.png" for p in figures)


def test_paper_configs_fit_a_gpu():
    """Full-width paper models: parameter counts and the activation memory of one eval batch stay modest."""
    for name in ("paper_resnet20", "paper_resnet18"):
        s = scales_mod.SCALES[name]
        cfg = s.train_config("standard-sgd", 0)
        m = build_model(cfg.model_spec(type("D", (), {"num_classes": 10, "in_channels": 3})()), 32)
        params = sum(p.numel() for p in m.parameters())
        assert params < 12e6, name
        # sharpness uses sharpness_examples at eval_batch_size per Hessian-vector product
        assert s.eval_batch_size <= 1000 and s.sharpness_examples <= 4096
