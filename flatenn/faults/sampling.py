"""Fault models on b-bit two's-complement weight codes, and seeded sparse fault-map sampling.

Fault models (``FAULT_MODELS``):
- ``bitflip`` (transient): each stored bit flips independently with probability p;
- ``stuck0`` / ``stuck1`` (permanent): each bit is stuck with probability p and then reads 0 / 1
  whatever was written, so only the stuck bits that differ from the stored value change it.

The weight memory is every quantized layer's integer codes; scales, biases and BatchNorm are
fault-free. A fault map is sampled *sparsely*: a Binomial(n, p) number of faulty bits per layer,
then that many distinct positions (without replacement). Cost grows with the number of faults, not
with the model size.

Randomness is counter-based: the j-th draw of the stream for (map seed, layer name, trial, purpose)
is SplitMix64 of a key hashed from those four values plus j, computed in NumPy on the CPU and
vectorized over all layers of a trial. Maps therefore do not depend on the device, the batch size,
the evaluation order or on which other layers are hit, and every model of one architecture sees the
same maps for the same seed (common random numbers). The number of faulty bits of a layer is the
Binomial(n, p) quantile of one uniform of its ``count`` stream, and the positions are the first k
distinct values of its ``positions`` stream; so for one (seed, layer, trial) the faulty-bit set at a
lower rate is a prefix, hence a subset, of the set at any higher rate (nested maps).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binom

FAULT_MODELS = ("bitflip", "stuck0", "stuck1")
_PURPOSE = {"count": 1, "positions": 2}
GLOBAL_LAYER = "__all_layers__"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MAX_SEED = 2**63
_EMPTY = np.empty(0, dtype=np.int64)


def check_fault_model(name: str) -> str:
    if name not in FAULT_MODELS:
        raise ValueError(f"unknown fault model {name!r}; choose one of {FAULT_MODELS}")
    return name


def check_rate(rate: float) -> float:
    """A bit error rate must be a real number in [0, 1]."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"fault rate must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"fault rate must be in [0, 1] (a bit error rate per stored bit), got {rate!r}")
    return r


def check_bit_positions(bit_positions: Sequence[int] | None, bits: int) -> np.ndarray:
    """The hit-able bit positions (0 = LSB, bits-1 = sign bit), sorted; all when None."""
    if bit_positions is None:
        return np.arange(bits, dtype=np.int64)
    raw = list(bit_positions)
    if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) for b in raw):
        raise ValueError(f"bit positions must be whole numbers (0 = LSB, {bits - 1} = sign bit), got {raw!r}")
    if any(b < 0 for b in raw):
        raise ValueError(f"bit positions must be >= 0 (0 = LSB, {bits - 1} = sign bit), got {raw!r}")
    pos = np.unique(np.asarray(raw, dtype=np.int64))
    if pos.size == 0:
        raise ValueError("bit position set is empty")
    if pos.min() < 0 or pos.max() >= bits:
        raise ValueError(f"bit positions must be in 0..{bits - 1} for {bits}-bit codes, got {sorted(pos.tolist())}")
    return pos


def bits_label(bit_positions: Sequence[int] | None) -> str:
    """Stable text form of a bit-position set for tables: ``all`` or ``0,1,7``."""
    return "all" if bit_positions is None else ",".join(str(b) for b in sorted(set(bit_positions)))


