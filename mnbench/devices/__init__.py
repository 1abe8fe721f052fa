"""The devices mnbench knows (registry) and how each runtime's devices are found."""
