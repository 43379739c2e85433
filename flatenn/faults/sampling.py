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

Speed (the maps stay as defined above): campaigns draw a block of trials at once
(:func:`sample_rate_maps_trials`); the counts come from a cached Binomial CDF per (n, p)
(:func:`binom_quantile`, scipy's own ``ppf`` near a CDF step); the first k distinct positions of a
stream come from one sort of packed (stream, position, draw) integers per group of streams, with the
number of repeats before the k-th distinct value giving where the stream's prefix ends.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterator, Sequence
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
    return _mix64_inplace(np.array(x, dtype=np.uint64, copy=True))


def _mix64_inplace(x: np.ndarray) -> np.ndarray:
    """:func:`_mix64` overwriting its uint64 argument (no full-size temporaries beyond one shift)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def check_seed(seed: int, what: str = "campaign seed") -> int:
    """Seeds and trial indices are whole numbers in [0, 2^63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < _MAX_SEED:
        raise ValueError(f"{what} must be a whole number in [0, 2^63), got {seed!r}")
    return int(seed)


@functools.lru_cache(maxsize=256)
def _stream_bases(seed: int, layers: tuple[str, ...], purpose: str) -> np.ndarray:
    """The trial-independent part of :func:`stream_keys` (cached: campaigns ask for it every trial)."""
    lk = np.fromiter((_layer_key(n) for n in layers), dtype=np.uint64, count=len(layers))
    with np.errstate(over="ignore"):
        k = _mix64(np.uint64(seed) * _GOLDEN + np.uint64(_PURPOSE[purpose]))
        out = _mix64(k ^ lk)
    out.setflags(write=False)
    return out


def stream_keys(seed: int, layers: Sequence[str], trial: int | Sequence[int], purpose: str) -> np.ndarray:
    """One uint64 stream key per layer for (seed, layer, trial, purpose); for a sequence of trials, the keys
    of every (trial, layer), trial-major."""
    seed = check_seed(seed)
    many = np.ndim(trial) > 0
    trials = [check_seed(t, "trial index") for t in (trial if many else [trial])]
    base = _stream_bases(seed, tuple(layers), purpose)
    with np.errstate(over="ignore"):
        keys = _mix64(base[None, :] + np.asarray(trials, dtype=np.uint64)[:, None] * _M2).reshape(-1)
    return keys


def stream_draws(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``counts[i]`` uint64 draws of stream ``keys[i]``, concatenated; and their stream index.

    Draw j of a stream is ``mix64(key + (j + 1) * golden)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.uint64)
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(keys)), counts)
    x = np.arange(1, total + 1, dtype=np.uint64)  # j + 1 counted over all streams, restarted by the offsets
    with np.errstate(over="ignore"):
        x *= _GOLDEN
        if len(keys) > 1:  # key - start * golden: (start + j + 1) * golden + that = key + (j + 1) * golden (mod 2^64)
            x += (keys - (np.cumsum(counts) - counts).astype(np.uint64) * _GOLDEN)[owner]
        elif len(keys):
            x += keys[0]
    return _mix64_inplace(x), owner


def _uniform(h: np.ndarray) -> np.ndarray:
    """uint64 -> float64 uniform on (0, 1]: 53 bits plus one half, never 0; the largest draw (probability 2^-53)
    rounds to exactly 1 (kept: the maps are defined by this function)."""
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _binom_quantile_table(n: int, p: float) -> tuple[int, np.ndarray]:
    """Binomial(n, p) CDF at k = lo, lo+1, …, covering every k whose CDF step is wider than float64 resolution."""
    return _cached_table(int(n), float(p))


_TABLE_MAX = 1 << 16  # a wider Binomial (huge n near p = 1/2) is answered by scipy directly, not cached


