"""Bit-level weight-memory faults: seeded fault maps (``sampling``), writing them into frozen integer codes
(``injector``), campaigns (``campaign``), prefix reuse (``prefix``) and per-(layer, bit) vulnerability
maps (``vulnerability``).

The sampling API is re-exported here, so ``from flatenn.faults import sample_rate_maps`` keeps working.
"""

from .sampling import (
    FAULT_MODELS,
    FaultMap,
    apply_fault_to_codes,
    apply_fault_to_tensor,
    binom_quantile,
    bits_label,
    check_bit_positions,
    check_fault_model,
    check_rate,
    check_seed,
    faulty_codes,
    sample_count_maps,
    sample_counts,
    sample_distinct,
    sample_layer_map,
    sample_rate_maps,
    sample_rate_maps_trials,
    stream_draws,
    stream_keys,
)

__all__ = [
    "FAULT_MODELS",
    "FaultMap",
    "apply_fault_to_codes",
    "apply_fault_to_tensor",
    "binom_quantile",
    "bits_label",
    "check_bit_positions",
    "check_fault_model",
    "check_rate",
    "check_seed",
    "faulty_codes",
    "sample_count_maps",
    "sample_counts",
    "sample_distinct",
    "sample_layer_map",
    "sample_rate_maps",
    "sample_rate_maps_trials",
    "stream_draws",
    "stream_keys",
]
