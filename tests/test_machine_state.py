"""Machine state from a fake /proc, and the host's best reference latency (best-keeping, atomic, damaged files)."""

import json
import os

import pytest

from mnbench import host_history, machine_state


def write_proc(root, *, cpu="cpu  100 0 50 800 10 0 0 40", loadavg="1.50 0.80 0.40 2/300 1234", cpus=2):
    root.mkdir(parents=True, exist_ok=True)
    lines = [cpu] + [f"cpu{i} 1 0 1 1 0 0 0 0" for i in range(cpus)] + ["intr 0", "ctxt 0"]
    (root / "stat").write_text("\n".join(lines) + "\n")
    if loadavg is not None:
        (root / "loadavg").write_text(loadavg + "\n")
    return root


def test_snapshot_reads_the_aggregate_cpu_line_and_load(tmp_path):
    snap = machine_state.snapshot(write_proc(tmp_path / "proc"))
    assert snap["cpu"] == {"user": 100, "nice": 0, "system": 50, "idle": 800, "iowait": 10, "irq": 0, "softirq": 0,
                           "steal": 40}
    assert snap["loadavg"] == [1.5, 0.8, 0.4]
    assert isinstance(snap["monotonic_s"], float)
    json.dumps(snap)  # it goes into result files


def test_between_gives_steal_and_busy_shares_of_all_cpu_time(tmp_path):
    a = machine_state.snapshot(write_proc(tmp_path / "a", cpu="cpu  100 0 50 800 10 0 0 40"))
    # +60 user, +20 system, +90 idle, +10 iowait, +20 steal: 200 jiffies in all
    b = machine_state.snapshot(write_proc(tmp_path / "b", cpu="cpu  160 0 70 890 20 0 0 60", loadavg="2.25 1 1 1/1 1"))
    state = machine_state.between(a, b)
    assert state["steal_fraction"] == pytest.approx(20 / 200)
    assert state["busy_fraction"] == pytest.approx(80 / 200)
    assert state["loadavg_1m"] == 2.25
    assert state["interval_s"] >= 0


def test_missing_files_give_none_not_an_error(tmp_path):
    empty = tmp_path / "nothing"
    snap = machine_state.snapshot(empty)
    assert snap["cpu"] is None and snap["loadavg"] is None
    assert machine_state.between(snap, machine_state.snapshot(empty)) | {"interval_s": 0} == {
        "interval_s": 0, "steal_fraction": None, "busy_fraction": None, "loadavg_1m": None}
    assert machine_state.online_cpus(empty) is None
    assert machine_state.busiest_processes(empty, interval_s=0, sleep=lambda s: None) == []


def test_no_cpu_time_passed_is_none_and_an_old_kernel_without_steal_reads(tmp_path):
    snap = machine_state.snapshot(write_proc(tmp_path / "p", cpu="cpu  1 2 3 4"))
    assert snap["cpu"]["steal"] == 0 and snap["cpu"]["idle"] == 4
    assert machine_state.between(snap, snap)["steal_fraction"] is None


def test_online_cpus_counts_the_per_cpu_lines(tmp_path):
    assert machine_state.online_cpus(write_proc(tmp_path / "p", cpus=6)) == 6


def write_process(proc, pid, comm, utime, stime):
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0\n")


def test_busiest_processes_over_the_interval_without_ourselves(tmp_path):
    proc = tmp_path / "proc"
    ticks = os.sysconf("SC_CLK_TCK")
    for pid, comm in [(10, "idle one"), (20, "busy (worker)"), (30, "half"), (os.getpid(), "pytest")]:
        write_process(proc, pid, comm, 100, 100)

    def one_second_passes(_):
        write_process(proc, 20, "busy (worker)", 100 + ticks, 100 + ticks)  # two CPUs' worth
        write_process(proc, 30, "half", 100 + ticks // 2, 100)
        write_process(proc, os.getpid(), "pytest", 100 + 5 * ticks, 100)
        write_process(proc, 40, "newborn", 10 * ticks, 0)  # appeared during the interval: no share known

    times = iter([0.0, 1.0])
    top = machine_state.busiest_processes(proc, n=5, interval_s=1.0, sleep=one_second_passes, clock=lambda: next(times))
    assert [(p["pid"], p["comm"]) for p in top] == [(20, "busy (worker)"), (30, "half")]
    assert top[0]["cpu_share"] == pytest.approx(2.0) and top[1]["cpu_share"] == pytest.approx(0.5, abs=0.01)


def test_busiest_processes_on_this_machine_never_fails():
    top = machine_state.busiest_processes(n=3, interval_s=0.05)
    assert len(top) <= 3 and all(p["pid"] != os.getpid() for p in top)


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
