"""Build hooks of the documentation site: the repository files a page links (figures under ``results/``, plan
files, reports) travel into the site.

A page in ``docs/`` links such a file as ``../results/...`` or ``../flatenn/...`` (right on GitHub, where the
page sits beside them); the site has no such folders above its pages, so each linked file is added to the site's
files and the page's link is pointed at it. Markdown files outside ``docs/`` are named in code, not linked (they
would become pages of the site).
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
LINKED = re.compile(r"\]\(\.\./((?:results|flatenn)/[^)\s#]+\.(?:png|txt|toml|csv|json))\)")


def on_files(files: Files, config) -> Files:
    """Add every repository file a page links (and that exists) to the site, at its path under the site's root."""
    linked = set()
    for page in (ROOT / "docs").rglob("*.md"):
        linked |= set(LINKED.findall(page.read_text()))
    for rel in sorted(linked):
        if (ROOT / rel).is_file():
            files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Point a page's links to repository files at the copies the site holds."""
    depth = page.file.src_uri.count("/")
    return LINKED.sub(lambda m: "](" + "../" * depth + m.group(1) + ")", markdown)
