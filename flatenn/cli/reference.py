"""The command-line reference page, generated from the argument parser itself so that it cannot drift from it:
every command with its help, and every option with its arguments, type, default, choices and help.

``python -m flatenn.cli.reference --write docs/cli.md`` refreshes the block of that page (``nox -s docs`` does);
a test holds the page to what the parser gives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .parser import DESCRIPTION, build_parser
from .results import ROOT

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _shown(default: object) -> str:
    """A default as the page shows it: a path inside the checkout relative to its root (the page is the same on
    every machine), a list as the comma list the option takes."""
    if isinstance(default, (str, Path)) and Path(default).is_absolute():
        path = Path(default).resolve()
        if path.is_relative_to(ROOT.resolve()):
            return path.relative_to(ROOT.resolve()).as_posix()
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)


def _option_row(action: argparse.Action) -> str:
    """One table row: the option's spellings with its argument, then what it takes and its help."""
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
    else:
        names = f"`{action.metavar or action.dest}`"
    takes = []
    if action.choices is not None:
        takes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.required:
        takes.append("required")
    if action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
        takes.append(f"default `{_shown(action.default)}`")
    help_text = (action.help or "").replace("%(default)s", str(action.default)).replace("%%", "%")
    return f"| {_cell(names)} | {_cell('; '.join(takes))} | {_cell(help_text)} |"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of every command, in the order ``--help`` lists them."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    return [(name, helps.get(name, ""), p) for name, p in sub.choices.items()]


def reference_markdown() -> str:
    """The reference block: the program's description, then per command its usage, help and option table."""
    parser = build_parser()
    out = [DESCRIPTION, ""]
    commands = _subcommands(parser)
    out.append("Commands: " + ", ".join(f"[`{name}`](#{name})" for name, _, _ in commands) + ".")
    for name, help_text, p in commands:
        usage = " ".join(p.format_usage().split())
        usage = usage.removeprefix("usage: ")
        out += ["", f"## {name}", "", f"{help_text[:1].upper()}{help_text[1:]}.", "", "```text", usage, "```", ""]
        rows = [a for a in p._actions if not isinstance(a, argparse._HelpAction)]
        out += ["| option | takes | what it does |", "|---|---|---|", *(_option_row(a) for a in rows)]
    return "\n".join(out)


def write_reference(page: Path) -> bool:
    """Put the reference block into ``page`` between its markers; whether the page changed."""
    text = page.read_text()
    if START not in text:
        raise ValueError(f"{page} has no {START} marker; add the markers where the reference goes")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{START}\n{reference_markdown()}\n{END}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flatenn.cli.reference", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", type=Path, help="the page whose reference block to refresh (default: print it)")
    a = ap.parse_args(argv)
    if a.write is None:
        print(reference_markdown())
        return 0
    print(f"{a.write}: {'refreshed' if write_reference(a.write) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