@functools.lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=4096)
def _layer_key(layer: str) -> int:
    return int.from_bytes(hashlib.sha256(layer.encode()).digest()[:8], "little")


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (a bijection of uint64 with full avalanche); wraps mod 2^64."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def check_seed(seed: int, what: str = "campaign seed") -> int:
    """Seeds and trial indices are whole numbers in [0, 2^63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < _MAX_SEED:
        raise ValueError(f"{what} must be a whole number in [0, 2^63), got {seed!r}")
    return int(seed)


def stream_keys(seed: int, layers: Sequence[str], trial: int, purpose: str) -> np.ndarray:
    """One uint64 stream key per layer for (seed, layer, trial, purpose)."""
    seed, trial = check_seed(seed), check_seed(trial, "trial index")
    lk = np.fromiter((_layer_key(n) for n in layers), dtype=np.uint64, count=len(layers))
    with np.errstate(over="ignore"):
        k = _mix64(np.uint64(seed) * _GOLDEN + np.uint64(_PURPOSE[purpose]))
        k = _mix64(k ^ lk)
        return _mix64(k + np.uint64(trial) * _M2)


def stream_draws(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``counts[i]`` uint64 draws of stream ``keys[i]``, concatenated; and their stream index."""
    owner = np.repeat(np.arange(len(keys)), counts)
    starts = np.cumsum(counts) - counts
    j = np.arange(owner.size, dtype=np.uint64) - np.repeat(starts, counts).astype(np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(keys[owner] + (j + np.uint64(1)) * _GOLDEN), owner


def _uniform(h: np.ndarray) -> np.ndarray:
    """uint64 -> float64 uniform on (0, 1) (53 bits, never 0 or 1)."""
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def sample_counts(n_bits: np.ndarray, rate: float, keys: np.ndarray) -> np.ndarray:
    """Faulty-bit count per stream: the Binomial(n, rate) quantile of the stream's first uniform.

    Exactly Binomial(n, rate) for each layer, independent across keys, and nondecreasing in ``rate``
    for a fixed key (the quantile of a fixed uniform), which makes maps nested across rates.
    """
    rate = check_rate(rate)
    n_bits = np.asarray(n_bits, dtype=np.int64)
    if rate == 0.0:
        return np.zeros(len(n_bits), dtype=np.int64)
    if rate == 1.0:
        return n_bits.copy()
    h, _ = stream_draws(keys, np.ones(len(keys), dtype=np.int64))
    k = binom.ppf(_uniform(h), n_bits, rate)
    return np.minimum(np.nan_to_num(k, nan=0.0).astype(np.int64), n_bits)


def sample_distinct(n_bits: np.ndarray, k: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """Per stream i: the first ``k[i]`` distinct values of its draws mapped to [0, n_bits[i]).

    A prefix of one stream, so the set for a smaller k is a subset of the set for a larger k.
    """
    n_bits, k = np.asarray(n_bits, dtype=np.int64), np.asarray(k, dtype=np.int64)
    if np.any(k > n_bits):
        i = int(np.argmax(k > n_bits))
        raise ValueError(f"cannot pick {k[i]} distinct bits out of {n_bits[i]}")
    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(k)
    todo = np.flatnonzero(k > 0)
    # expected draws for k distinct out of n: about k + k^2 / (2n); draw a margin, extend if short
    m = k + (k * k) // np.maximum(n_bits, 1) + 8 + k // 8
    while todo.size:
        h, owner = stream_draws(keys[todo], m[todo])
        n = n_bits[todo][owner]
        pos = np.minimum((_uniform(h) * n).astype(np.int64), n - 1)
        composite = owner.astype(np.int64) * (1 << 40) + pos  # n_bits < 2^40
        _, first = np.unique(composite, return_index=True)
        first.sort()  # stream order within each layer block
        grp = owner[first]
        distinct = np.bincount(grp, minlength=todo.size)
        rank = np.arange(first.size) - np.repeat(np.cumsum(distinct) - distinct, distinct)
        keep = rank < k[todo][grp]
        parts = np.split(pos[first[keep]], np.cumsum(np.bincount(grp[keep], minlength=todo.size))[:-1])
        short = []
        for gi, li in enumerate(todo):
            if distinct[gi] >= k[li]:
                out[li] = parts[gi]
            else:
                short.append(li)
                m[li] = 2 * m[li] + 64
        todo = np.asarray(short, dtype=np.int64)
    return out


@dataclass
class FaultMap:
    """Faulty bits of one layer, merged per weight: unique sorted flat weight indices and bit masks."""

    weight_index: np.ndarray  # int64, unique, sorted
    mask: np.ndarray  # int64 bit mask per weight
    faulty_bits: int

    @staticmethod
    def from_bit_positions(positions: np.ndarray, bit_set: np.ndarray) -> FaultMap:
        if positions.size == 0:
            return FaultMap(_EMPTY, _EMPTY, 0)
        nb = len(bit_set)
        w = positions // nb
        b = bit_set[positions % nb]
        order = np.argsort(w, kind="stable")
        w, b = w[order], b[order]
        uniq, start = np.unique(w, return_index=True)
        mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), b), start) if len(w) else np.empty(0, np.int64)
        return FaultMap(uniq.astype(np.int64), mask.astype(np.int64), int(len(positions)))


