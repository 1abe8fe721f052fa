"""Measuring: the timed loop (loop), one pass in a worker process (worker), records from measurements
(records), the gate's normalisers (reference, control), and the machine's fitness line (stability)."""
