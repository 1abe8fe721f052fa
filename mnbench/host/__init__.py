"""Facts about this machine: CPU, cores and quota (facts), result metadata (machine), load and steal (load),
the best reference speed it has shown (history)."""
