"""`mnbench run` end to end on this machine's `cpu` and `openvino` devices, with a small model for speed.

Every test that lets a run measure is marked `measures` (`pytest -m 'not slow and not measures'` leaves them out).
"""

import json
import os

import pytest
from typer.testing import CliRunner

from mnbench import results
from mnbench.config import ModelConfig
from mnbench.artifacts.export import export_model, model_path_for

# Two repetitions of 1 s: the least that gives an interval.
SMALL = ["--arch", "v1", "--width", "0.25", "--resolution", "64", "--repetitions", "2", "--max-time", "1"]


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MNBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("MNBENCH_IN_PROCESS", "1")  # one test below runs the real worker processes
    return tmp_path


def invoke(app, *args):
    result = CliRunner().invoke(app, ["run", *args])
    return result


@pytest.mark.measures
@pytest.mark.parametrize("device, runtime", [("cpu", "onnxruntime"), ("openvino", "openvino")])
def test_run_writes_a_valid_result_with_both_variants(app, dirs, device, runtime, monkeypatch):
    if device == "cpu":
        monkeypatch.delenv("MNBENCH_IN_PROCESS")  # each pass in a fresh worker process, as a user runs it
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--device", device, "--no-peak", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)  # the path is the last line
    doc = results.load_result(out)
    by_variant = {r["variant"]: r for r in doc["records"]}
    assert set(by_variant) == {"separable", "standard"}
    for record in by_variant.values():
        assert record["device"] == device and record["runtime"] == runtime
        assert record["precision"] == "fp32"  # read back from the runtime, not echoed from the request
        assert record["threads"] == 1  # the default
        assert sum(record["round_sizes"]) == record["n"] == len(record["samples_ms"]) >= 10
        assert record["latency_ms"]["min"] <= record["latency_ms"]["p50"] <= record["latency_ms"]["max"]
        # Two independent repetitions (--repetitions 2, and --max-time 1 leaves no time for a third).
        assert len(record["repetition_rounds"]) == 2 == record["latency_estimate"]["repetitions"]
        assert min(record["repetition_rounds"]) >= 3  # every repetition alternates the pair at least three times
        assert sum(record["repetition_rounds"]) == len(record["round_sizes"])
        exported = export_model(ModelConfig(arch="v1", variant=record["variant"], width=0.25, resolution=64),
                                progress=False)
        assert record["model_sha256"] == exported.sha256
        assert record["macs"] == exported.cost.macs
        # Only the models: no control and no reference unless a baseline for `mnbench check` is recorded.
        assert "controls" not in record and "reference" not in record
    if device == "cpu":
        assert by_variant["separable"]["providers"] == ["CPUExecutionProvider"]
    assert by_variant["standard"]["macs"] > by_variant["separable"]["macs"]
    assert doc["machine"]["versions"]["mnbench"]
    # Steal and load sampled over each pass; a pass other processes disturbed is measured again and kept apart.
    assert len([s for s in doc["machine_state"]["repetitions"] if not s.get("discarded")]) == 2
    assert doc["settings"]["measure"]["repetitions"] == 2
    # The answer leads: the realized speedup and its interval, the very figures the report computes.
    from mnbench.report.pairs import build_report
    from mnbench.report.columns import interval, speedup
    (row,) = build_report([(out, doc)]).rows
    assert speedup(row["realized_speedup"]) in result.output and interval(row["realized_speedup_ci"]) in result.output
    assert row["realized_speedup"] == pytest.approx(row["min_ms_standard"] / row["min_ms_separable"], rel=1e-12)
    assert max(len(line) for line in result.stdout.splitlines()[:-1]) <= 100  # the last line is the file's path


@pytest.mark.measures
def test_for_check_records_the_controls_and_the_reference(app, dirs):
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--no-peak", "--for-check", "--output", str(out))
    assert result.exit_code == 0, result.output
    (record,) = results.load_result(out)["records"]
    control = record["controls"][record["model_sha256"]]
    assert len(control["round_sizes"]) == len(record["round_sizes"])  # in the same interleaved rounds
    assert control["settings"] == record["settings"]  # the benchmark's settings are still the frozen ones
    assert len(record["reference"]["round_sizes"]) == len(record["round_sizes"])


