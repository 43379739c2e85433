"""SECDED over 64-bit words of stored codes, checked word by word against its definition; sign-bit protection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from flatenn.core.models import ModelSpec, build_model
from flatenn.core.quant import frozen
from flatenn.faults.ecc import OVERHEAD, secded_read
from flatenn.faults.injector import FaultInjector
from flatenn.faults.sampling import apply_fault_to_codes
from tests.helpers import calibrated

BITS = 8
PER_WORD = 64 // BITS


def _layer(n: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-127, 128, n).astype(np.int32)


def _flip(clean: np.ndarray, positions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Flip the given bits (position = weight * 8 + bit) and return (changed indices, their faulty codes)."""
    codes = clean.astype(np.int64).copy()
    for p in positions:
        w, b = divmod(p, BITS)
        codes[w] = apply_fault_to_codes(codes[w : w + 1], np.array([1 << b]), "bitflip", BITS)[0]
    idx = np.flatnonzero(codes != clean)
    return idx, codes[idx]


def test_every_single_bit_error_in_a_word_is_corrected():
    clean = _layer()
    for word in range(len(clean) // PER_WORD):
        for bit in range(64):
            idx, faulty = _flip(clean, [word * 64 + bit])
            out_idx, out_codes, corrected, detected = secded_read(clean, idx, faulty, BITS)
            assert out_idx.size == 0 and (corrected, detected) == (1, 0)


def test_every_double_bit_error_in_a_word_is_flagged_and_the_word_reads_zero():
    clean = _layer(16)
    clean[3] = 0  # a zero code in the word: it reads the same after zeroing
    for a, b in itertools.combinations(range(64), 2):
        idx, faulty = _flip(clean, [a, b])
        out_idx, out_codes, corrected, detected = secded_read(clean, idx, faulty, BITS)
        assert (corrected, detected) == (0, 1)
        assert out_idx.tolist() == [i for i in range(PER_WORD) if clean[i] != 0] and not out_codes.any()


def test_three_or_more_errors_are_left_as_they_fall_and_words_are_independent():
    clean = _layer(24)
    rng = np.random.default_rng(1)
    for _ in range(200):
        three = rng.choice(64, 3, replace=False).tolist()  # word 0: three errors
        one = [64 + int(rng.integers(64))]  # word 1: one error (corrected)
        two = rng.choice(64, 2, replace=False) + 128  # word 2: two errors (zeroed)
        idx, faulty = _flip(clean, three + one + two.tolist())
        out_idx, out_codes, corrected, detected = secded_read(clean, idx, faulty, BITS)
        in_word0 = idx < PER_WORD
        assert (corrected, detected) == (1, 1)
        assert np.array_equal(out_idx[out_idx < PER_WORD], idx[in_word0])
        assert np.array_equal(out_codes[out_idx < PER_WORD], faulty[in_word0])
        assert not (out_idx // PER_WORD == 1).any()
        assert not out_codes[out_idx // PER_WORD == 2].any()


def test_a_short_last_word_and_bad_widths():
    clean = _layer(10)  # words of 8 codes: the second has 2
    idx, faulty = _flip(clean, [64 + 3, 64 + 12])
    out_idx, out_codes, _, detected = secded_read(clean, idx, faulty, BITS)
    assert detected == 1 and set(out_idx.tolist()) <= {8, 9}
    with pytest.raises(ValueError, match="whole number"):
        secded_read(clean, idx, faulty, 7)
    assert OVERHEAD == 0.125


@pytest.fixture
def model():
    torch.manual_seed(0)
    return calibrated(build_model(ModelSpec("cnn_digits", width=4), 8), (32, 1, 8, 8))


@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_injector_with_secded_writes_what_the_protected_memory_reads(model, fault_model):
    with frozen(model) as layers:
        plain, protected = FaultInjector(model), FaultInjector(model, ecc="secded")
        maps = plain.sample(0, 0, rate=0.001)
        for name, fmap in maps.items():
            clean = protected.memory[name].codes
            idx, codes, _ = plain.faulty_weights(name, fmap, fault_model)
            expect_idx, expect_codes, _, _ = secded_read(clean, idx, codes, 8)
            got_idx, got_codes, got_values = protected.faulty_weights(name, fmap, fault_model)
            assert np.array_equal(got_idx, expect_idx) and np.array_equal(got_codes, expect_codes)
        before = {n: m.codes.clone() for n, m in layers.items()}
        unprotected = sum(plain.faulty_weights(n, m, fault_model)[0].size for n, m in maps.items())
        with protected.applied(maps, fault_model) as (_, changed):
            assert changed < unprotected  # at 0.1% most faulty words hold one error: corrected
        assert all(torch.equal(m.codes, before[n]) for n, m in layers.items())
    with pytest.raises(ValueError, match="ecc"):
        with frozen(model):
            FaultInjector(model, ecc="hamming")


@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_a_protected_sign_bit_never_changes(model, fault_model):
    with frozen(model) as layers:
        inj = FaultInjector(model)
        signs = {n: m.codes < 0 for n, m in layers.items()}
        for trial in range(20):
            with inj.applied(inj.sample(1, trial, rate=0.3, bit_positions=range(7)), fault_model) as (bits, _):
                assert bits > 0
                assert all(torch.equal(m.codes < 0, signs[n]) for n, m in layers.items())
