"""The gate's threshold: how a user writes it (`10%`, `0.1`) and what it may be."""
from __future__ import annotations

from mnbench.errors import MnbenchError


def parse_threshold(text: str | float) -> float:
    """`10%`, `10 %` or `0.1` -> 0.1; anything else, or outside (0, 100 %), a MnbenchError."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise MnbenchError(f"threshold must be a percentage or a fraction (e.g. 10% or 0.1), got {text!r}") from None
    return check_threshold(value)


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold < 1.0:
        raise MnbenchError(f"threshold must be between 0 and 100 % (e.g. 10% or 0.1), got {threshold}")
    return threshold
