import pandas as pd
import pytest

from flatenn.core.results import read_table, write_schema_table, write_table


def test_stable_csv_format(tmp_path):
    df = pd.DataFrame({"b": [2.0, 1.0], "a": ["x", "y"], "r": [3e-5, 0.1234567891]})
    p = tmp_path / "t.csv"
    write_table(df, p, columns=["a", "b", "r"], sort=["b"])
    text = p.read_bytes().decode()
    assert text == "a,b,r\ny,1,0.123457\nx,2,3e-05\n"
    write_table(df, p, columns=["a", "b", "r"], sort=["b"])
    assert p.read_bytes().decode() == text  # rewrite is byte-identical


def test_schema_roundtrip_keeps_types(tmp_path):
    row = {
        "model_id": "m",
        "variant": "v",
        "train_seed": 0,
        "fingerprint": "00ab",
        "fault_model": "bitflip",
        "bits": "7",
        "layers": "all",
        "n_eval": 10,
        "run_id": "r1",
        "rate": 1.0,
        "count": -1,
        "seed": 0,
        "trial": 0,
        "faulty_bits": 3,
        "changed_weights": 2,
        "accuracy": 90.0,
        "loss": 0.5,
        "clean_accuracy": 95.0,
        "clean_loss": 0.1,
    }
    p = tmp_path / "c.csv"
    write_schema_table(pd.DataFrame([row]), p, "campaign")
    back = read_table(p, "campaign")
    assert (
        back["fingerprint"].iloc[0] == "00ab"
        and back["bits"].iloc[0] == "7"
        and back["rate"].dtype == float
        and back["accuracy"].dtype == float
    )


def _camp(tmp_path):
    from tests.repro.test_claims import _campaign

    df = _campaign(trials=2, seeds=(0,)).head(8)
    p = tmp_path / "campaign.csv"
    write_schema_table(df, p, "campaign")
    return p


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda t: t[: t.rindex(",") - 3], "ends inside a row"),  # last row cut inside a field
        (lambda t: t[: t.rindex(",") - 3] + "\n", "fields"),  # ... and a newline added by hand
        (lambda t: "", "not a readable CSV"),
        (
            lambda t: t.replace(",none,100,", ",none,1x0,", 1),
            "line 2: column n_eval",
        ),  # a non-number in a numeric field
    ],
)
def test_damaged_tables_are_named_errors(tmp_path, damage, match):
    from flatenn.core.results import ResultsTableError

    p = _camp(tmp_path)
    p.write_text(damage(p.read_text()))
    with pytest.raises(ResultsTableError, match=match) as e:
        read_table(p, "campaign")
    assert str(p) in str(e.value)


def test_duplicate_keys_and_out_of_range_values_are_errors(tmp_path):
    from flatenn.core.results import ResultsTableError

    p = _camp(tmp_path)
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(ResultsTableError, match="more than once"):
        read_table(p, "campaign")
    p = _camp(tmp_path)
    df = pd.read_csv(p)
    df.loc[3, "accuracy"] = 111.7
    df.to_csv(p, index=False)
    with pytest.raises(ResultsTableError, match="line 5: column accuracy"):
        read_table(p, "campaign")