@pytest.mark.measures
def test_repetitions_option_sets_the_least_number_of_independent_measurements(app, dirs):
    out = dirs / "r.json"
    result = invoke(app, *SMALL[:-4], "--variant", "separable", "--device", "cpu", "--no-peak", "--repetitions", "3",
                    "--max-time", "1.5", "--output", str(out))
    assert result.exit_code == 0, result.output
    (record,) = results.load_result(out)["records"]
    assert len(record["repetition_rounds"]) == 3
    assert len(results.Record.from_json(record).repetitions()) == 3


@pytest.mark.measures
def test_default_output_goes_to_reports_runs(app, dirs):
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "cpu", "--no-peak")
    assert result.exit_code == 0, result.output
    written = list((dirs / "reports" / "runs").glob("*.json"))
    assert len(written) == 1 and str(written[0]).endswith(result.output.strip().splitlines()[-1])
    assert "reference" not in results.load_result(written[0])["records"][0]


@pytest.mark.measures
def test_batch_records_macs_per_image(app, dirs):
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "cpu", "--batch", "2", "--no-peak",
                    "--output", str(out))
    assert result.exit_code == 0, result.output
    record = results.load_result(out)["records"][0]
    single = export_model(ModelConfig(arch="v1", width=0.25, resolution=64), progress=False)
    assert record["batch"] == 2 and record["macs"] == single.cost.macs
    assert record["throughput_ips"] == pytest.approx(2 / (record["latency_ms"]["mean"] / 1e3))


@pytest.mark.measures
def test_sweep_of_widths_and_resolutions(app, dirs):
    out = dirs / "r.json"
    result = invoke(app, "--arch", "v1", "--width", "0.25,0.5", "--resolution", "64,96", "--variant", "separable",
                    "--device", "cpu", "--repetitions", "2", "--max-time", "1", "--no-peak", "--output", str(out))
    assert result.exit_code == 0, result.output
    configs = {(r["width"], r["resolution"]) for r in results.load_result(out)["records"]}
    assert configs == {(0.25, 64), (0.25, 96), (0.5, 64), (0.5, 96)}


@pytest.mark.measures
def test_damaged_cached_model_is_rebuilt_not_benchmarked(app, dirs):
    config = ModelConfig(arch="v1", variant="separable", width=0.25, resolution=64)
    good = export_model(config, progress=False)
    path = model_path_for(config)
    path.write_bytes(path.read_bytes()[:-100])  # torn file
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "cpu", "--no-peak", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert results.load_result(out)["records"][0]["model_sha256"] == good.sha256 == export_model(config).sha256


def _interrupt_on_call(monkeypatch, nth):
    from mnbench.measure import loop as measure

    real = measure.measure_interleaved
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(measure, "measure_interleaved", flaky)


@pytest.mark.measures
def test_ctrl_c_keeps_completed_passes_whole(app, dirs, monkeypatch):
    _interrupt_on_call(monkeypatch, nth=3)  # the first pass (both groups) completes, the second is interrupted
    out = dirs / "out" / "r.json"
    result = invoke(app, *SMALL, "--resolution", "64,96", "--device", "cpu", "--no-peak", "--output", str(out))
    assert result.exit_code == 130
    doc = results.load_result(out)
    assert {(r["resolution"], r["variant"]) for r in doc["records"]} == {(64, "separable"), (64, "standard"),
                                                                        (96, "separable"), (96, "standard")}
    assert all(len(r["repetition_rounds"]) == 1 for r in doc["records"])  # the interrupted pass left nothing
    assert os.listdir(out.parent) == ["r.json"]  # no temp file left


