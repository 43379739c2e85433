"""What one run records about itself: its id, code (git state), command, versions, device, timings, and its
entry in the results folder's ``provenance.json``.

A run lists itself (status ``running``) before it writes its first row, so a run killed at any point is still
listed beside its rows; it becomes ``finished`` or ``interrupted`` when it ends.
"""

from __future__ import annotations

import datetime
import platform
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .folder import ResultsFolder


def git_state(root: Path | None = None) -> dict:
    """Git commit and dirty flag of the working tree (``unknown`` outside git)."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flatenn", "benchmarks"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


def new_run_id(git: dict) -> str:
    """``<UTC time>-<commit[:8]>-<4 random hex>`` (``+dirty`` when the code differs from the commit).

    The random part keeps two runs started in the same second (a killed run and its immediate rerun,
    two processes on one machine) apart.
    """
    t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{t}-{git['commit'][:8]}-{secrets.token_hex(2)}" + ("+dirty" if git.get("dirty") else "")


class RunRecord:
    """This run: its identity, what it computed and how long each part took, and its provenance entry."""

    def __init__(self, folder: ResultsFolder, scale, device: torch.device, command: str | None = None) -> None:
        self.folder, self.scale, self.device = folder, scale, device
        self.git = git_state()  # at start: the code that runs is the code recorded
        self.run_id = new_run_id(self.git)
        self.command = command or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
        self.timings: dict[str, float] = {}
        self.computed = False  # whether this run measured or trained anything (provenance is written only then)
        self.begun = False  # whether provenance.json lists this run yet (see begin)

    def entry(self, status: str) -> dict:
        """This run's provenance entry: git state, command, versions, device, timings, status."""
        import flatenn

        return {
            "run_id": self.run_id,
            "git": self.git,
            "command": self.command,
            "status": status,
            "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "flatenn": getattr(flatenn, "__version__", "unknown"),
            },
            "device": {
                "type": self.device.type,
                "name": torch.cuda.get_device_name(self.device)
                if self.device.type == "cuda"
                else platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
            },
            "timings_s": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }

    def begin(self) -> None:
        """List this run in provenance.json (status ``running``) before it writes its first row."""
        if self.begun:
            return
        self.begun = True
        self.write_provenance(status="running", keep_unused=True)

    def write_provenance(self, status: str = "finished", keep_unused: bool = False, derived: bool = False) -> None:
        """provenance.json with this run's entry (see :meth:`ResultsFolder.write_provenance`)."""
        self.folder.write_provenance(self.entry(status), self.scale, keep_unused, derived)

    def provenance_current(self) -> bool:
        """Whether provenance.json lists every run named in the tables, no unfinished run, and today's checksums."""
        return self.folder.provenance_current(self.run_id)
