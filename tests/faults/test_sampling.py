import math

import numpy as np
import pytest
from scipy import stats

from flatenn.faults.sampling import (
    FaultMap,
    apply_fault_to_codes,
    check_bit_positions,
    check_rate,
    check_seed,
    sample_count_maps,
    sample_counts,
    sample_distinct,
    sample_layer_map,
    sample_rate_maps,
    stream_keys,
)


def sample_count(n: int, p: float, seed: int, layer: str, trial: int) -> int:
    return int(sample_counts(np.array([n]), p, stream_keys(seed, [layer], trial, "count"))[0])


def sample_positions(n: int, k: int, seed: int, layer: str, trial: int = 0) -> np.ndarray:
    return sample_distinct(np.array([n]), np.array([k]), stream_keys(seed, [layer], trial, "positions"))[0]


def test_known_values_on_hand_made_codes():
    assert apply_fault_to_codes(np.array([1]), np.array([1 << 7]), "bitflip", 8)[0] == -127
    assert apply_fault_to_codes(np.array([-1]), np.array([1]), "stuck0", 8)[0] == -2
    assert apply_fault_to_codes(np.array([1]), np.array([1]), "stuck1", 8)[0] == 1  # already 1: no change
    assert apply_fault_to_codes(np.array([0]), np.array([1 << 7]), "stuck1", 8)[0] == -128
    assert apply_fault_to_codes(np.array([-127]), np.array([1 << 7]), "stuck0", 8)[0] == 1
    assert apply_fault_to_codes(np.array([5]), np.array([0b11]), "bitflip", 4)[0] == 6  # 0101 -> 0110
    assert apply_fault_to_codes(np.array([3]), np.array([1 << 3]), "bitflip", 4)[0] == -5  # 0011 -> 1011


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "x"])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_rate(rate)


def test_bad_bit_positions_and_fault_model():
    with pytest.raises(ValueError, match="0..7"):
        check_bit_positions([8], 8)
    with pytest.raises(ValueError, match="unknown fault model"):
        apply_fault_to_codes(np.array([0]), np.array([1]), "flip", 8)


@pytest.mark.parametrize("n,p", [(1000, 0.01), (50, 0.3), (10**6, 1e-4)])
def test_count_is_binomial_within_999_interval(n, p):
    draws = np.array([sample_count(n, p, 0, "L", t) for t in range(4000)])
    mean, var = n * p, n * p * (1 - p)
    se = math.sqrt(var / len(draws))
    assert abs(draws.mean() - mean) < 3.29 * se  # 99.9% two-sided
    assert 0.85 < draws.var() / var < 1.15


def test_empirical_bit_rate_within_binomial_interval():
    n_weights, p, trials = 500, 0.02, 400
    hits = np.zeros(n_weights * 8)
    for t in range(trials):
        m = sample_layer_map("layer", n_weights, 8, seed=3, trial=t, rate=p)
        assert m.faulty_bits == int(np.unpackbits(m.mask.astype(">i8").view(np.uint8)).sum())
        for w, mask in zip(m.weight_index, m.mask, strict=True):
            for b in range(8):
                hits[w * 8 + b] += (mask >> b) & 1
    total, n = hits.sum(), n_weights * 8 * trials
    assert abs(total / n - p) < 3.29 * math.sqrt(p * (1 - p) / n)
    per_bit = hits.reshape(n_weights, 8).sum(0) / (n_weights * trials)
    assert np.all(np.abs(per_bit - p) < 3.29 * math.sqrt(p * (1 - p) / (n_weights * trials)) + 1e-12)


def test_positions_distinct_and_prefix_nested():
    pos = sample_positions(100, 100, 1, "x")
    assert sorted(pos.tolist()) == list(range(100))
    short = sample_positions(10**7, 30, 1, "y")
    long = sample_positions(10**7, 3000, 1, "y")
    assert np.array_equal(long[:30], short) and len(set(long.tolist())) == 3000


def test_maps_nested_across_rates():
    def bitset(rate):
        m = sample_layer_map("conv", 4000, 8, seed=9, trial=2, rate=rate)
        return {(int(w), b) for w, mask in zip(m.weight_index, m.mask, strict=True) for b in range(8) if mask >> b & 1}

    low, mid, high = bitset(1e-3), bitset(1e-2), bitset(5e-2)
    assert 0 < len(low) and low <= mid <= high and len(low) < len(mid) < len(high)


