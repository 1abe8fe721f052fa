"""The `mnbench` command line. `app.py` only composes; each command lives in its own module."""
