"""Fault models on b-bit two's-complement weight codes, and seeded sparse fault-map sampling.

Fault models (``FAULT_MODELS``):
- ``bitflip`` (transient): each stored bit flips independently with probability p;
- ``stuck0`` / ``stuck1`` (permanent): each bit is stuck with probability p and then reads 0 / 1
  whatever was written, so only the stuck bits that differ from the stored value change it.

The weight memory is every quantized layer's integer codes; scales, biases and BatchNorm are
fault-free. A fault map is sampled *sparsely*: the number of faulty bits of a layer is the number of
order statistics of n uniforms below p — drawn sequentially through the Rényi representation
(exponential spacings), so it is exactly Binomial(n, p) — and the positions are the first k
distinct values of a stream of uniform integers (without replacement). Cost grows with the number
of faults, not with the model size.

Randomness comes from NumPy generators keyed by (campaign seed, layer name, trial, purpose) on the
CPU, so maps do not depend on the device, the batch size, the evaluation order or on which other
layers are hit, and every model of one architecture sees the same maps (common random numbers).
For one (seed, layer, trial) the faulty-bit set at a lower rate is a prefix — hence a subset — of
the set at any higher rate (nested maps).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

FAULT_MODELS = ("bitflip", "stuck0", "stuck1")
_PURPOSE = {"count": 1, "positions": 2}
GLOBAL_LAYER = "__all_layers__"


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
    pos = np.unique(np.asarray(list(bit_positions), dtype=np.int64))
    if pos.size == 0:
        raise ValueError("bit position set is empty")
    if pos.min() < 0 or pos.max() >= bits:
        raise ValueError(f"bit positions must be in 0..{bits - 1} for {bits}-bit codes, got {sorted(pos.tolist())}")
    return pos


def bits_label(bit_positions: Sequence[int] | None) -> str:
    """Stable text form of a bit-position set for tables: ``all`` or ``0,1,7``."""
    return "all" if bit_positions is None else ",".join(str(b) for b in sorted(set(bit_positions)))


@functools.lru_cache(maxsize=4096)
def _layer_key(layer: str) -> int:
    return int.from_bytes(hashlib.sha256(layer.encode()).digest()[:8], "little")


def _rng(seed: int, layer: str, trial: int, purpose: str) -> np.random.Generator:
    if seed < 0 or trial < 0:
        raise ValueError("campaign seed and trial index must be >= 0")
    entropy = [int(seed), _layer_key(layer), int(trial), _PURPOSE[purpose]]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def sample_count(n_bits: int, rate: float, rng: np.random.Generator) -> int:
    """Number of uniforms (of n_bits) below ``rate``: Binomial(n_bits, rate), nested in rate.

    Uses -log(1 - u_(j)) = sum_{i<j} E_i / (n - i) with iid Exp(1) E_i (Rényi), drawn in chunks of a
    fixed schedule, so a lower rate reads a prefix of the same stream.
    """
    rate = check_rate(rate)
    if rate == 0.0 or n_bits == 0:
        return 0
    if rate == 1.0:
        return n_bits
    limit = -math.log1p(-rate)
    count, total, chunk = 0, 0.0, 256
    while count < n_bits:
        m = min(chunk, n_bits - count)
        e = rng.standard_exponential(m)
        s = total + np.cumsum(e / (n_bits - count - np.arange(m, dtype=np.float64)))
        k = int(np.searchsorted(s, limit, side="right"))
        if k < m:
            return count + k
        count, total, chunk = count + m, float(s[-1]), chunk * 2
    return n_bits


def sample_positions(n_bits: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``k`` distinct values of a stream of uniform integers in [0, n_bits).

    A prefix of one stream, so sets for smaller k are subsets of sets for larger k.
    """
    if k > n_bits:
        raise ValueError(f"cannot pick {k} distinct bits out of {n_bits}")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    draws: list[np.ndarray] = []
    chunk = 256
    while True:
        draws.append(rng.integers(0, n_bits, size=chunk, dtype=np.int64))
        stream = np.concatenate(draws)
        _, first = np.unique(stream, return_index=True)
        if first.size >= k:
            return stream[np.sort(first)[:k]]
        chunk *= 2


@dataclass
class FaultMap:
    """Faulty bits of one layer, merged per weight: unique sorted flat weight indices and bit masks."""

    weight_index: np.ndarray  # int64, unique, sorted
    mask: np.ndarray  # int64 bit mask per weight
    faulty_bits: int

    @staticmethod
    def from_bit_positions(positions: np.ndarray, bit_set: np.ndarray) -> FaultMap:
        nb = len(bit_set)
        w = positions // nb
        b = bit_set[positions % nb]
        order = np.argsort(w, kind="stable")
        w, b = w[order], b[order]
        uniq, start = np.unique(w, return_index=True)
        mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), b), start) if len(w) else np.empty(0, np.int64)
        return FaultMap(uniq.astype(np.int64), mask.astype(np.int64), int(len(positions)))


def sample_layer_map(
    layer: str,
    n_weights: int,
    bits: int,
    seed: int,
    trial: int,
    rate: float,
    bit_positions: Sequence[int] | None = None,
) -> FaultMap:
    """Rate mode: each of the layer's hit-able bits is faulty with probability ``rate``."""
    bit_set = check_bit_positions(bit_positions, bits)
    n_bits = n_weights * len(bit_set)
    k = sample_count(n_bits, rate, _rng(seed, layer, trial, "count"))
    pos = sample_positions(n_bits, k, _rng(seed, layer, trial, "positions"))
    return FaultMap.from_bit_positions(pos, bit_set)


def sample_count_maps(
    layers: Sequence[tuple[str, int, int]],
    count: int,
    seed: int,
    trial: int,
    bit_positions: Sequence[int] | None = None,
) -> dict[str, FaultMap]:
    """Exact-count mode: ``count`` distinct faulty bits over all ``(name, n_weights, bits)`` layers.

    Positions are drawn in the concatenated bit space of the layers (in the given order), keyed by
    (seed, trial) alone, so one architecture sees the same maps.
    """
    if count < 0:
        raise ValueError(f"fault count must be >= 0, got {count}")
    sets = [check_bit_positions(bit_positions, b) for _, _, b in layers]
    sizes = np.array([n * len(s) for (_, n, _), s in zip(layers, sets, strict=True)], dtype=np.int64)
    total = int(sizes.sum())
    pos = sample_positions(total, count, _rng(seed, GLOBAL_LAYER, trial, "positions"))
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
