"""How a record of a user's paired ONNX file (mnbench.artifacts.user_models) says which pair it is in and in what role.

Its `model` entry holds {"pair": {"name": "<baseline>-vs-<candidate>", "role": "baseline" | "candidate"}}; in the
report the baseline takes the standard slot and the candidate the separable one, so a user's pair gets the same
theoretical and realized speedup columns (baseline / candidate) as a MobileNet and its standard twin.
"""

from __future__ import annotations

from typing import Any, Mapping

ROLES = ("baseline", "candidate")
SLOTS = {"baseline": "standard", "candidate": "separable"}


def pair_name(baseline: str, candidate: str) -> str:
    return f"{baseline}-vs-{candidate}"


def user_pair(record: Mapping[str, Any]) -> Mapping[str, str] | None:
    """{"name", "role"} of a record of a user's paired ONNX file; None for every other record."""
    model = record.get("model")
    pair = model.get("pair") if isinstance(model, Mapping) else None
    return pair if isinstance(pair, Mapping) and "name" in pair else None
