"""The README and the documentation pages: their generated tables match the tracked CSVs wherever they live, their
command-line reference is the parser's, every command they show names a real command and option, their Python
snippets run as written, their links resolve, and the site builds in strict mode."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from flatenn.cli.parser import build_parser
from flatenn.cli.reference import END as CLI_END
from flatenn.cli.reference import START as CLI_START
from flatenn.cli.reference import reference_markdown
from flatenn.repro.doc_blocks import block_in, pages, stale_blocks
from flatenn.repro.report import ABLATION_START, HEADLINE_START, MITIGATIONS_START, SUMMARY_START, generated_blocks
from flatenn.repro.report_v3 import V3_START

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250


def _blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(), flags=re.S)


def _shell_lines(page: Path) -> list[str]:
    """The commands of a page's bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in _blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _flatenn_commands(page: Path) -> list[list[str]]:
    """The arguments of every ``python -m flatenn ...`` line of a page's bash blocks."""
    return [shlex.split(line)[3:] for line in _shell_lines(page) if line.startswith("python -m flatenn ")]


def test_the_readme_is_short_and_starts_with_the_commands_the_result_and_an_example():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    order = [text.index(s) for s in ("nox -s reproduce", "nox -s tests", HEADLINE_START, "quantize_model(")]
    assert order == sorted(order), "two commands, then the headline, then the own-model example"


def test_every_generated_block_matches_the_tracked_csvs_wherever_it_lives():
    assert not stale_blocks(generated_blocks(ROOT / "results")), "run `nox -s figures` to refresh README and docs"
    held = {start for (start, _) in generated_blocks(ROOT / "results") for page in pages() if start in page.read_text()}
    assert held == {HEADLINE_START, SUMMARY_START, ABLATION_START, MITIGATIONS_START, V3_START}
    assert block_in(README.read_text(), HEADLINE_START, "<!-- headline:end -->")


def test_a_stale_block_is_named(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(f"x\n{HEADLINE_START}\nan old table\n<!-- headline:end -->\n")
    (tmp_path / "docs" / "page.md").write_text("no blocks here\n")
    assert stale_blocks(generated_blocks(ROOT / "results"), repo_root=tmp_path) == [f"README.md: {HEADLINE_START}"]


def test_the_command_line_reference_is_the_parsers():
    page = (DOCS / "cli.md").read_text()
    assert block_in(page, CLI_START, CLI_END) == reference_markdown().strip(), (
        "run `python -m flatenn.cli.reference --write docs/cli.md` (nox -s docs)"
    )
    for command in build_parser()._subparsers._group_actions[0].choices:
        assert f"\n## {command}\n" in page
    assert str(ROOT) not in reference_markdown(), "the page must be the same on every machine: no checkout paths"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_command_a_page_shows_exists(page):
    parser = build_parser()
    for args in _flatenn_commands(page):
        try:
            parser.parse_args(args)
        except SystemExit as e:  # argparse exits; the message is on stderr
            pytest.fail(f"{page.name}: `python -m flatenn {' '.join(args)}` does not parse ({e})")
    sessions = set(
        re.findall(r"@nox\.session\((?:name=\"([\w-]+)\"|[^)]*)\)\ndef (\w+)", (ROOT / "noxfile.py").read_text())
    )
    names = {named or fn.replace("_", "-") for named, fn in sessions} | {fn for _, fn in sessions}
    for line in _shell_lines(page):
        for session in re.findall(r"\bnox -s ([\w-]+)", line):
            assert session in names, f"{page.name}: `nox -s {session}` is not a session of noxfile.py"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_relative_link_of_a_page_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = target.split("#", 1)[0]
        assert (page.parent / path).exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


def test_every_page_is_in_the_sites_navigation():
    nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    assert nav == {p.name for p in DOCS.glob("*.md")}


def test_the_readmes_python_runs_as_written():
    blocks = _blocks(README, "python")
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    assert len(namespace["df"]) == 3


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_every_python_snippet_of_a_page_runs(page, capsys):
    namespace: dict = {}
    for block in _blocks(page, "python"):  # a page's blocks run in order, in one namespace, as a reader would
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 - the docs are ours


@pytest.mark.slow
def test_the_command_line_examples_run(tmp_path):
    env = {**os.environ, "FLATENN_CACHE": str(tmp_path / "zoo"), "FLATENN_QUIET": "1"}
    commands = _flatenn_commands(DOCS / "cli.md")
    assert len(commands) >= 5
    for args in commands:
        r = subprocess.run(
            [sys.executable, "-m", "flatenn", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert r.returncode == 0, f"python -m flatenn {' '.join(args)}: {r.stderr[-2000:]}"


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "cli/index.html", "api/index.html", "mitigations/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text()
    for name in ("quantize_model", "run_campaign", "FaultInjector", "register_method", "register_protection"):
        assert name in api, f"the API page lacks {name}"
    assert (site / "results" / "mitigations_smoke" / "figures" / "pareto.png").is_file()


def test_refreshing_writes_each_block_with_links_relative_to_its_page(tmp_path):
    from flatenn.repro.doc_blocks import refresh_pages

    start, end = "<!-- t:start -->", "<!-- t:end -->"
    (tmp_path / "docs").mkdir()
    for page in (tmp_path / "README.md", tmp_path / "docs" / "page.md"):
        page.write_text(f"intro\n{start}\nold\n{end}\nafter\n")
    (tmp_path / "docs" / "none.md").write_text("no block\n")
    blocks = {(start, end): "![fig](results/x/figures/f.png)"}
    changed = refresh_pages(blocks, repo_root=tmp_path)
    assert sorted(p.name for p in changed) == ["README.md", "page.md"]
    assert (tmp_path / "README.md").read_text() == f"intro\n{start}\n![fig](results/x/figures/f.png)\n{end}\nafter\n"
    assert "](../results/x/figures/f.png)" in (tmp_path / "docs" / "page.md").read_text()
    assert not stale_blocks(blocks, repo_root=tmp_path) and not refresh_pages(blocks, repo_root=tmp_path)
