"""Generated blocks in the README and the documentation pages: text put between two markers, so that
``python -m flatenn report`` refreshes every page that holds a block (the README, ``docs/*.md``) and a test pins
each one to what generates it (:func:`flatenn.repro.report.generated_blocks`: tables from the tracked CSVs).

A block is written once, for the repository's root; a page in a subfolder gets its links to ``results/`` made
relative to its own folder, so the same block reads right on GitHub and in the built site.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
Blocks = dict[tuple[str, str], str]  # (start marker, end marker) -> the block's text


def pages(repo_root: Path = REPO_ROOT) -> list[Path]:
    """The tracked markdown pages that may hold generated blocks: the README and every page under ``docs/``."""
    docs = sorted((repo_root / "docs").rglob("*.md")) if (repo_root / "docs").is_dir() else []
    return [repo_root / "README.md", *docs]


def for_page(block: str, page: Path, repo_root: Path = REPO_ROOT) -> str:
    """A block as written in ``page``: its links to ``results/`` relative to the page's folder."""
    rel = os.path.relpath(repo_root, page.parent).replace(os.sep, "/")
    return block if rel == "." else block.replace("](results/", f"]({rel}/results/")


def block_in(text: str, start: str, end: str) -> str | None:
    """The text between two markers of a page (stripped), or None where the page has no such block."""
    if start not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def stale_blocks(blocks: Blocks, repo_root: Path = REPO_ROOT) -> list[str]:
    """``page: marker`` for every block of every page that differs from ``blocks``."""
    stale = []
    for (start, end), block in blocks.items():
        for page in pages(repo_root):
            found = block_in(page.read_text(), start, end)
            if found is not None and found != for_page(block, page, repo_root).strip():
                stale.append(f"{page.relative_to(repo_root)}: {start}")
    return stale


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """Put ``block`` between two markers of a markdown text (unchanged text if no markers)."""
    if start not in text:
        return text
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def refresh_pages(blocks: Blocks, repo_root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite every block of every page that holds it (an empty block is left as it is); the pages it changed."""
    changed = []
    for page in pages(repo_root):
        text = page.read_text()
        new = text
        for (start, end), block in blocks.items():
            if block:
                new = replace_block(new, for_page(block, page, repo_root), start, end)
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed
