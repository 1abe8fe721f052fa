import time

import pytest

from mnbench.cli import app as cli_app


@pytest.fixture(scope="session")
def app():
    """The real `mnbench` Typer app with every command registered, for typer.testing.CliRunner."""
    cli_app._register()
    return cli_app.app


@pytest.fixture(autouse=True)
def _timing_needs_the_measures_marker(request, monkeypatch):
    """A test that is neither `measures` nor `slow` fails if it starts mnbench's timed loop on the real clock in this
    process (run under MNBENCH_IN_PROCESS, check, ablate, peak, doctor's probe): so `pytest -m 'not slow and not
    measures'` never times the machine, and a new test that does cannot forget the marker. (A measuring worker or
    `mnbench` subprocess is out of its sight.)"""
    if request.node.get_closest_marker("measures") or request.node.get_closest_marker("slow"):
        return
    from mnbench.measure import loop

    real = loop._timed_calls

    def timed_calls(call, n_calls, clock):
        if clock is time.perf_counter_ns:
            pytest.fail(f"{request.node.nodeid} times the machine (mnbench's timed loop, real clock): "
                        "mark it @pytest.mark.measures", pytrace=False)
        return real(call, n_calls, clock)

    monkeypatch.setattr(loop, "_timed_calls", timed_calls)
