import dataclasses
import warnings

import pytest
import torch

from flatenn.core.zoo import Zoo


@pytest.fixture
def zoo(tmp_path):
    return Zoo(tmp_path, device="cpu", progress=False)


def test_miss_then_hit_returns_same_model(zoo, tiny_config, digits):
    zoo._data[(tiny_config.dataset, tiny_config.train_subset, tiny_config.test_subset)] = digits
    assert not zoo.has(tiny_config)
    m1, r1 = zoo.get(tiny_config)
    assert zoo.has(tiny_config)
    m2, r2 = zoo.get(tiny_config)
    assert r2.wall_time_s == r1.wall_time_s  # loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_corrupt_entry_is_retrained_with_warning(zoo, tiny_config, damage):
    _, r1 = zoo.get(tiny_config)
    pt, meta = zoo.paths(tiny_config)
    if damage == "truncate":
        pt.write_bytes(pt.read_bytes()[:100])
    elif damage == "flip":
        b = bytearray(pt.read_bytes())
        b[len(b) // 2] ^= 0xFF
        pt.write_bytes(bytes(b))
    else:
        meta.write_text("{not json")
    with pytest.warns(UserWarning, match="corrupt or stale"):
        _, r2 = zoo.get(tiny_config)
    assert r2.clean_accuracy == r1.clean_accuracy  # retrained deterministically
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.get(tiny_config)  # the rewritten entry is trusted again


def test_finetuned_sparse_model_through_zoo(zoo, tiny_config):
    child = dataclasses.replace(tiny_config, activation="fatrelu", target_sparsity=0.8, parent=tiny_config)
    model, rec = zoo.get(child)
    assert zoo.has(tiny_config)  # parent trained first
    assert rec.threshold > 0 and rec.sparsity > 0.6
    from flatenn.core.activations import FATReLU

    assert all(m.threshold == rec.threshold for m in model.modules() if isinstance(m, FATReLU))
    model2, _ = zoo.get(child)
    assert all(m.threshold == rec.threshold for m in model2.modules() if isinstance(m, FATReLU))


@pytest.mark.parametrize("field,value", [("threshold", 0.25), ("clean_accuracy", 12.5)])
def test_hand_edited_record_is_not_trusted(zoo, tiny_config, field, value):
    import json

    _, r1 = zoo.get(tiny_config)
    _, meta = zoo.paths(tiny_config)
    doc = json.loads(meta.read_text())
    doc["record"][field] = value
    meta.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="record or fingerprint was changed"):
        _, r2 = zoo.get(tiny_config)
    assert getattr(r2, field) != value  # retrained: the edit never reaches a result


def test_read_only_cache_missing_an_entry_is_one_clear_error(tmp_path, tiny_config, monkeypatch):
    import flatenn.core.zoo as zoo_mod

    cache = tmp_path / "ro"
    cache.mkdir()
    real = zoo_mod.os.access
    monkeypatch.setattr(zoo_mod.os, "access", lambda p, m: False if str(p) == str(cache) else real(p, m))
    with pytest.raises(ValueError, match="not writable"):
        Zoo(cache, device="cpu", progress=False).get(tiny_config)


def test_stale_temp_files_of_an_entry_are_cleaned(zoo, tiny_config):
    zoo.cache_dir.mkdir(parents=True, exist_ok=True)
    stale = zoo.cache_dir / f"{tiny_config.key()}.pt.abc123.tmp"
    stale.write_bytes(b"half a file")
    zoo.get(tiny_config)
    assert not stale.exists() and zoo.has(tiny_config)
