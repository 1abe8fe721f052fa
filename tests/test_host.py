"""mnbench.host.facts: the CPU from a fake /proc/cpuinfo, physical cores within the affinity and the cgroup quota (one
rule for the default threads and `mnbench doctor`), and the psutil facts on this machine and from a faked psutil."""

import json
import os
import types

import pytest

from mnbench.host import facts as host
from mnbench.doctor import cpu_checks
from mnbench.host.facts import CPU_FIELDS, Host

FOUR_THREADS_TWO_CORES = "\n\n".join(
    f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu // 2}\nflags\t\t: avx2" for cpu in range(4)
)


def fake_host(root, *, cpuinfo=FOUR_THREADS_TWO_CORES, cpu_max=None, v1_quota=None, self_cgroup="0::/\n",
              affinity=(0, 1, 2, 3)):
    files = {"proc/cpuinfo": cpuinfo, "proc/self/cgroup": self_cgroup, "sys/fs/cgroup/cpu.max": cpu_max,
             "sys/fs/cgroup/cpu/cpu.cfs_quota_us": v1_quota,
             "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000" if v1_quota else None}
    for relative, text in files.items():
        if text is not None:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text + "\n")
    return Host(proc_root=root / "proc", sys_root=root / "sys", affinity=frozenset(affinity))


# --- the CPU ------------------------------------------------------------------------------------------------------

def test_cpuinfo_fields_model_signature_and_flags(tmp_path):
    h = fake_host(tmp_path, cpuinfo="processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
                                    "model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 2\nflags\t\t: avx2 amx_tile"
                                    "\n\nprocessor\t: 1\nmodel name\t: ignored\n")
    fields = host.cpuinfo(h)
    assert fields["model name"] == "Intel(R) Xeon(R) Processor" and fields["flags"] == "avx2 amx_tile"
    assert host.cpu_model(fields) == "Intel(R) Xeon(R) Processor"
    assert host.cpu_signature(fields) == "GenuineIntel 6/207/2"
    assert host.cpu_flags(fields) == {"avx2", "amx_tile"}
    assert host.cpu_flags({"Features": "fp asimd"}) == {"fp", "asimd"}  # ARM spells them Features
    assert host.cpuinfo(Host(proc_root=tmp_path / "none")) == {} and host.cpu_signature({}) is None


def test_cpuinfo_topology_counts_hyperthreads_once(tmp_path):
    h = fake_host(tmp_path)
    assert host.core_topology(h) == {0: ("0", "0"), 1: ("0", "0"), 2: ("0", "1"), 3: ("0", "1")}
    assert host.physical_cores(h) == 2
    assert host.physical_cores(fake_host(tmp_path, affinity=(2, 3))) == 1  # one core's two threads


def test_physical_cores_falls_back_to_allowed_cpus(tmp_path):
    assert host.physical_cores(fake_host(tmp_path, cpuinfo="processor\t: 0\n", affinity=(0, 1, 2))) == 3


# --- the cgroup quota: one reader for the default threads and the doctor -------------------------------------------

@pytest.mark.parametrize("cpu_max,threads", [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2),
                                             ("50000 100000", 1)])
def test_cgroup_v2_quota(tmp_path, cpu_max, threads):
    quota = host.cgroup_cpu_quota(fake_host(tmp_path, cpu_max=cpu_max))
    assert (quota and host.quota_threads(quota)) == threads
    if quota:
        assert quota.source == "/sys/fs/cgroup/cpu.max"


def test_cgroup_v1_quota(tmp_path):
    assert host.cgroup_cpu_quota(fake_host(tmp_path, v1_quota="400000")).cpus == 4
    assert host.cgroup_cpu_quota(fake_host(tmp_path, v1_quota="-1")) is None
    assert host.cgroup_cpu_quota(Host(proc_root=tmp_path / "missing", sys_root=tmp_path / "missing")) is None


def test_container_quota_caps_the_default_threads(tmp_path):
    h = fake_host(tmp_path, cpuinfo="processor\t: 0\n", cpu_max="200000 100000", affinity=range(64))
    assert host.physical_cores(h) == 2


