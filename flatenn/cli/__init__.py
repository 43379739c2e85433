"""Command line: ``python -m flatenn {train,campaign,vulnerability,sharpness,reproduce,record,report,verify,bands,
compare,power}``.

Models are named by a *model spec*: ``SCALE:VARIANT:SEED`` (e.g. ``smoke:sparse-saq:0``), a zoo key
(16 hex digits of a cached model), a JSON file holding a training config, or, for your own model,
``torchvision:NAME`` / ``package.module:factory`` (quantized and calibrated on ``--data``). ``train``'s
options are generated from :class:`flatenn.core.train.TrainConfig`; ``--optimizer`` lists the registered
training methods (:mod:`flatenn.core.methods`).
"""

from __future__ import annotations

import errno
import sys

from .measure import cmd_campaign, cmd_sharpness, cmd_vulnerability
from .models import check_results_dir, resolve_config
from .parser import build_parser
from .results import (
    cmd_bands,
    cmd_compare,
    cmd_power,
    cmd_record,
    cmd_report,
    cmd_reproduce,
    cmd_verdicts,
    cmd_verify,
    make_executor,
)
from .train import check_method_fields, cmd_train

__all__ = ["build_parser", "check_method_fields", "check_results_dir", "main", "make_executor", "resolve_config"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if argv[:1] == ["reproduce"] and "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    a = build_parser().parse_args(argv)
    if getattr(a, "quiet", False):
        import os

        os.environ["FLATENN_QUIET"] = "1"
    handlers = {
        "vulnerability": cmd_vulnerability,
        "record": cmd_record,
        "train": cmd_train,
        "campaign": cmd_campaign,
        "sharpness": cmd_sharpness,
        "report": cmd_report,
        "verify": cmd_verify,
        "bands": cmd_bands,
        "power": cmd_power,
        "verdicts": cmd_verdicts,
        "compare": cmd_compare,
    }
    try:
        if a.command == "reproduce":
            return cmd_reproduce(a, extra)
        return handlers[a.command](a)
    except RuntimeError as e:
        from ..core.locks import FolderBusyError
        from ..repro.ray_executor import UnitsFailedError

        if not isinstance(e, (FolderBusyError, UnitsFailedError)):
            raise
        print(f"python -m flatenn {a.command}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, TypeError, PermissionError) as e:
        msg = str(e).strip("'\"") or type(e).__name__
        print(f"python -m flatenn {a.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.ENOSPC:
            where = f" writing {e.filename}" if e.filename else ""
            print(
                f"python -m flatenn {a.command}: error: the disk is full{where}; finished work is kept (files are "
                "written whole or not at all): free space and run the same command to resume",
                file=sys.stderr,
            )
            return 28
        raise
    except KeyboardInterrupt:
        print(
            f"python -m flatenn {a.command}: interrupted; finished work is kept, run the same command to resume",
            file=sys.stderr,
        )
        return 130
