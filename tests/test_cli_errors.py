"""A user's mistake gets one clear line on stderr and exit code 2, never a traceback."""

import os
import subprocess
import sys

import pytest


def mnbench(*args, cwd=None, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "mnbench", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args, needles", [
    (["models", "--arch", "v9"], ["unknown arch 'v9'", "v1, v2, v3-large, v3-small"]),
    (["export", "--arch", "v9"], ["unknown arch 'v9'"]),
    (["export", "--arch", "v2", "--width", "0"], ["width must be > 0"]),
    (["export", "--arch", "v2", "--width", "-1"], ["width must be > 0"]),
    (["export", "--arch", "v2", "--resolution", "225"], ["positive multiple of 32"]),
    (["export", "--arch", "v2", "--variant", "dense"], ["unknown variant 'dense'", "separable, standard"]),
    (["models", "--resolution", "abc"], ["resolution must be a number"]),
    (["run", "--arch", "v9", "--device", "cpu"], ["unknown arch 'v9'"]),
    (["run", "--arch", "v2", "--device", "tpu"], ["unknown device", "cpu"]),
    (["run", "--arch", "v2", "--device", "cpu", "--variant", "dense"], ["unknown variant"]),
    (["run", "--arch", "v2", "--device", "cpu", "--precision", "int3"], ["unknown precision"]),
    (["run", "--arch", "v2", "--device", "cpu", "--width", "0"], ["width must be > 0"]),
    (["report", "/nonexistent/results"], ["no such file or folder"]),
])
def test_bad_input_is_one_line_and_exit_2(args, needles):
    assert_one_line_error(mnbench(*args), *needles)


def test_unavailable_device_names_the_reason_and_what_is_available():
    result = mnbench("run", "--arch", "v2", "--device", "cuda")
    assert_one_line_error(result, "cuda", "available")


def test_unwritable_export_output_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = mnbench("export", "--arch", "v1", "--width", "0.25", "--resolution", "64",
                     "--models-dir", str(tmp_path / "models"), "--output", str(blocker / "model.onnx"))
    assert_one_line_error(result, str(blocker))


def test_unwritable_run_output_fails_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = mnbench("run", "--arch", "v1", "--device", "cpu", "--output", str(blocker / "r.json"))
    assert_one_line_error(result, "cannot write")


def test_debug_variable_shows_the_traceback():
    result = mnbench("export", "--arch", "v9", env={"MNBENCH_DEBUG": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