def test_maps_depend_only_on_seed_layer_trial():
    a = sample_layer_map("layer1", 1000, 8, seed=0, trial=0, rate=0.01)
    b = sample_layer_map("layer1", 1000, 8, seed=0, trial=0, rate=0.01)
    c = sample_layer_map("layer2", 1000, 8, seed=0, trial=0, rate=0.01)
    d = sample_layer_map("layer1", 1000, 8, seed=0, trial=1, rate=0.01)
    assert np.array_equal(a.weight_index, b.weight_index) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.weight_index, c.weight_index)
    assert not np.array_equal(a.weight_index, d.weight_index)


def test_bit_position_mask_restricts_hits():
    m = sample_layer_map("l", 2000, 8, seed=0, trial=0, rate=0.05, bit_positions=[7])
    assert m.faulty_bits > 0 and set(m.mask.tolist()) == {128}
    m = sample_layer_map("l", 2000, 8, seed=0, trial=0, rate=0.05, bit_positions=[0, 1, 2, 3])
    assert np.all(m.mask < 16)


def test_exact_count_mode():
    maps = sample_count_maps([("a", 100, 8), ("b", 50, 4)], 37, seed=0, trial=0)
    assert sum(m.faulty_bits for m in maps.values()) == 37
    assert np.all(maps["b"].weight_index < 50) and np.all(maps["b"].mask < 16)
    again = sample_count_maps([("a", 100, 8), ("b", 50, 4)], 37, seed=0, trial=0)
    assert all(np.array_equal(maps[k].mask, again[k].mask) for k in maps)


def test_faultmap_merges_bits_of_one_weight():
    m = FaultMap.from_bit_positions(np.array([0, 7, 8, 15]), np.arange(8))
    assert m.weight_index.tolist() == [0, 1] and m.mask.tolist() == [0b10000001, 0b10000001]


def test_count_distribution_fits_binomial_chi_square():
    n, p, draws = 40, 0.1, 5000
    k = np.array([sample_count(n, p, 11, "conv1", t) for t in range(draws)])
    support = np.arange(0, 10)
    observed = np.array([(k == v).sum() for v in support[:-1]] + [(k >= support[-1]).sum()])
    expected = np.append(stats.binom.pmf(support[:-1], n, p), stats.binom.sf(support[-2], n, p)) * draws
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_counts_nested_across_rates_for_every_key():
    keys = stream_keys(3, [f"l{i}" for i in range(300)], 0, "count")
    n = np.full(300, 5000)
    prev = np.zeros(300, dtype=np.int64)
    for rate in (1e-4, 1e-3, 3e-3, 1e-2, 0.1, 0.5):
        cur = sample_counts(n, rate, keys)
        assert np.all(cur >= prev)
        prev = cur


def test_layer_map_independent_of_other_layers_and_seed_changes_maps():
    spec = [("a", 3000, 8), ("b", 800, 8), ("c", 5000, 4)]
    together = sample_rate_maps(spec, 4, 2, 0.01)
    for name, n, bits in spec:
        alone = sample_layer_map(name, n, bits, 4, 2, 0.01)
        assert np.array_equal(alone.weight_index, together[name].weight_index)
        assert np.array_equal(alone.mask, together[name].mask)
    other = sample_rate_maps(spec, 5, 2, 0.01)
    assert not np.array_equal(other["a"].weight_index, together["a"].weight_index)


def test_positions_uniform_over_the_bit_space():
    hits = np.concatenate([sample_positions(64, 8, 0, "u", t) for t in range(3000)])
    assert stats.chisquare(np.bincount(hits, minlength=64)).pvalue > 1e-3


@pytest.mark.parametrize("bad", [-1, 1.5, True, 2**63])
def test_bad_seed_or_trial(bad):
    with pytest.raises(ValueError, match="whole number"):
        check_seed(bad)


@pytest.mark.parametrize("bad", [[-1], [1.7], [True]])
def test_bit_positions_must_be_whole_and_nonnegative(bad):
    with pytest.raises(ValueError, match="bit positions must be"):
        check_bit_positions(bad, 8)


@pytest.mark.parametrize("bad", [-1, 1.7, True])
def test_bad_fault_count(bad):
    with pytest.raises(ValueError, match="fault count"):
        sample_count_maps([("a", 10, 8)], bad, seed=0, trial=0)