@functools.lru_cache(maxsize=1024)
def _cached_table(n: int, p: float) -> tuple[int, np.ndarray]:
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    lo, hi = max(0, math.floor(mean - 40.0 * sd - 40)), min(n, math.ceil(mean + 40.0 * sd + 40))
    if hi - lo > _TABLE_MAX:
        return lo, np.empty(0)
    cdf = binom.cdf(np.arange(lo, hi + 1), n, p)
    cdf.setflags(write=False)
    return lo, cdf


_QUANTILE_GUARD = 1e-9  # a uniform this close to a CDF step is sent to scipy's own ppf


def binom_quantile(u: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """``scipy.stats.binom.ppf(u, n, p)`` (the smallest k with CDF(k) >= u) from a cached CDF table per (n, p).

    The table lookup is the quantile's definition; a uniform within ``1e-9`` of a CDF step, or outside the
    table, is answered by ``binom.ppf`` itself, so the result is scipy's wherever scipy's ppf is accurate to
    1e-9 (tests compare both on millions of uniforms). Saves scipy's per-call overhead, which dominates a
    small model's trial.
    """
    u, n = np.asarray(u, dtype=np.float64), np.asarray(n, dtype=np.int64)
    out = np.empty(u.shape, dtype=np.int64)
    defer = np.zeros(u.shape, dtype=bool)
    for nv in np.unique(n):
        sel = np.flatnonzero(n == nv)
        if nv == 0:
            out[sel] = 0
            continue
        lo, cdf = _binom_quantile_table(int(nv), p)
        if not cdf.size:  # too wide to tabulate
            defer[sel] = True
            continue
        us = u[sel]
        i = np.searchsorted(cdf, us, side="left")
        j = np.minimum(i, len(cdf) - 1)
        near = np.abs(cdf[j] - us) <= _QUANTILE_GUARD
        near |= (i > 0) & (np.abs(cdf[np.maximum(i - 1, 0)] - us) <= _QUANTILE_GUARD)
        outside = (i >= len(cdf)) | ((i == 0) & (lo > 0))
        out[sel] = lo + i
        defer[sel] = near | outside
    if defer.any():
        k = binom.ppf(u[defer], n[defer], p)
        out[defer] = np.nan_to_num(k, nan=0.0).astype(np.int64)
    return out


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
    with np.errstate(over="ignore"):
        h = _mix64(np.asarray(keys, dtype=np.uint64) + _GOLDEN)  # draw 0 of each stream (see stream_draws)
    return np.minimum(binom_quantile(_uniform(h), n_bits, rate), n_bits)


def _draw_budget(n_bits: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Draws that almost always hold k distinct values out of n: the expected number n (H_n - H_{n-k}),
    about k + k^2 / 2n, plus a margin of 6 standard deviations; a stream that falls short is redrawn longer."""
    n, kk = n_bits.astype(np.float64), k.astype(np.float64)
    expected = n * (np.log(n + 0.5) - np.log(np.maximum(n - kk, 0.0) + 0.5))
    return (np.ceil(expected + 6.0 * np.sqrt(np.maximum(expected - kk, 0.0) + 1.0)) + 8).astype(np.int64)


def _bit_length(v: int) -> int:
    return max(int(v), 1).bit_length()


_GROUP_DRAWS = 1 << 17  # draws handled together: the group's arrays stay in the CPU cache


def _groups(m: np.ndarray) -> Iterator[slice]:
    """Consecutive streams in groups of at most ``_GROUP_DRAWS`` draws (a longer stream alone)."""
    cum = np.concatenate(([0], np.cumsum(m)))
    a = 0
    while a < len(m):
        b = max(int(np.searchsorted(cum, cum[a] + _GROUP_DRAWS, side="right")) - 1, a + 1)
        yield slice(a, b)
        a = b


def _group_distinct(
    keys: np.ndarray, n: np.ndarray, k: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First ``k`` distinct positions of each stream of one group, from its first ``m`` draws.

    Returns (stream, position, draw index) of the kept values ordered by (stream, position), and a flag per
    stream that says whether its draws held k distinct values. One sort of packed (stream, position, draw)
    integers finds the repeats; the k-th distinct value of a stream appears at draw ``k - 1 + c``, where c
    counts the repeats before it, so the kept values are the first draws of each value up to that draw.
    """
    h, owner = stream_draws(keys, m)
    single = len(m) == 1  # one stream (a large layer): no stream bits, no per-draw gathers
    nn = n[0] if single else n[owner]
    h >>= np.uint64(11)  # _uniform in place, then times n: ((h >> 11) + 0.5) * 2^-53 * n
    u = h.astype(np.float64)
    u += 0.5
    u *= nn * 2.0**-53  # = ((a + 0.5) * 2^-53) * n exactly: scaling n < 2^53 by a power of two is exact
    pos = u.astype(np.int64)
    np.minimum(pos, nn - 1, out=pos)
    ob, pb, jb = _bit_length(len(m) - 1), _bit_length(int(n.max()) - 1), _bit_length(int(m.max()) - 1)
    if single and pb + jb <= 63:
        return _single_stream_distinct(pos, int(k[0]), int(m[0]), jb)
    packed = None
    if ob + pb + jb <= 63:
        starts = np.cumsum(m) - m
        packed = owner.astype(np.int64) << (pb + jb)
        packed |= pos << jb
        packed |= np.arange(owner.size, dtype=np.int64) - starts[owner]
        packed.sort()
        so, sj = packed >> (pb + jb), packed & ((1 << jb) - 1)
        sp = (packed >> jb) & ((1 << pb) - 1)
    else:  # too wide to pack: a stable sort on (stream, position) keeps draws in order
        starts = np.cumsum(m) - m
        draw = np.arange(owner.size, dtype=np.int64) - starts[owner]
        order = np.lexsort((draw, pos, owner))
        so, sp, sj = owner[order].astype(np.int64), pos[order], draw[order]
    repeat = np.zeros(so.size, dtype=bool)
    np.equal(sp[1:], sp[:-1], out=repeat[1:])
    repeat[1:] &= so[1:] == so[:-1]
    r_stream, r_draw = so[repeat], sj[repeat]
    order = np.lexsort((r_draw, r_stream))
    r_stream, r_draw = r_stream[order], r_draw[order]
    n_repeats = np.bincount(r_stream, minlength=len(m))
    i = np.arange(r_stream.size) - np.repeat(np.cumsum(n_repeats) - n_repeats, n_repeats)
    # a repeat at draw d, the i-th of its stream, comes before the k-th distinct value iff d - i <= k - 1
    before = np.bincount(r_stream, weights=(r_draw - i <= k[r_stream] - 1), minlength=len(m)).astype(np.int64)
    last = k - 1 + before
    keep = ~repeat
    tail_stream, tail_draw = _tail(last, m)  # the few draws past each stream's k-th distinct value
    tail = starts[tail_stream] + tail_draw
    if packed is not None:
        keep[np.searchsorted(packed, (tail_stream << (pb + jb)) | (pos[tail] << jb) | tail_draw)] = False
    else:
        keep &= sj <= last[so]
    return so[keep], sp[keep], sj[keep], m - n_repeats >= k


def _tail(last: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stream, draw index) of every draw after draw ``last[i]`` among the ``m[i]`` draws of stream i."""
    n_tail = np.maximum(m - 1 - last, 0)
    stream = np.repeat(np.arange(len(m), dtype=np.int64), n_tail)
    draw = np.arange(stream.size, dtype=np.int64) - np.repeat(np.cumsum(n_tail) - n_tail, n_tail)
    return stream, draw + (last + 1)[stream]


def _single_stream_distinct(pos: np.ndarray, k: int, m: int, jb: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_group_distinct` for a group of one stream (stream index 0), in fewer array passes."""
    packed = pos << jb
    packed |= np.arange(pos.size, dtype=np.int64)
    packed.sort()
    sp = packed >> jb
    repeat = np.empty(sp.size, dtype=bool)
    repeat[0] = False
    np.equal(sp[1:], sp[:-1], out=repeat[1:])
    r_draw = packed[repeat] & ((1 << jb) - 1)
    r_draw.sort()
    last = k - 1 + int(np.count_nonzero(r_draw - np.arange(r_draw.size) <= k - 1))
    keep = ~repeat
    tail = np.arange(last + 1, m, dtype=np.int64)  # the few draws past the k-th distinct value
    keep[np.searchsorted(packed, (pos[tail] << jb) | tail)] = False
    kept = packed[keep]
    draws = _LazyDraws(kept, jb)  # the draw indices are needed only for draw order (sample_distinct)
    return 0, kept >> jb, draws, np.array([m - r_draw.size >= k])


class _LazyDraws:
    """The draw indices of packed values, computed only if asked for (``np.asarray``)."""

    def __init__(self, packed: np.ndarray, jb: int) -> None:
        self.packed, self.jb = packed, jb

    def __array__(self, dtype=None, copy=None):
        out = self.packed & ((1 << self.jb) - 1)
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        return len(self.packed)


def _first_distinct(n_bits: np.ndarray, k: np.ndarray, keys: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Per stream i: the first ``k[i]`` distinct values of its draws mapped to [0, n_bits[i]).

    Yields (stream, position, draw index) arrays group by group, each ordered by (stream, position); a stream
    appears in exactly one group (streams whose first draws fall short are redrawn longer, later). A group of
    one stream gives its stream as a plain int.
    """
    n_bits, k = np.asarray(n_bits, dtype=np.int64), np.asarray(k, dtype=np.int64)
    if np.any(k > n_bits):
        i = int(np.argmax(k > n_bits))
        raise ValueError(f"cannot pick {k[i]} distinct bits out of {n_bits[i]}")
    todo = np.flatnonzero(k > 0)
    m = _draw_budget(n_bits, k)
    while todo.size:
        short = []
        for g in _groups(m[todo]):
            idx = todo[g]
            s, p, j, done = _group_distinct(keys[idx], n_bits[idx], k[idx], m[idx])
            if done.all():
                yield (int(idx[0]) if np.ndim(s) == 0 else idx[s]), p, j
            else:
                s = np.broadcast_to(np.int64(s), p.shape) if np.ndim(s) == 0 else s
                ok = done[s]
                yield idx[s[ok]], p[ok], np.asarray(j)[ok]
                short.append(idx[~done])
        todo = np.concatenate(short) if short else _EMPTY
        m[todo] = 2 * m[todo] + 64


def sample_distinct(n_bits: np.ndarray, k: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """Per stream i: the first ``k[i]`` distinct values of its draws mapped to [0, n_bits[i]), in draw order.

    A prefix of one stream, so the set for a smaller k is a subset of the set for a larger k.
    """
    k = np.asarray(k, dtype=np.int64)
    parts = list(_first_distinct(n_bits, k, keys))
    if not parts:
        return [_EMPTY] * len(k)
    s = np.concatenate([np.broadcast_to(np.int64(x[0]), x[1].shape) if np.ndim(x[0]) == 0 else x[0] for x in parts])
    p = np.concatenate([x[1] for x in parts])
    j = np.concatenate([np.asarray(x[2]) for x in parts])
    p = p[np.lexsort((j, s))]
    return np.split(p, np.cumsum(k)[:-1]) if len(k) else []


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
    return sample_rate_maps_trials(layers, seed, [trial], rate, bit_positions)[0]


def sample_rate_maps_trials(
    layers: Sequence[tuple[str, int, int]],
    seed: int,
    trials: Sequence[int],
    rate: float,
    bit_positions: Sequence[int] | None = None,
) -> list[dict[str, FaultMap]]:
    """:func:`sample_rate_maps` for several trials in one vectorized draw (the same maps, trial by trial).

    Campaigns sample a block of trials at once so that the per-call overhead is paid once per block.
    """
    sets, n_bits = _eligible(layers, bit_positions)
    names = [name for name, _, _ in layers]
    n_layers, n_trials = len(names), len(trials)
    n_streams = n_layers * n_trials
    nb = np.tile(n_bits, n_trials)
    k = sample_counts(nb, rate, stream_keys(seed, names, list(trials), "count"))
    widths = np.array([len(bs) for bs in sets], dtype=np.int64)
    per_bit = np.tile(widths, n_trials)
    common = int(widths[0]) if n_layers and np.all(widths == widths[0]) else 0
    shift = common.bit_length() - 1 if common and common & (common - 1) == 0 else -1
    weights: list[np.ndarray] = [_EMPTY] * n_streams
    masks: list[np.ndarray] = [_EMPTY] * n_streams
    for s, p, _ in _first_distinct(nb, k, stream_keys(seed, names, list(trials), "positions")):
        if not p.size:  # a group none of whose streams was complete yet (near rate 1): they come again, longer
            continue
        if shift >= 0:  # every layer has 2^shift eligible bits per weight (8-bit codes, all bits)
            w, b = p >> shift, p & (common - 1)
        else:
            nbs = common or per_bit[s]  # (s is an array here: layers of different widths come in groups)
            w, b = p // nbs, p % nbs
        if bit_positions is not None:  # the same sorted set for every layer (check_bit_positions)
            b = sets[0][b]
        run = np.empty(p.size, dtype=bool)
        run[0] = True
        np.not_equal(w[1:], w[:-1], out=run[1:])  # positions are sorted, so a weight's bits are adjacent
        if np.ndim(s):
            run[1:] |= s[1:] != s[:-1]
        starts = np.flatnonzero(run)
        mask = np.add.reduceat(np.left_shift(np.int64(1), b), starts)  # distinct bits of a weight: sum = OR
        if not np.ndim(s):  # one stream
            weights[s], masks[s] = w[starts], mask
            continue
        run_stream = s[starts]
        first = np.flatnonzero(np.concatenate(([True], run_stream[1:] != run_stream[:-1])))
        cut = list(first[1:])
        for st, wp, mp in zip(run_stream[first], np.split(w[starts], cut), np.split(mask, cut), strict=True):
            weights[st], masks[st] = wp, mp
    return [
        {
            name: FaultMap(weights[ti * n_layers + li], masks[ti * n_layers + li], int(k[ti * n_layers + li]))
            for li, name in enumerate(names)
        }
        for ti in range(n_trials)
    ]


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
    return faulty_codes(np.asarray(codes, dtype=np.int64), np.asarray(mask, dtype=np.int64) & full, fault_model, bits)


def faulty_codes(codes: np.ndarray, mask: np.ndarray, fault_model: str, bits: int) -> np.ndarray:
    """:func:`apply_fault_to_codes` for int64 codes in the b-bit range and masks within the low ``bits`` bits
    (what fault maps hold), in four array passes: a sign-extended code and its low b bits agree on every
    bit a mask can touch, so the fault is applied to the code directly and the low b bits sign-extended
    again as ``((u & full) ^ half) - half``."""
    if fault_model == "bitflip":
        u = codes ^ mask
    elif fault_model == "stuck0":
        u = codes & ~mask
    else:
        u = codes | mask
    u &= (1 << bits) - 1
    u ^= 1 << (bits - 1)
    u -= 1 << (bits - 1)
    return u


def apply_fault_to_tensor(codes: torch.Tensor, mask: torch.Tensor, fault_model: str, bits: int) -> torch.Tensor:
    """Torch counterpart of :func:`apply_fault_to_codes` (same dtype and device as ``codes``)."""
    out = apply_fault_to_codes(codes.detach().cpu().numpy(), mask.detach().cpu().numpy(), fault_model, bits)
    return torch.from_numpy(out).to(device=codes.device, dtype=codes.dtype)
