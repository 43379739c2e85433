import pandas as pd

from flatenn.repro.rate_window import in_window


def test_in_window_keeps_only_the_named_rates_of_each_fault_model():
    per = pd.DataFrame(
        {
            "fault_model": ["bitflip", "bitflip", "bitflip", "sa0", "sa1"],
            # 0.1 + 0.2 is 0.30000000000000004: equal to 0.3 at 12 decimals, so it is in the window
            "rate": [1e-3, 0.1 + 0.2, 1e-2, 1e-3, 1e-3],
        }
    )
    kept = in_window(per, {"bitflip": (1e-3, 0.3), "sa0": (1e-2,)})
    assert kept.index.tolist() == [0, 1]


def test_in_window_of_no_rates_is_empty():
    per = pd.DataFrame({"fault_model": ["bitflip"], "rate": [1e-3]})
    assert in_window(per, {}).empty
