"""Where mnbench keeps its files: `models/` and `reports/` relative to the working directory.

Like a project's own folders; `MNBENCH_MODELS_DIR` / `MNBENCH_REPORTS_DIR` (or the matching CLI options) move them.
"""

from __future__ import annotations

import os
from pathlib import Path


def models_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("MNBENCH_MODELS_DIR") or "models")


def reports_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("MNBENCH_REPORTS_DIR") or "reports")


# Folders of a reports dir that hold mnbench's own bookkeeping (`host_history`, `peak`), not result files.
BOOKKEEPING_DIRS = ("host", "peaks")


def runs_dir(reports: str | os.PathLike | None = None) -> Path:
    return reports_dir(reports) / "runs"
