"""What one check of `mnbench doctor` found, and the machine it reads: /proc and /sys under injectable roots."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, WARN, UNFIT, UNKNOWN = "ok", "warn", "unfit", "unknown"
STATUSES = (OK, WARN, UNFIT, UNKNOWN)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One check: what was seen, why it matters for a benchmark, what to do. `command` is a command the user may
    run by hand (prefixed with sudo where it needs root); mnbench never runs it."""

    name: str
    status: str
    seen: str
    why: str
    what_to_do: str = ""
    command: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # the figures behind `seen`, for --format json

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Host:
    """Where the checks read the machine: the real /proc and /sys by default, a fake tree in tests.
    `affinity` (the CPUs this process may run on) is read from the kernel when None."""

    proc_root: str | os.PathLike = "/proc"
    sys_root: str | os.PathLike = "/sys"
    affinity: frozenset[int] | None = None

    def read_proc(self, relative: str) -> str | None:
        return _read(Path(self.proc_root) / relative)

    def read_sys(self, relative: str) -> str | None:
        return _read(Path(self.sys_root) / relative)

    def sys_path(self, relative: str) -> Path:
        return Path(self.sys_root) / relative

    def allowed_cpus(self) -> frozenset[int] | None:
        if self.affinity is not None:
            return self.affinity
        try:
            return frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            return None


def _read(path: Path) -> str | None:
    """The file's text, stripped; None when it is missing or unreadable (never needs root: what root alone may
    read is 'unknown')."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def parse_cpu_list(text: str | None) -> frozenset[int] | None:
    """A kernel CPU list ("0-3,8,10-11") as a set; None when it cannot be parsed, empty for ""."""
    if text is None:
        return None
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            cpus.update(range(int(low), int(high or low) + 1))
        except ValueError:
            return None
    return frozenset(cpus)


def format_cpu_list(cpus: frozenset[int] | set[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5", as the kernel and taskset write it."""
    out, ordered = [], sorted(cpus)
    start = prev = None
    for cpu in ordered + [None]:
        if start is not None and (cpu is None or cpu != prev + 1):
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = None
        if cpu is not None and start is None:
            start = cpu
        prev = cpu
    return ",".join(out)
