"""Writes fault maps into a frozen model's weight memory and restores it exactly.

Only the touched weights are written (unique indices, so the writes are deterministic on CUDA
too); the clean codes and dequantized values are kept on the CPU and written back on restore. The
faulty value of a weight is ``faulty_code * scale`` in float32, the same IEEE product that
:func:`flatenn.core.quant.dequantize` computes, so a faulty layer equals one loaded with faulty codes.
With ``ecc="secded"`` the writes are what a SECDED-protected memory reads back (:mod:`flatenn.faults.ecc`).
Protecting bit positions (e.g. the sign bit by ideal ECC or TMR) is sampling only the others:
``bit_positions=range(bits - 1)``.

The forward of a frozen layer reads only its dequantized weights. ``write_codes=False`` writes and restores
those alone and leaves the ``codes`` buffers clean during a trial: half the memory traffic, the same
forward. Campaigns use it; the default writes both, so a faulty layer can be inspected code by code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.quant import QuantizedWeightMixin, quantized_layers
from .ecc import secded_read
from .sampling import (
    FaultMap,
    check_bit_positions,
    check_fault_model,
    faulty_codes,
    sample_count_maps,
    sample_rate_maps_trials,
)

LayerFilter = Callable[[str], bool] | str | Sequence[str] | None
ECC_SCHEMES = (None, "secded")  # error correction of the weight memory (flatenn.faults.ecc)
DENSE_RESTORE = 0.04  # touched fraction of a layer above which restore copies the whole layer back (CPU)


def select_layers(model: nn.Module, layer_filter: LayerFilter = None) -> dict[str, QuantizedWeightMixin]:
    """Quantized layers of ``model`` kept by ``layer_filter``: a regex on names (str), a list of names, or a
    predicate on names."""
    layers = quantized_layers(model)
    if isinstance(layer_filter, (list, tuple, set, frozenset)):
        names = list(layer_filter)
        unknown = [n for n in names if n not in layers]
        if unknown or not all(isinstance(n, str) for n in names):
            raise ValueError(
                f"layer filter names {unknown or names} are not quantized layers of the model; "
                f"its layers: {list(layers)[:12]}"
            )
        layers = {n: m for n, m in layers.items() if n in set(names)}
    elif isinstance(layer_filter, str):
        try:
            pattern = re.compile(layer_filter)
        except re.error as e:
            raise ValueError(f"layer filter {layer_filter!r} is not a valid regular expression: {e}") from None
        layers = {n: m for n, m in layers.items() if pattern.search(n)}
    elif layer_filter is not None:
        if not callable(layer_filter):
            raise ValueError(f"a layer filter is a regex, a list of layer names or a predicate, got {layer_filter!r}")
        layers = {n: m for n, m in layers.items() if layer_filter(n)}
    if not layers:
        raise ValueError(
            "no quantized layers to inject faults into: the model has no QConv2d/QLinear with w_bits set"
            + (" that match the layer filter" if layer_filter is not None else "")
        )
    return layers


def _cpu_views(layer: QuantizedWeightMixin) -> tuple[np.ndarray, np.ndarray] | None:
    """Flat NumPy views of a CPU layer's codes and values that share its storage (None elsewhere).

    ``reshape`` of a non-contiguous tensor would return a copy and writes would be lost, so sharing
    is checked, not assumed.
    """
    if layer.codes.device.type != "cpu":
        return None
    codes, values = layer.codes.numpy().reshape(-1), layer.frozen_weight.detach().numpy().reshape(-1)
    if not (np.shares_memory(codes, layer.codes.numpy()) and np.shares_memory(values, layer.frozen_weight.numpy())):
        return None
    return codes, values


def _code_dtype(bits: int) -> type:
    """The smallest NumPy integer type that holds b-bit two's-complement codes."""
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


