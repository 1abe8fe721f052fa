"""The per-layer roofline (model), `mnbench predict`, `mnbench peak` and its workloads, device specs."""
