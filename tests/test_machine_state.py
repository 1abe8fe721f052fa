"""Machine state between two snapshots (faked and on this machine), and the host's best reference latency
(best-keeping, atomic, damaged files)."""

import json
import os

import pytest

from mnbench.host import history as host_history
from mnbench.host import load as machine_state
from mnbench.host.facts import CPU_FIELDS


def snap(cpu, loadavg=(1.5, 0.8, 0.4), at=0.0):
    """A snapshot as `snapshot()` takes it: CPU seconds per field (user nice system idle iowait irq softirq steal)."""
    return {"monotonic_s": at, "cpu": dict(zip(CPU_FIELDS, cpu)) if cpu is not None else None,
            "loadavg": list(loadavg) if loadavg is not None else None}


def test_snapshot_reads_cpu_time_and_load_on_this_machine():
    now = machine_state.snapshot()
    assert set(now) == {"monotonic_s", "cpu", "loadavg", "own_cpu_s"} and isinstance(now["monotonic_s"], float)
    assert set(now["cpu"]) == set(CPU_FIELDS) and len(now["loadavg"]) == 3
    json.dumps(now)  # JSON-serialisable
    state = machine_state.between(now, machine_state.snapshot())
    assert set(state) == {"interval_s", "steal_fraction", "busy_fraction", "others_fraction", "loadavg_1m"}
    assert state["interval_s"] >= 0


def test_between_gives_steal_and_busy_shares_of_all_cpu_time():
    a = snap([100, 0, 50, 800, 10, 0, 0, 40])
    # +60 user, +20 system, +90 idle, +10 iowait, +20 steal: 200 in all
    b = snap([160, 0, 70, 890, 20, 0, 0, 60], loadavg=(2.25, 1, 1), at=2.5)
    state = machine_state.between(a, b)
    assert state["steal_fraction"] == pytest.approx(20 / 200)
    assert state["busy_fraction"] == pytest.approx(80 / 200)
    assert state["loadavg_1m"] == 2.25 and state["interval_s"] == 2.5
    assert state["others_fraction"] is None  # the snapshots do not say what this process used


def test_others_fraction_is_the_busy_time_this_process_tree_did_not_use():
    a = snap([100, 0, 50, 800, 10, 0, 0, 40]) | {"own_cpu_s": 10.0}
    b = snap([160, 0, 70, 890, 20, 0, 0, 60], at=2.5) | {"own_cpu_s": 60.0}  # 80 busy, 50 of them ours
    assert machine_state.between(a, b)["others_fraction"] == pytest.approx(30 / 200)
    b["own_cpu_s"] = 95.0  # more than the busy time (clock granularity): others never below zero
    assert machine_state.between(a, b)["others_fraction"] == 0.0


def test_missing_figures_give_none_not_an_error(monkeypatch):
    monkeypatch.setattr(machine_state, "cpu_times", lambda: None)
    monkeypatch.setattr(machine_state, "load_average", lambda: None)
    empty = machine_state.snapshot()
    assert empty["cpu"] is None and empty["loadavg"] is None
    assert machine_state.between(empty, machine_state.snapshot()) | {"interval_s": 0} == {
        "interval_s": 0, "steal_fraction": None, "busy_fraction": None, "others_fraction": None, "loadavg_1m": None}


def test_no_cpu_time_passed_is_none():
    still = snap([1, 2, 3, 4, 0, 0, 0, 0])
    assert machine_state.between(still, still)["steal_fraction"] is None


# --- host history ------------------------------------------------------------------------------------------------

KEY = {"hostname": "h", "cpu_model": "AMD EPYC", "device": "cpu", "runtime": "onnxruntime", "runtime_version": "1.20",
       "precision": "fp32", "threads": 2, "reference": "onnx-sepconv4x32c48px-v2"}


def test_the_best_p50_is_kept_per_key(tmp_path):
    first = host_history.note_reference(KEY, 2.0, reports_dir=tmp_path)
    assert first == {"best_ms": 2.0, "this_ms": 2.0, "slowdown": 1.0, "runs_seen": 1}
    assert host_history.note_reference(KEY, 1.5, reports_dir=tmp_path)["slowdown"] == 1.0
    slower = host_history.note_reference(KEY, 3.0, reports_dir=tmp_path)
    assert slower == {"best_ms": 1.5, "this_ms": 3.0, "slowdown": 2.0, "runs_seen": 3}
    other = host_history.note_reference(KEY | {"threads": 1}, 9.0, reports_dir=tmp_path)
    assert other["best_ms"] == 9.0 and other["runs_seen"] == 1  # another setup is never compared
    best = host_history.read_best(KEY, reports_dir=tmp_path)
    assert best["best_ms"] == 1.5 and best["runs_seen"] == 3
    assert host_history.read_best(KEY | {"device": "openvino"}, reports_dir=tmp_path) is None
    path = tmp_path / "host" / "reference_best.json"
    assert json.loads(path.read_text())["schema_version"] == 1


def test_a_key_with_tuples_matches_after_the_json_round_trip(tmp_path):
    host_history.note_reference(KEY | {"flags": ("avx2", "fma")}, 2.0, reports_dir=tmp_path)
    assert host_history.read_best(KEY | {"flags": ["avx2", "fma"]}, reports_dir=tmp_path)["best_ms"] == 2.0


def test_the_reports_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_REPORTS_DIR", str(tmp_path / "r"))
    host_history.note_reference(KEY, 1.0)
    assert (tmp_path / "r" / "host" / "reference_best.json").is_file()


def test_the_write_is_atomic(tmp_path, monkeypatch):
    host_history.note_reference(KEY, 2.0, reports_dir=tmp_path)
    path = host_history.history_path(tmp_path)
    before = path.read_text()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        host_history.note_reference(KEY, 1.0, reports_dir=tmp_path)
    assert path.read_text() == before  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # and no temp file left


@pytest.mark.parametrize("content", ["{not json", '{"schema_version": 9, "entries": []}', '[1, 2]',
                                     '{"schema_version": 1, "entries": [{"key": {}, "best_ms": -1, "runs_seen": 1}]}',
                                     b"\xff\xfe\x00"])
def test_a_damaged_file_is_replaced_with_a_warning(tmp_path, content):
    path = host_history.history_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.warns(UserWarning, match="reference history"):
        assert host_history.read_best(KEY, reports_dir=tmp_path) is None
    with pytest.warns(UserWarning, match="reference history"):
        assert host_history.note_reference(KEY, 2.0, reports_dir=tmp_path)["runs_seen"] == 1
    assert host_history.read_best(KEY, reports_dir=tmp_path)["best_ms"] == 2.0  # the replacement reads


@pytest.mark.parametrize("p50", [float("nan"), 0.0, -1.0, float("inf")])
def test_a_p50_that_is_no_latency_is_not_recorded(tmp_path, p50):
    host_history.note_reference(KEY, 2.0, reports_dir=tmp_path)
    seen = host_history.note_reference(KEY, p50, reports_dir=tmp_path)
    assert seen == {"best_ms": 2.0, "this_ms": None, "slowdown": None, "runs_seen": 1}