def _channel_scales(scale: np.ndarray, per_channel: int, idx: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``scale[idx // per_channel]`` for ``idx`` made of segments (one per trial) of sorted flat indices. One
    segment (a large layer's trial): channel counts from a binary search of the channel boundaries, so there is
    no per-weight division or gather; several (small blocks of trials): the division, in one call."""
    if len(sizes) != 1:
        return scale[idx // per_channel]
    bounds = np.arange(len(scale) + 1, dtype=np.int64) * per_channel
    parts, a = [], 0
    for size in sizes.tolist():
        seg = idx[a : a + size]
        parts.append(np.repeat(scale, np.diff(np.searchsorted(seg, bounds))))
        a += size
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class PreparedFaults:
    """One trial's writes, computed ahead: per layer (flat indices, faulty codes, faulty values) of the weights
    whose value changes, with the trial's faulty-bit and changed-weight counts."""

    writes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    faulty_bits: int
    changed: int


@dataclass
class _LayerMemory:
    layer: QuantizedWeightMixin
    bits: int
    codes: np.ndarray  # clean codes, flat, in the smallest integer dtype that holds b bits (gathers touch less memory)
    values: np.ndarray  # clean dequantized weights, flat float32
    scale: np.ndarray  # float32 per output channel
    per_channel: int
    cpu_views: tuple[np.ndarray, np.ndarray] | None = None  # writable views of the layer's buffers on CPU


def check_layer_maps(memory: Mapping[str, _LayerMemory], name: str, fmaps: Sequence[FaultMap]) -> None:
    """Refuse maps of one layer that its memory cannot hold: an unknown layer, a weight index outside the
    layer, a repeated or unsorted index, an empty mask, a mask bit at or above the code width, or a
    faulty-bit count that is not the number of mask bits (each would count a fault that changes nothing).
    One vectorized pass over all the maps given."""
    if name not in memory:
        raise ValueError(
            f"fault map names layer {name!r}, which is not one of the injector's quantized layers "
            f"{list(memory)[:12]}; sample maps with this injector or select that layer"
        )
    mem = memory[name]
    for f in fmaps:
        if np.ndim(f.weight_index) != 1 or np.shape(f.weight_index) != np.shape(f.mask):
            raise ValueError(f"fault map of {name}: weight_index and mask must be 1-D arrays of one length")
    sizes = np.array([f.weight_index.size for f in fmaps], dtype=np.int64)
    claimed = np.array([f.faulty_bits for f in fmaps], dtype=np.int64)
    if not sizes.sum():
        if claimed.any():
            raise ValueError(f"fault map of {name}: {claimed.max()} faulty bits but no weight index")
        return
    idx = np.concatenate([f.weight_index for f in fmaps]) if len(fmaps) > 1 else fmaps[0].weight_index
    mask = np.concatenate([f.mask for f in fmaps]) if len(fmaps) > 1 else fmaps[0].mask
    step = np.diff(idx)
    ends = np.cumsum(sizes)[:-1]
    step[ends[(ends > 0) & (ends < idx.size)] - 1] = 1  # where one map ends and the next begins
    if idx.min() < 0 or idx.max() >= mem.codes.size or (step.size and step.min() <= 0):
        raise ValueError(f"fault map of {name}: weight indices must be sorted, unique and in 0..{mem.codes.size - 1}")
    if mask.min() <= 0 or mask.max() >= 1 << mem.bits:
        raise ValueError(
            f"fault map of {name}: every mask must set at least one of the {mem.bits} code bits and none "
            f"above them (masks in 1..{(1 << mem.bits) - 1})"
        )
    ones = np.bitwise_count(mask.astype(np.int64, copy=False)).astype(np.int64)
    per_map = np.bincount(np.repeat(np.arange(len(fmaps)), sizes), weights=ones, minlength=len(fmaps))
    wrong = np.flatnonzero(per_map.astype(np.int64) != claimed)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(f"fault map of {name}: faulty_bits is {claimed[i]}, its masks set {int(per_map[i])} bits")


def _layer_memory(name: str, layer: QuantizedWeightMixin) -> _LayerMemory:
    """The clean copy of one frozen layer's weight memory that faults are applied to and restored from."""
    if not layer.is_frozen:
        raise RuntimeError("freeze the model first: use `with flatenn.core.quant.frozen(model): ...`")
    if not (layer.codes.is_contiguous() and layer.frozen_weight.is_contiguous()):
        raise RuntimeError(f"layer {name}: frozen codes are not contiguous; freeze with flatenn.core.quant.frozen")
    codes = layer.codes.detach().cpu().reshape(-1).numpy().astype(_code_dtype(layer.w_bits))
    return _LayerMemory(
        layer=layer,
        bits=layer.w_bits,
        codes=codes,
        values=layer.frozen_weight.detach().cpu().reshape(-1).numpy().copy(),
        scale=layer.code_scale.detach().cpu().numpy().astype(np.float32),
        per_channel=codes.size // layer.codes.shape[0],
        cpu_views=_cpu_views(layer),
    )


def _writes_per_trial(
    fmaps: Sequence[FaultMap], faulty: Callable[[FaultMap, np.ndarray], tuple]
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """One layer's writes for the maps of several trials, computed in one pass over their concatenation and split
    back per trial: the (indices, codes, values) of each trial and the number of weights each one changes.
    ``faulty(map, sizes)`` gives (indices, codes, values, kept) for the concatenated map."""
    if len(fmaps) == 1:
        both = fmaps[0]
    else:
        both = FaultMap(np.concatenate([f.weight_index for f in fmaps]), np.concatenate([f.mask for f in fmaps]), 0)
    sizes = np.array([f.weight_index.size for f in fmaps], dtype=np.int64)
    idx, codes, values, kept = faulty(both, sizes)
    if kept is None:  # every entry changes its weight (bit flips)
        per_trial = sizes
    else:
        per_trial = np.bincount(np.repeat(np.arange(len(fmaps)), sizes)[kept], minlength=len(fmaps))
    cut = np.cumsum(per_trial)[:-1]
    return list(zip(np.split(idx, cut), np.split(codes, cut), np.split(values, cut), strict=True)), per_trial


class FaultInjector:
    """Applies fault maps to the frozen quantized layers of a model and restores them bit-exactly.

    The weight memory is every selected layer's integer codes (scales, biases and BatchNorm are fault-free). Freeze
    the model, sample one trial's maps, evaluate inside :meth:`applied`::

        with frozen(model):
            inj = FaultInjector(model)
            maps = inj.sample(seed=0, trial=0, rate=1e-3)
            with inj.applied(maps, "bitflip") as (faulty_bits, changed_weights):
                logits = model(x)

    Maps depend only on (seed, layer name, trial, rate, layer size and bit set), never on device, batch size or
    order; rate-mode maps are nested across rates.
    """

    def __init__(
        self, model: nn.Module, layer_filter: LayerFilter = None, ecc: str | None = None, write_codes: bool = True
    ) -> None:
        """:param model: a quantized model whose layers are frozen (:func:`flatenn.core.quant.frozen`).
        :param layer_filter: which layers are weight memory: a regex, a list of names or a predicate (None: all).
        :param ecc: ``None`` (unprotected memory) or ``"secded"`` (what a SECDED(72,64) memory reads back).
        :param write_codes: also write the ``codes`` buffers (False: only the dequantized values the forward reads).
        :raises RuntimeError: for a layer that is not frozen.
        :raises ValueError: for an unknown ``ecc`` or a filter that selects no layer."""
        if ecc not in ECC_SCHEMES:
            raise ValueError(f"ecc must be one of {ECC_SCHEMES} (None: unprotected memory), got {ecc!r}")
        self.ecc = ecc
        self.write_codes = bool(write_codes)
        self.layers = select_layers(model, layer_filter)
        self.memory: dict[str, _LayerMemory] = {name: _layer_memory(name, layer) for name, layer in self.layers.items()}
        self._touched: list[tuple[str, np.ndarray]] = []

    @property
    def total_bits(self) -> int:
        return sum(m.codes.size * m.bits for m in self.memory.values())

    def eligible_bits(self, bit_positions: Sequence[int] | None = None) -> int:
        """Bits that can be faulty: every selected layer's weights times the bit positions in the set."""
        return sum(m.codes.size * len(check_bit_positions(bit_positions, m.bits)) for m in self.memory.values())

    def sample(
        self,
        seed: int,
        trial: int,
        rate: float | None = None,
        count: int | None = None,
        bit_positions: Sequence[int] | None = None,
    ) -> dict[str, FaultMap]:
        """Fault maps for one trial: per-layer rate mode, or a global exact count of faulty bits."""
        return self.sample_trials(seed, [trial], rate, count, bit_positions)[0]

    def sample_trials(
        self,
        seed: int,
        trials: Sequence[int],
        rate: float | None = None,
        count: int | None = None,
        bit_positions: Sequence[int] | None = None,
    ) -> list[dict[str, FaultMap]]:
        """:meth:`sample` for several trials (rate mode draws them in one vectorized pass; same maps)."""
        if (rate is None) == (count is None):
            raise ValueError("give exactly one of rate= or count=")
        spec = [(n, m.codes.size, m.bits) for n, m in self.memory.items()]
        if count is not None:
            return [sample_count_maps(spec, count, seed, t, bit_positions) for t in trials]
        return sample_rate_maps_trials(spec, seed, trials, rate, bit_positions)

    def prepare(self, maps: Mapping[str, FaultMap], fault_model: str) -> PreparedFaults:
        """The writes a map makes under ``fault_model`` (see :meth:`faulty_weights`), ready for :meth:`apply`."""
        return self.prepare_trials([maps], fault_model)[0]

    def prepare_trials(self, trials: Sequence[Mapping[str, FaultMap]], fault_model: str) -> list[PreparedFaults]:
        """:meth:`prepare` for several trials' maps, computed layer by layer over all trials at once."""
        check_fault_model(fault_model)
        names = {name for t in trials for name in t}
        for name in sorted(names):
            check_layer_maps(self.memory, name, [t[name] for t in trials if name in t])
        writes: list[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = [{} for _ in trials]
        changed = np.zeros(len(trials), dtype=np.int64)
        for name in self.memory:
            which = [i for i, t in enumerate(trials) if name in t and t[name].weight_index.size]
            if not which:
                continue
            fmaps = [trials[i][name] for i in which]
            if self.ecc is not None:  # correction works on each trial's words: no concatenation across trials
                parts = [self._protected(name, f, fault_model) for f in fmaps]
                per_trial = [part[0].size for part in parts]
            else:
                parts, per_trial = _writes_per_trial(
                    fmaps, lambda m, sizes, name=name: self._faulty(name, m, fault_model, sizes)
                )
            for i, part, n in zip(which, parts, per_trial, strict=True):
                if n:
                    writes[i][name] = part
                    changed[i] += n
        return [
            PreparedFaults(w, sum(m.faulty_bits for m in t.values()), int(c))
            for w, t, c in zip(writes, trials, changed, strict=True)
        ]

    def apply(self, maps: Mapping[str, FaultMap] | PreparedFaults, fault_model: str | None = None) -> tuple[int, int]:
        """Write faulty codes (maps and a fault model, or prepared writes); returns (faulty bits, weights whose
        value changed)."""
        if self._touched:
            raise RuntimeError("faults already applied: restore() first")
        if not isinstance(maps, PreparedFaults):
            if fault_model is None:
                raise ValueError("name the fault model: apply(maps, 'bitflip')")
            maps = self.prepare(maps, fault_model)
        for name, (idx, codes, values) in maps.writes.items():
            self._write(self.memory[name], idx, codes if self.write_codes else None, values)
            self._touched.append((name, idx))
        return maps.faulty_bits, maps.changed

    def _faulty(
        self, name: str, fmap: FaultMap, fault_model: str, sizes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(flat indices, faulty codes, faulty values) of the map's entries that change their weight, and which
        entries those are (None: all of them, as for bit flips). ``sizes``: the map is that many trials' maps
        concatenated (each sorted); one when None."""
        mem = self.memory[name]
        idx = fmap.weight_index
        sizes = np.array([idx.size]) if sizes is None else sizes
        old = mem.codes[idx]
        new = faulty_codes(old, fmap.mask, fault_model, mem.bits)
        kept = None
        if fault_model != "bitflip":  # a stuck bit already at its value changes nothing
            kept = new != old
            idx, new = idx[kept], new[kept]
            sizes = np.bincount(np.repeat(np.arange(len(sizes)), sizes)[kept], minlength=len(sizes))
        values = new.astype(np.float32)
        values *= _channel_scales(mem.scale, mem.per_channel, idx, sizes)
        return idx, new, values, kept

    def _protected(self, name: str, fmap: FaultMap, fault_model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The writes of one trial's map for one layer after the memory's error correction (``ecc``)."""
        mem = self.memory[name]
        idx, new, _, _ = self._faulty(name, fmap, fault_model)
        idx, new, _, _ = secded_read(mem.codes, idx, new, mem.bits)
        values = new.astype(np.float32)
        values *= mem.scale[idx // mem.per_channel]
        return idx, new, values

    def faulty_weights(self, name: str, fmap: FaultMap, fault_model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weights of layer ``name`` whose value the map changes: (flat indices, faulty codes, faulty values).

        A faulty value is ``faulty_code * scale`` in float32 (see the module docstring); weights the faults
        leave unchanged (e.g. stuck-at on a bit already at that value) are not listed.
        """
        check_fault_model(fault_model)
        if fmap.weight_index.size == 0:
            return fmap.weight_index, fmap.weight_index, np.empty(0, np.float32)
        if self.ecc is not None:
            return self._protected(name, fmap, fault_model)
        return self._faulty(name, fmap, fault_model)[:3]

    @staticmethod
    def _write(mem: _LayerMemory, idx: np.ndarray, codes: np.ndarray | None, values: np.ndarray) -> None:
        """Write values (and codes, unless None) at flat indices ``idx`` of a layer's buffers."""
        if mem.cpu_views is not None:  # CPU: write through NumPy views of the same storage (4x faster)
            if codes is not None:
                mem.cpu_views[0][idx] = codes
            mem.cpu_views[1][idx] = values
            return
        layer = mem.layer
        dev = layer.frozen_weight.device
        t_idx = torch.from_numpy(idx).to(dev)
        if codes is not None:
            layer.codes.view(-1)[t_idx] = torch.from_numpy(codes.astype(np.int32)).to(dev)
        layer.frozen_weight.view(-1)[t_idx] = torch.from_numpy(values).to(dev)

    def restore(self) -> None:
        """Write back the clean codes and values of every touched weight (bit-exact).

        On the CPU a layer with more than ``DENSE_RESTORE`` of its weights touched is copied back whole:
        one sequential copy is cheaper than gathering and scattering that many scattered weights.
        """
        while self._touched:
            name, idx = self._touched.pop()
            mem = self.memory[name]
            if mem.cpu_views is not None and idx.size > DENSE_RESTORE * mem.codes.size:
                if self.write_codes:
                    np.copyto(mem.cpu_views[0], mem.codes)
                np.copyto(mem.cpu_views[1], mem.values)
            else:
                self._write(mem, idx, mem.codes[idx] if self.write_codes else None, mem.values[idx])

    @contextlib.contextmanager
    def applied(
        self, maps: Mapping[str, FaultMap] | PreparedFaults, fault_model: str | None = None
    ) -> Iterator[tuple[int, int]]:
        """Faults applied inside the block, restored on exit (also after an exception)."""
        try:
            yield self.apply(maps, fault_model)
        finally:
            self.restore()
