"""Data set registry: ``digits`` (embedded), ``fashion_mnist`` (idx files), ``cifar10`` (python pickles).

Everything is loaded into memory as float32 NCHW tensors, standardized with statistics of the
training split. Nothing is downloaded unless ``download=True`` is passed explicitly; a missing
data set raises :class:`DatasetNotFoundError` that says how to get it.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where we looked; the message says how to obtain them."""


@dataclass
class DataSplit:
    """A data set in memory: train/test tensors plus shape facts the models need."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    in_channels: int
    input_size: int

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test, "
            f"{self.in_channels}x{self.input_size}x{self.input_size}, {self.num_classes} classes"
        )


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardization with the training split's mean and std (NCHW float32)."""
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    f = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32))  # noqa: E731
    return f(x_train), f(x_test)


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of ``n`` examples (all when n is None or >= len)."""
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


def subset_split(data: DataSplit, train_subset: int | None, test_subset: int | None, seed: int = 0) -> DataSplit:
    """The same seeded subsets :func:`load_dataset` would take, applied to an in-memory split.

    The standardization of ``data`` is kept (load_dataset standardizes with the subset's statistics).
    """
    for what, n in (("train_subset", train_subset), ("test_subset", test_subset)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"{what} must be a whole number >= 1 (or None for all), got {n!r}")

    def take(x: torch.Tensor, y: torch.Tensor, n: int | None, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        if n is None or n >= len(x):
            return x, y
        idx = torch.from_numpy(np.sort(np.random.default_rng(s).permutation(len(x))[:n]))
        return x[idx], y[idx]

    xtr, ytr = take(data.x_train, data.y_train, train_subset, seed)
    xte, yte = take(data.x_test, data.y_test, test_subset, seed + 1)
    return dataclasses.replace(data, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def _bundle(name: str, xtr, ytr, xte, yte, classes: int, train_subset, test_subset, seed) -> DataSplit:
    xtr, ytr = _subset(xtr, ytr, train_subset, seed)
    xte, yte = _subset(xte, yte, test_subset, seed + 1)
    x_train, x_test = _standardize(xtr.astype(np.float64), xte.astype(np.float64))
    return DataSplit(
        name=name,
        x_train=x_train,
        y_train=torch.from_numpy(ytr.astype(np.int64)),
        x_test=x_test,
        y_test=torch.from_numpy(yte.astype(np.int64)),
        num_classes=classes,
        in_channels=x_train.shape[1],
        input_size=x_train.shape[2],
    )


def load_digits(
    root: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    download: bool = False,
) -> DataSplit:
    """scikit-learn's embedded 8x8 digits: a fixed stratified 80/20 split (split seed 0)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = (d.images[:, None, :, :] / 16.0).astype(np.float64)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return _bundle("digits", xtr, ytr, xte, yte, 10, train_subset, test_subset, seed)


def _read_idx(path: Path) -> np.ndarray:
    """Read an idx (MNIST-format) file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(
            f"{path} cannot be read as {'a gzip' if path.suffix == '.gz' else 'an idx'} file ({e}); "
            "delete it and get the data set again"
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


FASHION_HELP = (
    "Fashion-MNIST was not found (looked in: {where}). Get it one of these ways:\n"
    "  * Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist\n"
    "    (installs to /usr/share/datasets/fashion-mnist, found automatically);\n"
    "  * put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,\n"
    "    t10k-labels-idx1-ubyte.gz in a folder and pass root=... (or set FLATENN_DATA=folder);\n"
    "  * where the network allows: pass download=True (uses torchvision)."
)


def load_fashion_mnist(
    root: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    download: bool = False,
) -> DataSplit:
    """Fashion-MNIST from idx files: ``root``, $FLATENN_DATA, Debian's location, or a download."""
    candidates: list[Path] = []
    for base in (root, os.environ.get("FLATENN_DATA")):
        if base:
            b = Path(base)
            candidates += [b, b / "fashion-mnist", b / "FashionMNIST" / "raw"]
    candidates.append(DEBIAN_FASHION_MNIST)
    if download:
        import torchvision

        target = Path(root or os.environ.get("FLATENN_DATA") or "~/.cache/flatenn/data").expanduser()
        torchvision.datasets.FashionMNIST(str(target), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(target), train=False, download=True)
        candidates.insert(0, target / "FashionMNIST" / "raw")
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for folder in candidates:
        paths = [_find_idx(folder, s) for s in stems]
        if all(paths):
            xtr, ytr, xte, yte = (_read_idx(p) for p in paths)  # type: ignore[arg-type]
            xtr = xtr[:, None].astype(np.float64) / 255.0
            xte = xte[:, None].astype(np.float64) / 255.0
            return _bundle("fashion_mnist", xtr, ytr, xte, yte, 10, train_subset, test_subset, seed)
    raise DatasetNotFoundError(FASHION_HELP.format(where=", ".join(str(c) for c in candidates)))


CIFAR_HELP = (
    "CIFAR-10 was not found (looked for cifar-10-batches-py in: {where}). Get it one of these ways:\n"
    "  * download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it into a folder\n"
    "    and pass root=... (or set FLATENN_DATA=folder);\n"
    "  * where the network allows: pass download=True (uses torchvision)."
)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 python batch holds (dicts, lists, text, bytes, numbers, NumPy arrays):
    a planted batch file cannot run code. Any other class is refused."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"),
        ("builtins", "list"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: a CIFAR-10 batch holds only arrays, lists and text"
        )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure means: not a CIFAR batch
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch (cannot unpickle: {type(e).__name__}: {e}); "
            "delete it and get the data set again"
        ) from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (holds a {type(d).__name__}, not a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (no data/labels)")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"{path}: CIFAR-10 batches hold N x 3072 bytes and N labels, found data {data.shape} and "
            f"{len(labels)} labels"
        )
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels


