"""SECDED error correction over words of stored weight codes: what a protected weight memory reads back.

A SECDED code (single error correction, double error detection; e.g. an extended Hamming (72, 64) code)
guards each 64-bit word of data with 8 check bits (12.5% more memory). The words are the layer's b-bit
codes in flat order, 64 / b codes to a word (the last word of a layer may be shorter). Per word, with e
data bits in error after the faults (bits that read differently from what was written: for stuck-at
faults only stuck bits that differ from the stored value):

* e = 1: corrected, the word reads as written;
* e = 2: detected and not correctable; declared here to read as **zero codes** (the whole word), the
  common "drop the corrupted weights" response to a detected uncorrectable error;
* e >= 3: not detected reliably; declared to read **as the faults leave it** (a real decoder may also
  miscorrect one more bit; that is not modelled).

The check bits are declared fault-free (a simplification that favours ECC a little: faults in check bits
would turn some corrected words into detected ones). The memory overhead is 8 / 64 of the weight memory.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 64
CHECK_BITS = 8
OVERHEAD = CHECK_BITS / WORD_BITS


def secded_read(
    clean: np.ndarray, idx: np.ndarray, faulty: np.ndarray, bits: int, word_bits: int = WORD_BITS
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """What a SECDED-protected layer reads back after faults (see the module docstring).

    ``clean``: the layer's stored codes (flat); ``idx`` (unique, sorted) and ``faulty``: the weights whose code
    the faults change and their codes as the faults leave them. Returns (indices, codes) of every weight that
    reads differently from ``clean`` after correction, and the numbers of corrected and detected words.
    """
    if word_bits % bits:
        raise ValueError(f"a {word_bits}-bit word does not hold a whole number of {bits}-bit codes")
    per_word = word_bits // bits
    idx, faulty = np.asarray(idx, dtype=np.int64), np.asarray(faulty, dtype=np.int64)
    clean = np.asarray(clean)
    if idx.size == 0:
        return idx, faulty, 0, 0
    full = (1 << bits) - 1
    errors = np.bitwise_count((faulty ^ clean[idx].astype(np.int64)) & full).astype(np.int64)
    word = idx // per_word
    words, first = np.unique(word, return_index=True)
    per = np.add.reduceat(errors, first)
    corrected, detected = words[per == 1], words[per == 2]
    keep = np.isin(word, words[per >= 3])
    zero_idx = (detected[:, None] * per_word + np.arange(per_word)[None, :]).reshape(-1)
    zero_idx = zero_idx[zero_idx < len(clean)]
    zero_idx = zero_idx[clean[zero_idx] != 0]  # the weights that read differently
    out_idx = np.concatenate([idx[keep], zero_idx])
    out_codes = np.concatenate([faulty[keep], np.zeros(zero_idx.size, dtype=np.int64)])
    order = np.argsort(out_idx, kind="stable")
    return out_idx[order], out_codes[order], int(corrected.size), int(detected.size)