# --- issue 25: the faster sampler draws the same maps ------------------------------------------------------

# sha256 of the maps below as drawn by the sampler of commit 8c49390 (before the speed work of issue 25)
MAPS_DIGEST_8C49390 = "7cab126f8c2d77c0708797c8669daf06af5dbef8a707c5fdc3fd0d2efad89b9a"


def _maps_digest() -> str:
    import hashlib

    layers = [("conv1", 216, 8), ("layer1.0.conv1", 2304, 8), ("fc", 640, 8), ("big", 300_000, 8)]
    layers += [("w4", 1000, 4), ("tiny", 3, 2)]
    h = hashlib.sha256()

    def add(name, f):
        h.update(name.encode() + f.weight_index.astype(np.int64).tobytes() + f.mask.astype(np.int64).tobytes())

    for seed in (0, 2023, 2**62 + 5):
        for trial in (0, 49, 12345):
            for rate in (0.0, 1e-4, 1e-3, 0.01, 0.2, 1.0):
                for bp in (None, [7], [0, 1]):
                    ls = [x for x in layers if (bp is None or max(bp) < x[2]) and (rate < 0.2 or x[1] <= 1000)]
                    for name, f in sample_rate_maps(ls, seed, trial, rate, bp).items():
                        add(name, f)
                        h.update(str(f.faulty_bits).encode())
            for count in (0, 17, 500):
                for name, f in sample_count_maps(layers[:3], count, seed, trial).items():
                    add(name, f)
    return h.hexdigest()


def test_maps_equal_those_of_the_sampler_before_the_speed_work():
    assert _maps_digest() == MAPS_DIGEST_8C49390


def _first_distinct_by_definition(n: int, k: int, key: np.uint64) -> list[int]:
    """The first k distinct values of stream ``key`` mapped to [0, n), one draw at a time (the definition)."""
    golden, m1, m2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
    full = (1 << 64) - 1

    def mix(x: int) -> int:
        x ^= x >> 30
        x = (x * m1) & full
        x ^= x >> 27
        x = (x * m2) & full
        return x ^ (x >> 31)

    out, seen, j = [], set(), 0
    while len(out) < k:
        u = (float(mix((int(key) + (j + 1) * golden) & full) >> 11) + 0.5) * 2.0**-53
        p = min(int(u * n), n - 1)
        if p not in seen:
            seen.add(p)
            out.append(p)
        j += 1
    return out


