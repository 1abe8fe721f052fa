"""Statistics: over one series of samples (samples), over repetitions and runs (repetitions)."""