def load_cifar10(
    root: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    download: bool = False,
) -> DataSplit:
    """CIFAR-10 in torchvision's python format (``cifar-10-batches-py``)."""
    bases = [Path(b) for b in (root, os.environ.get("FLATENN_DATA")) if b]
    if download:
        import torchvision

        target = Path(root or os.environ.get("FLATENN_DATA") or "~/.cache/flatenn/data").expanduser()
        torchvision.datasets.CIFAR10(str(target), train=True, download=True)
        bases.insert(0, target)
    for base in bases:
        folder = base / "cifar-10-batches-py"
        files = [folder / f"data_batch_{i}" for i in range(1, 6)] + [folder / "test_batch"]
        if all(f.is_file() for f in files):
            parts = [_read_cifar_batch(f) for f in files[:5]]
            xtr = np.concatenate([p[0] for p in parts]).astype(np.float64) / 255.0
            ytr = np.concatenate([p[1] for p in parts])
            xte, yte = _read_cifar_batch(files[5])
            return _bundle(
                "cifar10", xtr, ytr, xte.astype(np.float64) / 255.0, yte, 10, train_subset, test_subset, seed
            )
    raise DatasetNotFoundError(CIFAR_HELP.format(where=", ".join(map(str, bases)) or "(no root given)"))


DATASETS: dict[str, Callable[..., DataSplit]] = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}


@dataclass(frozen=True)
class DataShape:
    """The shape facts a model is built from (what :class:`DataSplit` carries beside its tensors)."""

    name: str
    num_classes: int
    in_channels: int
    input_size: int


# per registered data set: (classes, channels, image side); lets a stored model be rebuilt without its data
SHAPES: dict[str, DataShape] = {
    "digits": DataShape("digits", 10, 1, 8),
    "fashion_mnist": DataShape("fashion_mnist", 10, 1, 28),
    "cifar10": DataShape("cifar10", 10, 3, 32),
}


def dataset_shape(name: str) -> DataShape:
    """Classes, channels and image side of a registered data set (no data is read)."""
    if name not in SHAPES:
        raise ValueError(f"unknown data set {name!r}; registered: {sorted(SHAPES)}")
    return SHAPES[name]


def load_dataset(name: str, **kwargs) -> DataSplit:
    """Load a registered data set by name (``digits``, ``fashion_mnist``, ``cifar10``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; registered: {sorted(DATASETS)}")
    return DATASETS[name](**kwargs)