@pytest.mark.parametrize(
    "n, k",
    [(1, 1), (2, 2), (50, 50), (64, 63), (1000, 10), (1000, 700), (10**6, 2000), (2**45, 40), (7, 0)],
)
def test_sample_distinct_equals_its_definition(n, k):
    keys = stream_keys(5, ["a", "b", "c"], 3, "positions")
    got = sample_distinct(np.array([n, n, n]), np.array([k, k // 2, k]), keys)
    for i, kk in enumerate([k, k // 2, k]):
        assert got[i].tolist() == _first_distinct_by_definition(n, kk, keys[i])


def test_sample_distinct_groups_and_redraws_agree_with_the_definition(monkeypatch):
    import flatenn.faults.sampling as sampling

    monkeypatch.setattr(sampling, "_GROUP_DRAWS", 64)  # many groups, streams split across group edges
    monkeypatch.setattr(sampling, "_draw_budget", lambda n, k: np.maximum(k // 2, 1))  # every stream redrawn
    n = np.array([500, 3, 10_000, 2**45, 40])
    k = np.array([300, 3, 80, 5, 0])
    keys = stream_keys(1, list("abcde"), 0, "positions")
    got = sample_distinct(n, k, keys)
    for i in range(len(n)):
        assert got[i].tolist() == _first_distinct_by_definition(int(n[i]), int(k[i]), keys[i])


def test_wide_keys_fall_back_to_a_stable_sort():
    # 600 streams over 2^45 positions: stream, position and draw bits do not fit one int64
    n, k = np.full(600, 2**45), np.full(600, 3)
    keys = stream_keys(9, [f"l{i}" for i in range(600)], 0, "positions")
    got = sample_distinct(n, k, keys)
    for i in (0, 299, 599):
        assert got[i].tolist() == _first_distinct_by_definition(2**45, 3, keys[i])


def test_trials_drawn_together_equal_trials_drawn_one_by_one():
    from flatenn.faults.sampling import sample_rate_maps_trials

    spec = [("a", 3000, 8), ("b", 800, 4), ("c", 50_000, 8), ("d", 2, 8)]
    for rate, bp in ((0.01, None), (0.3, None), (0.05, [0, 3])):
        together = sample_rate_maps_trials(spec, 11, [0, 7, 3, 200], rate, bp)
        for maps, t in zip(together, [0, 7, 3, 200], strict=True):
            alone = sample_rate_maps(spec, 11, t, rate, bp)
            for name in alone:
                assert np.array_equal(maps[name].weight_index, alone[name].weight_index)
                assert np.array_equal(maps[name].mask, alone[name].mask)
                assert maps[name].faulty_bits == alone[name].faulty_bits


@pytest.mark.parametrize("p", [1e-6, 1e-3, 0.01, 0.3, 0.5, 0.97])
@pytest.mark.parametrize("n", [1, 8, 333, 20_000, 18_874_368])
def test_cached_binomial_quantile_equals_scipy_ppf(n, p):
    from flatenn.faults.sampling import binom_quantile

    rng = np.random.default_rng(n + int(p * 1e6))
    u = rng.random(20_000)
    cdf = stats.binom.cdf(np.arange(max(0, int(n * p) - 50), min(n, int(n * p) + 50) + 1), n, p)
    edges = np.concatenate([cdf, np.nextafter(cdf, 0), np.nextafter(cdf, 1), [2.0**-54, 1 - 2.0**-53, 1.0]])
    u = np.concatenate([u, edges[(edges > 0) & (edges <= 1)]])
    expected = np.nan_to_num(stats.binom.ppf(u, n, p), nan=0.0).astype(np.int64)
    assert np.array_equal(binom_quantile(u, np.full(u.shape, n), p), expected)


def _read_back_by_definition(code: int, mask: int, fault_model: str, bits: int) -> int:
    """Two's complement by hand: the stored b-bit word, the fault applied bit by bit, the word read back."""
    word = code % (1 << bits)
    for b in range(bits):
        if mask >> b & 1:
            if fault_model == "bitflip":
                word ^= 1 << b
            elif fault_model == "stuck0":
                word &= ~(1 << b)
            else:
                word |= 1 << b
    return word - (1 << bits) if word >= 1 << (bits - 1) else word


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("fault_model", ["bitflip", "stuck0", "stuck1"])
def test_faulty_codes_exhaustive_against_twos_complement(bits, fault_model):
    from flatenn.faults.sampling import faulty_codes

    codes = np.arange(-(1 << (bits - 1)), 1 << (bits - 1), dtype=np.int64)
    c, m = np.meshgrid(codes, np.arange(1, 1 << bits, dtype=np.int64))
    c, m = c.ravel(), m.ravel()
    expected = [_read_back_by_definition(int(a), int(b), fault_model, bits) for a, b in zip(c, m, strict=True)]
    assert faulty_codes(c, m, fault_model, bits).tolist() == expected
    assert apply_fault_to_codes(c, m | (1 << bits), fault_model, bits).tolist() == expected  # high bits ignored


@pytest.mark.parametrize("rate", [0.9, 0.95, 0.99, 1.0])
def test_rates_up_to_one_give_binomial_counts_of_distinct_bits(rate):
    """Near rate 1 a stream can run out of draws before it holds k distinct bits; it is redrawn longer, never a
    crash, and the count stays Binomial(n, p) (rate 1: every bit)."""
    n = 300
    maps = [sample_layer_map("L", n, 1, seed=1, trial=t, rate=rate) for t in range(1000)]
    counts = np.array([m.faulty_bits for m in maps])
    for m in maps:  # one bit per weight: the faulty weights are the faulty bits, all distinct
        assert len(np.unique(m.weight_index)) == m.faulty_bits == len(m.weight_index)
    if rate == 1.0:
        assert (counts == n).all()
    else:
        sd = np.sqrt(n * rate * (1 - rate) / len(counts))
        assert abs(counts.mean() - n * rate) < 5 * sd


def test_the_trial_that_crashed_the_sampler_near_rate_one():
    m = sample_layer_map("L", 300, 1, seed=1, trial=89, rate=0.95)
    assert m.faulty_bits == len(m.weight_index) and m.faulty_bits > 250
    lower = sample_layer_map("L", 300, 1, seed=1, trial=89, rate=0.9)
    assert set(lower.weight_index) <= set(m.weight_index)  # still nested in rate