def _eligible(layers: Sequence[tuple[str, int, int]], bit_positions) -> tuple[list[np.ndarray], np.ndarray]:
    """Per layer: the hit-able bit positions and the number of eligible bits (weights x positions)."""
    sets = [check_bit_positions(bit_positions, b) for _, _, b in layers]
    return sets, np.array([n * len(bs) for (_, n, _), bs in zip(layers, sets, strict=True)], dtype=np.int64)


def sample_rate_maps(
    layers: Sequence[tuple[str, int, int]],
    seed: int,
    trial: int,
    rate: float,
    bit_positions: Sequence[int] | None = None,
) -> dict[str, FaultMap]:
    """Rate mode for ``(name, n_weights, bits)`` layers: each eligible bit is faulty with probability ``rate``.

    Eligible bits are the layer's bits at ``bit_positions`` (all when None). One vectorized draw for
    all layers; each layer's map depends only on (seed, its name, trial, rate, its size and bit set).
    """
    sets, n_bits = _eligible(layers, bit_positions)
    names = [name for name, _, _ in layers]
    k = sample_counts(n_bits, rate, stream_keys(seed, names, trial, "count"))
    pos = sample_distinct(n_bits, k, stream_keys(seed, names, trial, "positions"))
    return {name: FaultMap.from_bit_positions(p, bs) for name, p, bs in zip(names, pos, sets, strict=True)}


def sample_layer_map(
    layer: str,
    n_weights: int,
    bits: int,
    seed: int,
    trial: int,
    rate: float,
    bit_positions: Sequence[int] | None = None,
) -> FaultMap:
    """Rate mode for one layer (the same map :func:`sample_rate_maps` gives it among others)."""
    return sample_rate_maps([(layer, n_weights, bits)], seed, trial, rate, bit_positions)[layer]


def sample_count_maps(
    layers: Sequence[tuple[str, int, int]],
    count: int,
    seed: int,
    trial: int,
    bit_positions: Sequence[int] | None = None,
) -> dict[str, FaultMap]:
    """Exact-count mode: ``count`` distinct faulty bits over all eligible bits of the layers.

    Positions are drawn in the concatenated eligible-bit space of the layers (in the given order),
    keyed by (seed, trial) alone, so one architecture sees the same maps.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"fault count must be a whole number >= 0, got {count!r}")
    sets, sizes = _eligible(layers, bit_positions)
    total = int(sizes.sum())
    keys = stream_keys(seed, [GLOBAL_LAYER], trial, "positions")
    pos = sample_distinct(np.array([total]), np.array([int(count)]), keys)[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    which = np.searchsorted(offsets, pos, side="right") - 1
    return {
        name: FaultMap.from_bit_positions(pos[which == i] - offsets[i], sets[i])
        for i, (name, _, _) in enumerate(layers)
    }


def apply_fault_to_codes(codes: np.ndarray, mask: np.ndarray, fault_model: str, bits: int) -> np.ndarray:
    """Apply bit masks to b-bit two's-complement codes; returns the codes as read back (int64).

    >>> int(apply_fault_to_codes(np.array([1]), np.array([1 << 7]), "bitflip", 8)[0])
    -127
    """
    check_fault_model(fault_model)
    full = (1 << bits) - 1
    u = np.asarray(codes, dtype=np.int64) & full
    m = np.asarray(mask, dtype=np.int64) & full
    if fault_model == "bitflip":
        u = u ^ m
    elif fault_model == "stuck0":
        u = u & ~m
    else:
        u = u | m
    return np.where(u >= (1 << (bits - 1)), u - (1 << bits), u)


def apply_fault_to_tensor(codes: torch.Tensor, mask: torch.Tensor, fault_model: str, bits: int) -> torch.Tensor:
    """Torch counterpart of :func:`apply_fault_to_codes` (same dtype and device as ``codes``)."""
    out = apply_fault_to_codes(codes.detach().cpu().numpy(), mask.detach().cpu().numpy(), fault_model, bits)
    return torch.from_numpy(out).to(device=codes.device, dtype=codes.dtype)
