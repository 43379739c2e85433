"""Argument types of the command line: each parses one option's text and refuses what is out of bounds in one line
that names the option (argparse prefixes it), before any work."""

from __future__ import annotations

import argparse
import math
import re
import sys


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``python -m flatenn campaign: error: --rates: ...`` and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def split_items(text: str, option: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{option} needs at least one value, got {text!r}")
    return items


MAX_POINTS = 1000  # rates or counts of one campaign; more is a typo (each is a full set of trials)
MAX_SEED = 2**32 - 1  # training seeds: what every seeded generator the training uses accepts
MAX_EPOCHS = 10_000
MAX_WIDTH = 1024  # channels of the first stage: a wider model of the built-in kinds does not fit this kind of machine
MAX_PROBES = 10_000  # Hutchinson probes / random directions of a sharpness measurement


def bounded_items(text: str, option: str) -> list[str]:
    items = split_items(text, option)
    if len(items) > MAX_POINTS:
        raise argparse.ArgumentTypeError(f"{option} takes at most {MAX_POINTS} values, got {len(items)}")
    return items


def rate_list(text: str) -> list[float]:
    out = []
    for t in bounded_items(text, "--rates"):
        try:
            r = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bit error rates are numbers in [0, 1] like 1e-3,1e-2; got {t!r}"
            ) from None
        if not 0.0 <= r <= 1.0:
            raise argparse.ArgumentTypeError(f"bit error rates must be in [0, 1], got {t}")
        out.append(r)
    return out


def whole_numbers(text: str, what: str, allow_ranges: bool) -> list[int]:
    out = []
    for t in bounded_items(text, what):
        a, sep, b = t.partition("-") if allow_ranges and not t.startswith("-") else (t, "", "")
        try:
            vals = list(range(int(a), int(b) + 1)) if sep else [int(a)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} are whole numbers"
                + (" like 7 or 0-3,7" if allow_ranges else " like 1,10,100")
                + f", got {t!r}"
            ) from None
        if any(v < 0 for v in vals):
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {t!r}")
        out += vals
        if len(out) > MAX_POINTS:
            raise argparse.ArgumentTypeError(f"{what}: at most {MAX_POINTS} values, got a range of {len(vals)}")
    return out


def count_list(text: str) -> list[int]:
    return whole_numbers(text, "fault counts", allow_ranges=False)


def bit_list(text: str) -> list[int]:
    return whole_numbers(text, "bit positions", allow_ranges=True)


def whole_number(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:,}, got {v:,}")
        return v

    return parse


MAX_TRIALS = 1_000_000  # fault maps per point; more is a typo (and points x trials is bounded again by the library)


def one_rate(text: str) -> float:
    rates = rate_list(text)
    if len(rates) != 1:
        raise argparse.ArgumentTypeError(f"give one bit error rate (a map is per rate), got {text!r}")
    return rates[0]


def _finite_float(text: str, bound: str) -> float:
    """``text`` as a finite float; the errors name the ``bound`` the option wants (e.g. ``> 0``)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
    return v


def positive_float(text: str) -> float:
    v = _finite_float(text, "> 0")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def fraction(text: str) -> float:
    """A probability strictly between 0 and 1 (a power, a level)."""
    v = positive_float(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1) like 0.8, got {text}")
    return v


def nonneg_float(text: str) -> float:
    v = _finite_float(text, ">= 0")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def remeasure_count(text: str) -> int | str:
    return "all" if text == "all" else whole_number(0)(text)


def regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a valid regular expression ({e}): {text!r}") from None
    return text


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir", default=None, help="model zoo folder (default $FLATENN_CACHE or ~/.cache/flatenn/zoo)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def add_executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run the work units in this process (default) or as Ray tasks (pip install 'flatenn[ray]')",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join: 'auto' (this machine's cluster) or host:port (default: start a local Ray instance)",
    )