def test_ctrl_c_before_any_record_writes_nothing(app, dirs, monkeypatch):
    _interrupt_on_call(monkeypatch, nth=1)
    out = dirs / "out" / "r.json"
    result = invoke(app, *SMALL, "--device", "cpu", "--no-peak", "--output", str(out))
    assert result.exit_code == 130
    assert not out.exists() and os.listdir(out.parent) == []


@pytest.mark.measures
def test_json_format_prints_the_document(app, dirs):
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "openvino", "--no-peak", "--format", "json",
                    "--output", str(out))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # nothing but the document on stdout
    assert printed["records"][0]["runtime"] == "openvino"


@pytest.mark.measures
@pytest.mark.parametrize("workers_seen", [2, 3])  # Ctrl-C in the second pass, and in the third
def test_a_real_sigint_keeps_every_completed_pass_in_a_whole_file(dirs, monkeypatch, workers_seen):
    """A real SIGINT to a real `mnbench run` process (each pass runs in a fresh worker: the n-th worker's start
    means n - 1 passes are complete): exit code 130, and the result file holds those passes, whole and loadable."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    monkeypatch.delenv("MNBENCH_IN_PROCESS")
    out = dirs / "out" / "r.json"
    command = [sys.executable, "-m", "mnbench", "run", *SMALL[:-4], "--repetitions", "5", "--max-time", "5",
               "--device", "cpu", "--no-peak", "--output", str(out)]
    # A shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt: restore it.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers, deadline = set(), time.monotonic() + 120
    while len(workers) < workers_seen and process.poll() is None and time.monotonic() < deadline:
        workers |= {child.pid for child in psutil.Process(process.pid).children()
                    if "spawn_main" in " ".join(_cmdline(child))}  # not multiprocessing's resource tracker
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    doc = results.load_result(out)
    assert {r["variant"] for r in doc["records"]} == {"separable", "standard"}
    assert {len(r["repetition_rounds"]) for r in doc["records"]} == {workers_seen - 1}
    assert "interrupted: kept" in stderr and os.listdir(out.parent) == ["r.json"]


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:  # it ended between listing and reading
        return []


@pytest.mark.measures
def test_a_pass_that_other_processes_disturbed_is_measured_again(app, dirs, monkeypatch):
    """Other processes taking the CPU during a pass (here: the first, as machine_state reports it) make the run
    measure that pass again, and say so; the records hold only the passes kept."""
    from mnbench.host import load as machine_state

    real, calls = machine_state.between, {"n": 0}

    def first_pass_busy(a, b):
        calls["n"] += 1
        state = real(a, b)
        return state | {"others_fraction": 0.4} if calls["n"] == 1 else state | {"others_fraction": 0.0}

    monkeypatch.setattr(machine_state, "between", first_pass_busy)
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "cpu", "--no-peak", "--output", str(out))
    assert result.exit_code == 0, result.output
    doc = results.load_result(out)
    state = doc["machine_state"]
    assert state["discarded_passes"] == 1 and [s["discarded"] for s in state["repetitions"]] == [True, False, False]
    assert len(doc["records"][0]["repetition_rounds"]) == 2  # the two kept passes
    assert state["others_fraction_max"] == 0.0  # of the passes kept
    assert "1 busy pass measured again" in " ".join(result.output.split())  # the line wraps at 100 columns


@pytest.mark.measures
def test_other_processes_busy_in_every_pass_are_kept_after_four_tries_and_warned_about(app, dirs, monkeypatch):
    from mnbench.host import load as machine_state

    real = machine_state.between
    monkeypatch.setattr(machine_state, "between", lambda a, b: real(a, b) | {"others_fraction": 0.3})
    out = dirs / "r.json"
    result = invoke(app, *SMALL, "--variant", "separable", "--device", "cpu", "--no-peak", "--output", str(out))
    assert result.exit_code == 0, result.output
    state = results.load_result(out)["machine_state"]
    assert state["discarded_passes"] == 4 and len(state["repetitions"]) == 6
    text = " ".join(result.output.split())
    assert "other processes used up to 30% of the CPU" in text and "unfit for timing" in text