def test_the_default_threads_and_the_doctor_read_one_quota(tmp_path):
    # A quota on this process's own cgroup, none at the root: both see it, and the doctor knows the default's rule.
    h = fake_host(tmp_path, cpu_max="max 100000", self_cgroup="0::/user.slice/job\n")
    (tmp_path / "sys/fs/cgroup/user.slice/job").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/user.slice/job/cpu.max").write_text("150000 100000\n")
    assert host.physical_cores(h) == 2  # 1.5 CPUs rounded up, within the 2 cores
    finding = cpu_checks.check_cgroup(h)
    assert finding.values["quota_cpus"] == 1.5 and finding.status == "unfit"
    assert finding.command == "mnbench run --threads 1 …"


# --- psutil: the live machine -------------------------------------------------------------------------------------

def test_live_facts_on_this_machine():
    times = host.cpu_times()
    assert set(times) == set(CPU_FIELDS) and all(isinstance(v, float) and v >= 0 for v in times.values())
    assert len(host.load_average()) == 3
    memory = host.memory()
    assert memory["total"] >= memory["available"] > 0
    assert host.memory(Host(proc_root="/elsewhere")) is None  # psutil reads the live machine only
    assert host.logical_cpus() >= 1 and 1 <= host.available_cpus() <= host.logical_cpus()
    json.dumps([times, host.load_average(), memory])


def test_an_unreadable_psutil_is_none_and_missing_fields_are_zero(monkeypatch):
    old_kernel = types.SimpleNamespace(user=1.0, nice=2.0, system=3.0, idle=4.0)  # no iowait, irq, steal columns
    monkeypatch.setattr(host.psutil, "cpu_times", lambda: old_kernel)
    assert host.cpu_times() == {"user": 1.0, "nice": 2.0, "system": 3.0, "idle": 4.0, "iowait": 0.0, "irq": 0.0,
                                "softirq": 0.0, "steal": 0.0}

    def unreadable(*args, **kwargs):
        raise OSError("no /proc here")

    for name in ("cpu_times", "getloadavg", "virtual_memory", "process_iter"):
        monkeypatch.setattr(host.psutil, name, unreadable)
    assert host.cpu_times() is None and host.load_average() is None and host.memory() is None
    assert host.busiest_processes(interval_s=0, sleep=lambda s: None) == []


def _process(pid, name, user, system, started=1.0):
    return types.SimpleNamespace(pid=pid, info={"name": name, "create_time": started,
                                                "cpu_times": types.SimpleNamespace(user=user, system=system)})


def test_busiest_processes_over_the_interval_without_ourselves(monkeypatch):
    before = [_process(10, "idle one", 1, 1), _process(20, "busy (worker)", 1, 1), _process(30, "half", 1, 1),
              _process(50, "reused", 1, 1), _process(os.getpid(), "pytest", 1, 1)]
    after = [_process(10, "idle one", 1, 1), _process(20, "busy (worker)", 2, 2), _process(30, "half", 1.5, 1),
             _process(50, "reused", 9, 9, started=2.0),  # the pid now belongs to a process started since
             _process(os.getpid(), "pytest", 6, 1), _process(40, "newborn", 10, 0)]  # newborn: no share known
    listings = iter([before, after])
    monkeypatch.setattr(host.psutil, "process_iter", lambda attrs: next(listings))
    times = iter([0.0, 1.0])
    top = host.busiest_processes(n=5, interval_s=1.0, sleep=lambda s: None, clock=lambda: next(times))
    assert [(p["pid"], p["comm"]) for p in top] == [(20, "busy (worker)"), (30, "half")]
    assert top[0]["cpu_share"] == pytest.approx(2.0) and top[1]["cpu_share"] == pytest.approx(0.5)


def test_busiest_processes_on_this_machine_never_fails():
    top = host.busiest_processes(n=3, interval_s=0.05)
    assert len(top) <= 3 and all(p["pid"] != os.getpid() for p in top)
