"""Stage counters: each unit counted once, never past its total; the ETA covers the whole run (issue 20.4)."""

from flatenn.core import progress
from flatenn.core.progress import Stages


def test_a_unit_asked_for_again_is_not_counted_again(monkeypatch):
    lines = []
    monkeypatch.delenv("FLATENN_QUIET", raising=False)
    progress.set_sink(lines.append)
    try:
        s = Stages("[t]", {"models": 2, "sharpness": 2})
        for _ in range(3):  # every claim that needs sharpness asks for the same two units
            s.step("sharpness", "m0", resumed=True)
            s.step("sharpness", "m1", resumed=True)
        assert s.done["sharpness"] == 2 and len(lines) == 2
        assert lines[-1].startswith("[t] sharpness 2/2")
        assert "eta >= " in lines[-1]  # the models stage has units left and none timed yet: a lower bound
        s.step("models", "m0")
        assert "eta >= " not in lines[-1] and "eta 0:" in lines[-1]
    finally:
        progress.set_sink(None)


def test_eta_sums_every_stage(monkeypatch):
    clock = iter([0.0, 10.0, 30.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    s = Stages("[t]", {"a": 3, "b": 2})  # start at 0
    s.step("a", "x")  # 10 s for one unit of a
    s.step("b", "y")  # 20 s for one unit of b
    assert s.eta() == f"eta {progress._clock(2 * 10 + 1 * 20)}"
