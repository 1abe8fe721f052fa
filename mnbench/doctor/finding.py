"""What one check of `mnbench doctor` found; the machine it reads is a `mnbench.host.facts.Host` (/proc and /sys under
injectable roots)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
