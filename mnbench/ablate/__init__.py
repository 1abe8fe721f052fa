"""`mnbench ablate`: the groups it measures (run) and the papers' claims as bounds (claims)."""
