"""Where mnbench keeps its files: `models/` and `reports/` relative to the working directory.

Like a project's own folders; `MNBENCH_MODELS_DIR` / `MNBENCH_REPORTS_DIR` (or the matching CLI options) move them.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path


def models_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("MNBENCH_MODELS_DIR") or "models")


def reports_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("MNBENCH_REPORTS_DIR") or "reports")


# Folders of a reports dir that hold mnbench's own bookkeeping (`host_history`, `peak`), not result files.
BOOKKEEPING_DIRS = ("host", "peaks")


def runs_dir(reports: str | os.PathLike | None = None) -> Path:
    return reports_dir(reports) / "runs"


def default_run_output(reports: str | os.PathLike | None = None, suffix: str = "") -> Path:
    """Where a result file goes unless told: `runs/<UTC time>-<host><suffix>.json`, e.g.
    `reports/runs/20261203T125800Z-bench1-profile.json`."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return runs_dir(reports) / f"{stamp}-{socket.gethostname()}{suffix}.json"
