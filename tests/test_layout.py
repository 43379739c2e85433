"""The grouped package layout, and the flat module names of flatenn 0.2 that still import."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import flatenn


@pytest.mark.parametrize("name", sorted(flatenn._MOVED))
def test_flat_name_is_the_grouped_module(name):
    grouped = importlib.import_module(f"flatenn.{flatenn._MOVED[name]}.{name}")
    assert importlib.import_module(f"flatenn.{name}") is grouped
    assert (Path(flatenn.__file__).parent / flatenn._MOVED[name] / f"{name}.py").is_file()


def test_fault_sampling_api_from_the_faults_package():
    from flatenn.faults import apply_fault_to_codes, sample_rate_maps
    from flatenn.faults.sampling import apply_fault_to_codes as a
    from flatenn.faults.sampling import sample_rate_maps as s

    assert apply_fault_to_codes is a and sample_rate_maps is s
    assert int(apply_fault_to_codes(__import__("numpy").array([1]), __import__("numpy").array([1 << 7]), "bitflip", 8)[0]) == -127


def test_top_level_holds_only_the_entry_points():
    top = {p.name for p in Path(flatenn.__file__).parent.glob("*.py")}
    assert top == {"__init__.py", "__main__.py", "cli.py"}


def test_unknown_names_still_fail():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("flatenn.no_such_module")


def test_core_imports_no_other_group_and_nothing_imports_repro():
    """The layering the README states, read from the import statements."""
    import re

    pkg = Path(flatenn.__file__).parent
    for group in ("core", "faults", "analysis", "repro"):
        for path in (pkg / group).glob("*.py"):
            targets = set(re.findall(r"^\s*from \.\.(\w+)", path.read_text(), re.M))
            if group == "core":
                assert not targets, f"{path.name} imports {targets}"
            if group != "repro":
                assert "repro" not in targets, f"{group}/{path.name} imports repro"
