import pickle

import numpy as np
import pytest
import torch

from flatenn.core.data import (
    DatasetNotFoundError,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
)


def test_digits_split_shapes_and_stratification(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    counts = np.bincount(digits.y_test.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert abs(float(digits.x_train.mean())) < 1e-5


def test_digits_split_is_fixed():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)


def test_subset_is_seeded():
    a, b, c = (
        load_digits(train_subset=100, seed=1),
        load_digits(train_subset=100, seed=1),
        load_digits(train_subset=100, seed=2),
    )
    assert len(a.x_train) == 100 and torch.equal(a.y_train, b.y_train) and not torch.equal(a.y_train, c.y_train)


def _write_cifar(root, n_per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, n_per_batch)),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)


def test_cifar_loader_on_tiny_file(tmp_path):
    _write_cifar(tmp_path)
    d = load_cifar10(root=tmp_path)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    assert d.in_channels == 3 and d.input_size == 32
    m = d.x_train.mean(dim=(0, 2, 3))
    assert torch.allclose(m, torch.zeros(3), atol=1e-5)


def test_missing_cifar_error_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_cifar10(root=tmp_path)
    msg = str(e.value)
    assert "CIFAR-10" in msg and "cifar-10-python.tar.gz" in msg and "download=True" in msg


def test_missing_fashion_mnist_error(tmp_path, monkeypatch):
    monkeypatch.setattr("flatenn.core.data.DEBIAN_FASHION_MNIST", tmp_path / "nothing")
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(root=tmp_path)


def test_fashion_mnist_idx_reader(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setattr("flatenn.core.data.DEBIAN_FASHION_MNIST", tmp_path / "nothing")

    def idx(path, arr):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + arr.astype(np.uint8).tobytes())

    rng = np.random.default_rng(0)
    idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(6) % 10)
    idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (3, 28, 28)))
    idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(3))
    d = load_fashion_mnist(root=tmp_path)
    assert d.x_train.shape == (6, 1, 28, 28) and d.y_test.tolist() == [0, 1, 2]


def test_unknown_dataset():
    with pytest.raises(ValueError, match="registered"):
        load_dataset("imagenet")


@pytest.mark.parametrize("content,match", [(b"not a pickle", "cannot unpickle"), (None, "3072")])
def test_damaged_cifar_batch_is_a_named_error(tmp_path, content, match):
    _write_cifar(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    if content is None:  # wrong shape
        with open(bad, "wb") as f:
            pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    else:
        bad.write_bytes(content)
    with pytest.raises(ValueError, match=match) as e:
        load_cifar10(root=tmp_path)
    assert "data_batch_3" in str(e.value)


def test_non_gzip_gz_idx_file_is_a_named_error(tmp_path):
    from flatenn.core.data import _read_idx

    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(b"plain bytes, not gzip")
    with pytest.raises(ValueError, match="gzip") as e:
        _read_idx(p)
    assert str(p) in str(e.value)


def test_a_planted_cifar_batch_runs_no_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": Payload()}, f)
    with pytest.raises(ValueError, match="refused to load io.open"):
        load_cifar10(tmp_path)
    assert not marker.exists()
