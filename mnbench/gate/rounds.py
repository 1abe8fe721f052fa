"""Per-round values of one record: log(median of each interleaved round) of the model and, where measured in the
same rounds, of its normaliser (the model file's control or the machine-speed reference). See docs/gate-method.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from mnbench.stats import repetitions
from mnbench.measure.control import control_entry
from mnbench.errors import MnbenchError
from mnbench.gate.matching import record_name

ROUND_QUANTILE = 0.5  # the per-round statistic: the median (see docs/gate-method.md)
FALLBACK_ROUNDS = 20  # pseudo-rounds for a file without round_sizes: like ~0.5 s rounds of a 10 s run


@dataclass(frozen=True, kw_only=True)
class RoundValues:
    """log(the ROUND_QUANTILE quantile) per round of a record's samples and, where measured in the same rounds, of
    its reference."""

    model: np.ndarray
    reference: np.ndarray | None  # aligned with `model`; None without a usable reference
    reference_name: str | None
    method: str  # "rounds" (interleaved rounds) or "chunks" (no round_sizes: consecutive pseudo-rounds)
    repetition: np.ndarray | None = None  # per round, the repetition it belongs to (fresh sessions each)


def _split(samples: Sequence[float], sizes: Sequence[int]) -> list[np.ndarray]:
    x = np.asarray(samples, dtype=float)
    return np.split(x, np.cumsum(sizes)[:-1]) if len(sizes) else []


def _valid_sizes(sizes: Any, n: int) -> bool:
    return (isinstance(sizes, list) and len(sizes) > 0 and all(isinstance(s, int) and s > 0 for s in sizes)
            and sum(sizes) == n)


def _log_round_values(chunks: Iterable[np.ndarray]) -> np.ndarray:
    return np.log(np.array([np.quantile(c, ROUND_QUANTILE) for c in chunks], dtype=float))


def round_values(record: dict[str, Any], control: str | None = None) -> RoundValues:
    """The per-round values of one record (see the module doc), normalised by the machine-speed reference or, with
    `control` (a model file's sha256), by that file's control measured in the record's rounds (`mnbench.measure.control`); no usable
    normaliser gives `reference=None`. MnbenchError if the record's rounds are inconsistent."""
    samples = record["samples_ms"]
    if any(not s > 0 for s in samples):
        raise MnbenchError(f"{record_name(record)}: latency samples must be positive")
    sizes = record.get("round_sizes")
    if sizes is not None and not _valid_sizes(sizes, len(samples)):
        raise MnbenchError(f"{record_name(record)}: round_sizes do not add up to its {len(samples)} samples")
    if sizes is None or len(sizes) < 2:
        n_chunks = min(len(samples), FALLBACK_ROUNDS)
        chunks = np.array_split(np.asarray(samples, dtype=float), n_chunks) if n_chunks else []
        return RoundValues(model=_log_round_values(chunks), reference=None, reference_name=None, method="chunks")
    model = _log_round_values(_split(samples, sizes))
    if control is not None:
        entry, name = control_entry(record, control), f"control {control}"
    else:
        entry = record.get("reference")
        name = entry.get("name") if isinstance(entry, dict) else None
    ref_values = None
    if isinstance(entry, dict):
        ref_sizes, ref_samples = entry.get("round_sizes"), entry.get("samples_ms")
        if (isinstance(ref_samples, list) and _valid_sizes(ref_sizes, len(ref_samples)) and len(ref_sizes) == len(sizes)
                and all(s > 0 for s in ref_samples)):
            ref_values = _log_round_values(_split(ref_samples, ref_sizes))
    return RoundValues(model=model, reference=ref_values, reference_name=name if ref_values is not None else None,
                       method="rounds",
                       repetition=repetitions.repetition_index(record.get("repetition_rounds"), model.size))
