"""The grouped package layout: groups, their order, no import cycles, no private reach-ins (read from the code)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import flatenn


def test_fault_sampling_api_from_the_faults_package():
    from flatenn.faults import apply_fault_to_codes, sample_rate_maps
    from flatenn.faults.sampling import apply_fault_to_codes as a
    from flatenn.faults.sampling import sample_rate_maps as s

    assert apply_fault_to_codes is a and sample_rate_maps is s
    assert (
        int(apply_fault_to_codes(__import__("numpy").array([1]), __import__("numpy").array([1 << 7]), "bitflip", 8)[0])
        == -127
    )


def test_top_level_holds_only_the_entry_points():
    pkg = Path(flatenn.__file__).parent
    top = {p.name for p in pkg.glob("*.py")}
    assert top == {"__init__.py", "__main__.py"}
    groups = {p.name for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert groups == {*GROUPS, "cli"}  # the command line: a package of one module per command group


def test_flat_names_of_0_2_are_gone():
    for name in ("quant", "campaign", "claims"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"flatenn.{name}")


GROUPS = {"core": 0, "faults": 1, "analysis": 2, "repro": 3, "cli": 4}  # a group imports itself and lower groups


def _import_graph() -> dict[str, set[str]]:
    """flatenn module -> the flatenn modules it imports anywhere in its text (function-level imports too)."""
    import ast

    pkg = Path(flatenn.__file__).parent
    mods = {}
    for p in pkg.rglob("*.py"):
        parts = list(p.relative_to(pkg.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for m, p in mods.items():
        base = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        out = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = (
                    ".".join(base[: len(base) - node.level + 1] + [node.module or ""]).strip(".")
                    if node.level
                    else node.module or ""
                )
                for a in node.names:
                    out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target)
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
        graph[m] = {t for t in out if t in mods and t != m}
    return graph


def test_no_import_cycles_between_modules():
    graph = _import_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for t in graph[start]:
            if t == goal or (t not in seen and (seen.add(t) or reaches(t, goal, seen))):
                return True
        return False

    cyclic = sorted(m for m in graph if not m.endswith("__init__") and reaches(m, m, set()) and "." in m[8:])
    assert not cyclic, f"modules on an import cycle: {cyclic}"


def test_no_group_imports_a_higher_group():
    for m, targets in _import_graph().items():
        group = m.split(".")[1] if m.count(".") >= 1 else None
        for t in targets:
            tg = t.split(".")[1] if t.count(".") >= 1 else None
            if group in GROUPS and tg in GROUPS:
                assert GROUPS[tg] <= GROUPS[group], f"{m} imports {t}: {tg} is above {group}"


def test_no_private_names_imported_from_another_module():
    import re

    pkg = Path(flatenn.__file__).parent
    for p in pkg.rglob("*.py"):
        for line in p.read_text().splitlines():
            m = re.match(r"\s*from \S+ import (.*)", line)
            if m and re.search(r"(^|[ ,(])_[a-zA-Z]", m.group(1)):
                pytest.fail(f"{p.name}: {line.strip()}")


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


MAX_CLASS_LINES = 210  # a class longer than this does more than one job: split it by job


def test_no_class_is_longer_than_the_stated_size():
    import ast

    long = []
    root = Path(flatenn.__file__).resolve().parent.parent
    for path in sorted((root / "flatenn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long.append(f"{path.relative_to(root)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_code_cites_no_issue_numbers():
    """A reader of the code has no issue tracker: docstrings and comments say what and why, not 'issue 15'."""
    import re

    root = Path(flatenn.__file__).resolve().parent.parent
    cites = [
        f"{path.relative_to(root)}:{i}"
        for path in sorted((root / "flatenn").rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bissues? #?\d+", line, flags=re.I)
    ]
    assert not cites, cites
