"""Where the time goes: per-operator-category time from the runtime's own profiler, set against the cost model.

The runtime reports time per *kernel* (`mnbench.backends`, a session opened with `profile=True`); `attribution`
maps kernels back to the exported graph's nodes and from there to the cost model's categories; `table` builds
the per-category and per-node tables; `profile` runs it all for one model and saves the result file. ORT on a
GPU times kernels at launch, so there the GPU's time lands in the runtime's overhead (the profile's `notes` say
so).
"""

from mnbench.profiling.profile import DEFAULT_ITERATIONS, DEFAULT_WARMUP, profile_caveats, profile_model, save_profiles
from mnbench.profiling.table import OVERHEAD_NODE

__all__ = ["DEFAULT_ITERATIONS", "DEFAULT_WARMUP", "OVERHEAD_NODE", "profile_caveats", "profile_model",
           "save_profiles"]
