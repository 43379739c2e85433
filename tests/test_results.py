import pandas as pd

from flatenn.results import read_table, write_schema_table, write_table


def test_stable_csv_format(tmp_path):
    df = pd.DataFrame({"b": [2.0, 1.0], "a": ["x", "y"], "r": [3e-5, 0.1234567891]})
    p = tmp_path / "t.csv"
    write_table(df, p, columns=["a", "b", "r"], sort=["b"])
    text = p.read_bytes().decode()
    assert text == "a,b,r\ny,1,0.123457\nx,2,3e-05\n"
    write_table(df, p, columns=["a", "b", "r"], sort=["b"])
    assert p.read_bytes().decode() == text  # rewrite is byte-identical


def test_schema_roundtrip_keeps_types(tmp_path):
    row = {"model_id": "m", "variant": "v", "train_seed": 0, "fingerprint": "00ab", "fault_model": "bitflip",
           "bits": "7", "layers": "all", "n_eval": 10, "run_id": "r1", "rate": 1.0,
           "count": -1, "seed": 0, "trial": 0, "faulty_bits": 3, "changed_weights": 2, "accuracy": 90.0,
           "loss": 0.5, "clean_accuracy": 95.0, "clean_loss": 0.1}
    p = tmp_path / "c.csv"
    write_schema_table(pd.DataFrame([row]), p, "campaign")
    back = read_table(p, "campaign")
    assert back["fingerprint"].iloc[0] == "00ab" and back["bits"].iloc[0] == "7" and back["rate"].dtype == float and back["accuracy"].dtype == float
