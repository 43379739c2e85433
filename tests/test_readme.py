"""The README's Python blocks run as written, and its claims summary matches the tracked CSVs."""

from __future__ import annotations

import re
from pathlib import Path

from flatenn.repro.ablation import ablation_markdown
from flatenn.repro.report import (
    ABLATION_END,
    ABLATION_START,
    MITIGATIONS_END,
    MITIGATIONS_START,
    SUMMARY_END,
    SUMMARY_START,
    mitigations_markdown,
    summary_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_blocks_run_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    out = capsys.readouterr().out
    assert "accuracy_mean" in out and "clean accuracy" in out


def test_summary_block_matches_the_tracked_results():
    block = README.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0].strip()
    assert block == summary_markdown(ROOT / "results").strip(), "run `nox -s figures` to refresh the README summary"


def test_ablation_block_matches_the_tracked_results():
    block = README.split(ABLATION_START, 1)[1].split(ABLATION_END, 1)[0].strip()
    assert block == ablation_markdown(ROOT / "results").strip(), "run `nox -s figures` to refresh the README summary"


def test_mitigations_block_matches_the_tracked_results():
    block = README.split(MITIGATIONS_START, 1)[1].split(MITIGATIONS_END, 1)[0].strip()
    assert block == mitigations_markdown(ROOT / "results").strip(), "run `nox -s figures` to refresh the README"
