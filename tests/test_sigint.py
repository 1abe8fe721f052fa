"""A real SIGINT (Ctrl-C) sent to a real `mnbench check` and `mnbench profile` process, with a tiny model.

What they promise: exit code 130. `check` writes its --output result and its --junit report only once every model
is measured, so an interrupted check says "interrupted: nothing written" and leaves neither, nor a temp file.
`profile` saves its result file only after profiling and its runtime's trace folder is removed, so an interrupted
profile leaves nothing behind (Typer turns its KeyboardInterrupt into exit 130 without a word). `mnbench run`'s
partial file: tests/test_run.py.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from mnbench import results

TINY = ["--arch", "v1", "--width", "0.25", "--resolution", "64"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MNBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    (tmp_path / "tmp").mkdir()
    # The child's own temp folder, to see what it leaves there; Rich shows its progress line as on a terminal (the
    # check's status names each repetition it has measured), wide enough not to wrap.
    return os.environ | {"TMPDIR": str(tmp_path / "tmp"), "TTY_COMPATIBLE": "1", "COLUMNS": "200"}


def _start(command, env):
    """The command as a process, SIGINT restored (a shell's background job starts with it ignored, and Python then
    never raises KeyboardInterrupt), its stderr collected as it comes."""
    process = subprocess.Popen([sys.executable, "-m", "mnbench", *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stderr = bytearray()

    def read():
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            stderr.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return process, stderr, reader


def _interrupt_when(process, ready, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the command ended before it could be interrupted"
    assert ready(), "the command never got to the point to interrupt"
    process.send_signal(signal.SIGINT)
    process.stdout.read()
    process.wait(timeout=60)


def _left_in(folder):
    """What mnbench left in a temp folder (a library beside it writes its own `.ses` session file there)."""
    return [name for name in os.listdir(folder) if name != ".ses"]


@pytest.mark.measures
def test_a_real_sigint_to_check_exits_130_and_writes_nothing(app, env, tmp_path, monkeypatch):
    out = tmp_path / "out"
    baseline = out / "baseline.json"
    monkeypatch.setenv("MNBENCH_IN_PROCESS", "1")
    made = CliRunner().invoke(app, ["run", *TINY, "--variant", "separable", "--device", "cpu", "--repetitions", "2",
                                    "--max-time", "1", "--no-peak", "--for-check", "--output", str(baseline)])
    assert made.exit_code == 0, made.output
    command = ["check", "--baseline", str(baseline), "--max-time", "60", "--output", str(out / "current.json"),
               "--junit", str(out / "junit.xml")]
    process, stderr, reader = _start(command, env)
    # The status line names the model once a repetition is measured: the interrupt falls in a later one.
    _interrupt_when(process, lambda: b"measuring v1-separable-w0.25-r64-b1" in stderr)
    reader.join(timeout=10)
    assert process.returncode == 130, stderr.decode(errors="replace")[-2000:]
    assert b"interrupted: nothing written (--output and --junit" in re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", stderr)
    assert sorted(os.listdir(out)) == ["baseline.json"]  # no result, no junit, no temp file
    results.load_result(baseline)  # the baseline it read is untouched
    assert _left_in(tmp_path / "tmp") == []


@pytest.mark.measures
def test_a_real_sigint_to_profile_exits_130_and_leaves_nothing_behind(env, tmp_path):
    command = ["profile", *TINY, "--device", "cpu", "--iterations", "20000", "--format", "json"]
    process, stderr, reader = _start(command, env)
    # The runtime's trace folder appears when the profiled session opens: the interrupt falls while it profiles.
    _interrupt_when(process, lambda: any(n.startswith("mnbench-profile-") for n in os.listdir(tmp_path / "tmp")))
    reader.join(timeout=10)
    assert process.returncode == 130, stderr.decode(errors="replace")[-2000:]
    assert "interrupted: nothing written" in stderr.decode(errors="replace")
    assert _left_in(tmp_path / "tmp") == []  # the runtime's trace folder went with the process
    runs = tmp_path / "reports" / "runs"
    assert not runs.exists() or os.listdir(runs) == []  # no profile result saved
