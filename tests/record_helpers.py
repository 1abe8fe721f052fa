"""Helpers the tests share, written apart from mnbench's own code so that a test checks it, not repeats it."""
import numpy as np


def repetition_fastest(record: dict) -> list[float]:
    """The fastest call of each repetition, split by the record's own round and repetition sizes; a schema v1 record
    (no `repetition_rounds`) is one repetition."""
    samples, sizes = np.asarray(record["samples_ms"]), record["round_sizes"]
    if not record.get("repetition_rounds"):
        return [float(np.min(samples))]
    bounds = np.cumsum([0, *sizes])
    rounds = [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    starts = np.cumsum([0, *record["repetition_rounds"]])
    return [float(np.min(np.concatenate(rounds[a:b]))) for a, b in zip(starts[:-1], starts[1:])]
