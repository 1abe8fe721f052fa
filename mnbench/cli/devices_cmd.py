"""`mnbench devices`: every device name, whether it is available here, and if not, why."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from mnbench.cli.common import Format, render


def devices(fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table) -> None:
    """List the devices mnbench knows and whether each is available on this machine."""
    from mnbench.devices.registry import list_devices

    rows = [asdict(d) for d in list_devices()]
    for row in rows:
        row["status"] = "available" if row["available"] else f"unavailable: {row['reason']}"
    render(rows, fmt, [("name", "device"), ("runtime", "runtime"), ("status", "status")], title="Devices")
