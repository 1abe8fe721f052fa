"""`mnbench doctor` against a fake /proc and /sys tree and faked steal, load and memory figures (psutil reads the live
machine only): each check's verdict, missing files, the probe's judgment (faked: no test spends 10 s), and the CLI's
exit codes. One small real probe runs ONNX Runtime."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import mnbench.doctor
from mnbench.doctor import Host, cpu_checks, diagnose, probe, system_checks
from mnbench.doctor.system_checks import Activity
from mnbench.errors import MnbenchError

CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nstepping\t: 8\n"
           "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
           "flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16\n\n"
           "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n")


def fake_tree(root, *, governors=("performance", "performance"), no_turbo=None, boost=None, smt="0", isolated="",
              cpu_max=None, v1_quota=None, self_cgroup="0::/\n", thp="always madvise [never]", cpuinfo=CPUINFO):
    """A /proc and /sys under `root`; an argument of None leaves its file out."""
    files = {
        "proc/cpuinfo": cpuinfo, "proc/self/cgroup": self_cgroup,
        "sys/devices/system/cpu/intel_pstate/no_turbo": no_turbo, "sys/devices/system/cpu/cpufreq/boost": boost,
        "sys/devices/system/cpu/smt/active": smt, "sys/devices/system/cpu/isolated": isolated,
        "sys/fs/cgroup/cpu.max": cpu_max, "sys/fs/cgroup/cpu/cpu.cfs_quota_us": v1_quota,
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000" if v1_quota else None,
        "sys/kernel/mm/transparent_hugepage/enabled": thp,
    }
    for cpu, governor in enumerate(governors or ()):
        files[f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"] = governor
        files[f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_driver"] = "intel_pstate"
    for relative, text in files.items():
        if text is not None:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text + ("" if text.endswith("\n") else "\n"))
    return root


def host(tmp_path, affinity=(0, 1), **tree):
    fake_tree(tmp_path, **tree)
    return Host(proc_root=tmp_path / "proc", sys_root=tmp_path / "sys", affinity=frozenset(affinity))


def quiet(**state):
    return Activity(state={"interval_s": 1.0, "steal_fraction": 0.0, "busy_fraction": 0.02, "loadavg_1m": 0.1}
                    | state, busiest=[], cpus=2)


def fake_probe(medians, host_best=None):
    def run(device, *, probe_time_s, threads, models_dir, reports_dir):
        return {"device": device.name, "threads": threads or 2, "runs": len(medians), "run_s": 1.0,
                "run_medians_ms": list(medians), "host_best": host_best}
    return run


# --- CPU checks ---------------------------------------------------------------------------------------------------

def test_cpu_model_and_isa_flags(tmp_path):
    finding = cpu_checks.check_cpu(host(tmp_path))
    assert finding.status == "ok"
    assert "Xeon(R) Platinum 8480+" in finding.seen and "AMX yes" in finding.seen
    assert finding.values["isa"] == {"AVX2": True, "AVX-512": True, "VNNI": True, "AVX512_BF16": True, "AMX": True}


@pytest.mark.parametrize("governors, status", [(("performance", "performance"), "ok"),
                                               (("powersave", "powersave"), "warn"),
                                               (("performance", "schedutil"), "warn")])
def test_governor(tmp_path, governors, status):
    finding = cpu_checks.check_governor(host(tmp_path, governors=governors))
    assert finding.status == status
    if status == "ok":
        assert finding.command is None
    else:
        assert finding.command == "sudo cpupower frequency-set -g performance"
        assert governors[1] in finding.seen and "intel_pstate" in finding.seen


@pytest.mark.parametrize("tree, status, command", [
    ({"no_turbo": "0"}, "warn", "echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo"),
    ({"no_turbo": "1"}, "ok", None),
    ({"boost": "1"}, "warn", "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost"),
    ({"boost": "0"}, "ok", None),
    ({}, "unknown", None),
])
def test_turbo_and_boost(tmp_path, tree, status, command):
    finding = cpu_checks.check_boost(host(tmp_path, **tree))
    assert (finding.status, finding.command) == (status, command)


def test_smt_on_is_a_warning_with_the_command(tmp_path):
    finding = cpu_checks.check_smt(host(tmp_path, smt="1"))
    assert finding.status == "warn" and finding.command == "echo off | sudo tee /sys/devices/system/cpu/smt/control"


@pytest.mark.parametrize("isolated, affinity, status", [("", (0, 1, 2, 3), "ok"), ("2-3", (2, 3), "ok"),
                                                        ("2-3", (0, 1, 2, 3), "warn")])
def test_isolated_cpus_against_our_affinity(tmp_path, isolated, affinity, status):
    finding = cpu_checks.check_isolation(host(tmp_path, isolated=isolated, affinity=affinity))
    assert finding.status == status
    if status == "warn":
        assert finding.command == "taskset -c 2-3 mnbench run …" and "0-3" in finding.seen


@pytest.mark.parametrize("tree, affinity, status, quota", [
    ({"cpu_max": "max 100000"}, (0, 1), "ok", None),
    ({"cpu_max": "400000 100000"}, (0, 1, 2, 3), "ok", 4.0),
    ({"cpu_max": "200000 100000"}, (0, 1, 2, 3), "warn", 2.0),  # whole CPUs below the count: threads capped
    ({"cpu_max": "150000 100000"}, (0, 1, 2, 3), "unfit", 1.5),  # default threads round up to 2: throttled
    ({"cpu_max": "50000 100000"}, (0, 1), "unfit", 0.5),
    ({"v1_quota": "150000"}, (0, 1), "unfit", 1.5),
    ({"v1_quota": "-1"}, (0, 1), "ok", None),
])
def test_cgroup_quota_against_the_cpus(tmp_path, tree, affinity, status, quota):
    finding = cpu_checks.check_cgroup(host(tmp_path, affinity=affinity, **tree))
    assert finding.status == status and finding.values["quota_cpus"] == quota
    if quota == 1.5:
        assert finding.command == "mnbench run --threads 1 …"


def test_a_nested_cgroup_is_bounded_by_its_tightest_parent(tmp_path):
    h = host(tmp_path, affinity=(0, 1, 2, 3), cpu_max="max 100000", self_cgroup="0::/user.slice/job\n")
    (tmp_path / "sys/fs/cgroup/user.slice/job").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/user.slice/job/cpu.max").write_text("max 100000\n")
    (tmp_path / "sys/fs/cgroup/user.slice/cpu.max").write_text("250000 100000\n")
    finding = cpu_checks.check_cgroup(h)
    assert finding.values["quota_cpus"] == 2.5 and finding.status == "unfit"
    assert finding.values["source"] == "/sys/fs/cgroup/user.slice/cpu.max"


# --- system checks ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steal, status", [(0.0, "ok"), (0.02, "warn"), (0.12, "unfit")])
def test_steal_time(steal, status):
    finding = system_checks.check_steal(quiet(steal_fraction=steal))
    assert finding.status == status and finding.values["steal_fraction"] == steal


def test_load_names_the_busiest_processes():
    busy = Activity(state={"interval_s": 1.0, "busy_fraction": 0.6, "loadavg_1m": 1.5},
                    busiest=[{"pid": 42, "comm": "cc1plus", "cpu_share": 1.1}], cpus=2)
    finding = system_checks.check_load(busy)
    assert finding.status == "unfit" and "cc1plus (pid 42) 1.10 CPU" in finding.seen and finding.what_to_do


@pytest.mark.parametrize("state, status", [
    ({"busy_fraction": 0.05, "loadavg_1m": 0.2}, "ok"),
    ({"busy_fraction": 0.15, "loadavg_1m": 0.2}, "warn"),
    ({"busy_fraction": 0.05, "loadavg_1m": 3.0}, "warn"),  # quiet now, busy over the last minute
    ({"busy_fraction": None, "loadavg_1m": 3.0}, "unfit"),  # no /proc/stat: the load average decides
    ({"busy_fraction": None, "loadavg_1m": None}, "unknown"),
])
def test_load_thresholds(state, status):
    assert system_checks.check_load(Activity(state={"interval_s": 1.0} | state, cpus=2)).status == status


@pytest.mark.parametrize("thp, status", [("[always] madvise never", "warn"), ("always [madvise] never", "ok"),
                                         ("always madvise [never]", "ok"), (None, "unknown")])
def test_transparent_hugepages(tmp_path, thp, status):
    finding = system_checks.check_transparent_hugepages(host(tmp_path, thp=thp))
    assert finding.status == status
    if status == "warn":
        assert finding.command == "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled"


@pytest.mark.parametrize("available_gib, status", [(8, "ok"), (1.5, "warn"), (0.5, "unfit")])
def test_memory_available(available_gib, status):
    memory = {"total": 16 * 2**30, "available": int(available_gib * 2**30)}
    assert system_checks.check_memory(memory).status == status
    assert system_checks.check_memory(None).status == "unknown"


def test_sample_activity_reads_this_machine_and_nothing_of_a_fake_tree(tmp_path):
    activity = system_checks.sample_activity(Host(), interval_s=0.01)
    assert activity.cpus >= 1 and activity.state["loadavg_1m"] >= 0 and activity.state["interval_s"] > 0
    assert activity.state["steal_fraction"] is None or 0 <= activity.state["steal_fraction"] <= 1
    fake = system_checks.sample_activity(host(tmp_path), interval_s=0.01)
    assert fake.cpus is None and fake.busiest == [] and set(fake.state.values()) == {None}


def test_an_empty_tree_is_unknown_never_a_crash(tmp_path):
    empty = Host(proc_root=tmp_path / "no-proc", sys_root=tmp_path / "no-sys", affinity=None)
    diagnosis = diagnose(with_probe=False, host=empty,
                         sample=lambda h: system_checks.sample_activity(h, interval_s=0.01))
    statuses = {f["name"]: f["status"] for f in diagnosis["findings"]}
    assert diagnosis["fit"] is True
    assert statuses == {"CPU and ISA": "unknown", "frequency governor": "unknown", "turbo / boost": "unknown",
                        "SMT (hyper-threading)": "unknown", "isolated CPUs": "unknown", "cgroup CPU limit": "ok",
                        "steal time": "unknown", "load": "unknown", "transparent huge pages": "unknown",
                        "memory": "unknown", "stability probe": "unknown"}
    assert diagnosis["machine"]["cpu_model"] is None


# --- the probe ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("medians, status", [([1.00, 1.01, 1.005, 0.995], "ok"), ([1.0, 1.03, 1.01], "warn"),
                                             ([1.0, 1.2, 1.05, 1.01], "unfit"), ([1.0], "unknown")])
def test_the_probe_is_judged_by_the_spread_of_run_medians(medians, status):
    finding = probe.judge_probe({"device": "cpu", "threads": 2, "run_s": 1.0, "run_medians_ms": medians})
    assert finding.status == status
    if len(medians) > 1:
        assert finding.values["spread"] == pytest.approx(max(medians) / min(medians) - 1)
        assert finding.values["cv"] > 0


def test_a_steady_but_slow_machine_is_a_warning():
    steady = {"device": "cpu", "threads": 2, "run_s": 1.0, "run_medians_ms": [2.0, 2.01, 2.0]}
    assert probe.judge_probe(steady).status == "ok"
    slow = probe.judge_probe(steady | {"host_best": {"best_ms": 1.0, "runs_seen": 4}})
    assert slow.status == "warn" and slow.values["host_slowdown"] == pytest.approx(2.0)
    assert "2.00x this host's best (1.000 ms over 4 runs)" in slow.seen


def test_probe_plan():
    assert probe.probe_plan(10) == (10, 1.0)
    assert probe.probe_plan(1) == (3, pytest.approx(1 / 3))
    assert probe.probe_plan(100)[0] == probe.MAX_RUNS


def test_diagnose_with_a_faked_probe_and_sample(tmp_path):
    fit = diagnose(host=host(tmp_path), sample=lambda h: quiet(), run_probe=fake_probe([1.0, 1.01, 1.0]))
    assert fit["fit"] is True and fit["probe"]["spread"] == pytest.approx(0.01)
    assert fit["machine"]["cpu_signature"] == "GenuineIntel 6/143/8"
    json.dumps(fit)
    unfit = diagnose(host=host(tmp_path, governors=("powersave",)), sample=lambda h: quiet(steal_fraction=0.2),
                     run_probe=fake_probe([1.0, 1.3]))
    assert unfit["fit"] is False
    assert {f["name"] for f in unfit["findings"] if f["status"] == "unfit"} == {"steal time", "stability probe"}


@pytest.mark.parametrize("kwargs, message", [({"probe_time_s": 0.5}, "--probe-time must be at least 1 s"),
                                             ({"device": "tpu"}, "unknown device 'tpu'"),
                                             ({"threads": 0}, "threads must be a positive integer")])
def test_usage_errors_before_anything_is_measured(tmp_path, kwargs, message):
    def never(*args, **kw):
        raise AssertionError("measured before the usage error")

    with pytest.raises(MnbenchError, match=message):
        diagnose(host=host(tmp_path), sample=never, run_probe=never, **kwargs)


@pytest.mark.measures
def test_real_probe_runs_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from mnbench.host import history as host_history
    from mnbench.devices.registry import resolve_device
    from mnbench.host.machine import machine_info
    from mnbench.measure.reference import REFERENCE_NAME

    machine = machine_info()
    # The key as `mnbench run` writes it (mnbench.run.plan._note_reference_speed): the probe must find that best.
    key = {"hostname": machine["hostname"], "cpu_model": machine["cpu_model"], "device": "cpu",
           "runtime": "onnxruntime", "runtime_version": ort.__version__, "precision": "fp32", "threads": 1,
           "reference": REFERENCE_NAME}
    host_history.note_reference(key, 1e-3, reports_dir=tmp_path)
    result = probe.run_probe(resolve_device("cpu"), probe_time_s=1.0, threads=1, models_dir=tmp_path,
                             reports_dir=tmp_path)
    assert result["runs"] == 3 and len(result["run_medians_ms"]) == 3 and min(result["run_medians_ms"]) > 0
    assert result["runtime"] == "onnxruntime" and result["threads"] == 1
    assert result["host_best"]["best_ms"] == 1e-3


# --- the CLI ------------------------------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setattr(mnbench.doctor, "ACTIVITY_INTERVAL_S", 0.01)

    def invoke(app, *args, medians=(1.0, 1.005, 1.0), **tree):
        monkeypatch.setattr(probe, "run_probe", fake_probe(medians))
        fake_tree(tmp_path, **tree)
        return CliRunner().invoke(app, ["doctor", "--proc-root", str(tmp_path / "proc"),
                                        "--sys-root", str(tmp_path / "sys"), *args])
    return invoke


def test_cli_exit_0_when_fit(app, cli):
    result = cli(app)
    assert result.exit_code == 0, result.output
    assert "fit for benchmarking" in result.output and "[never]" in result.output  # THP text not eaten as markup


def test_cli_exit_1_when_unfit_with_the_root_command_printed(app, cli):
    result = cli(app, "--format", "json", governors=("powersave",), medians=(1.0, 1.2))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"fit", "findings", "probe", "machine"} and doc["fit"] is False
    governor = next(f for f in doc["findings"] if f["name"] == "frequency governor")
    assert governor["status"] == "warn" and governor["command"] == "sudo cpupower frequency-set -g performance"
    table = cli(app, governors=("powersave",), medians=(1.0, 1.2))
    assert table.exit_code == 1 and "$ sudo cpupower frequency-set -g performance" in table.output
    assert "unfit for benchmarking: stability probe" in table.output


def test_cli_no_probe(app, cli):
    result = cli(app, "--no-probe", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["probe"] is None


def test_cli_usage_error_is_exit_2(app, cli):
    result = cli(app, "--probe-time", "0.2")
    assert isinstance(result.exception, MnbenchError) and result.exception.exit_code == 2
    done = subprocess.run([sys.executable, "-m", "mnbench", "doctor", "--probe-time", "0"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: --probe-time must be at least 1 s, got 0"
