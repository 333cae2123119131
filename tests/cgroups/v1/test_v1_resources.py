"""V1Manager.apply and update: the value of every control file, and enforcement on real processes."""

import errno
import logging
import os
import signal
import time

import pytest

import cgroup_testlib
from navio_runtime.errors import CgroupError

MiB = 1024 * 1024
V1_UNLIMITED = "9223372036854771712"


def value(manager, controller, name):
    return cgroup_testlib.read(os.path.join(manager.paths[controller], name))


# -- memory ------------------------------------------------------------------


def test_memory_files(make_manager):
    manager = make_manager("memfiles")

    manager.apply(
        {
            "memory": {
                "limit": 64 * MiB,
                "reservation": 32 * MiB,
                "swap": 96 * MiB,
                "swappiness": 20,
                "disableOOMKiller": True,
                "useHierarchy": True,
            }
        }
    )

    assert value(manager, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert value(manager, "memory", "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert value(manager, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)
    assert value(manager, "memory", "memory.swappiness") == "20"
    assert "oom_kill_disable 1" in value(manager, "memory", "memory.oom_control")
    assert value(manager, "memory", "memory.use_hierarchy") == "1"


def test_memory_unlimited_lifts_swap(make_manager):
    manager = make_manager("memunlimited")
    manager.apply({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})

    manager.update({"memory": {"limit": -1}})

    assert value(manager, "memory", "memory.limit_in_bytes") == V1_UNLIMITED
    assert value(manager, "memory", "memory.memsw.limit_in_bytes") == V1_UNLIMITED


def test_memory_shrink_orders_writes(make_manager):
    manager = make_manager("memshrink")
    manager.apply({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})

    manager.update({"memory": {"limit": 16 * MiB, "swap": 32 * MiB}})

    assert value(manager, "memory", "memory.limit_in_bytes") == str(16 * MiB)
    assert value(manager, "memory", "memory.memsw.limit_in_bytes") == str(32 * MiB)


def test_memory_swap_below_limit_rejected(make_manager):
    manager = make_manager("memswaplow")

    with pytest.raises(CgroupError, match="memory.swap"):
        manager.apply({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}})


def test_memory_swappiness_range_rejected(make_manager):
    manager = make_manager("memswappiness")

    with pytest.raises(CgroupError, match="swappiness 101"):
        manager.apply({"memory": {"swappiness": 101}})


def test_memory_kernel_ignored(make_manager, caplog):
    manager = make_manager("memkernel")
    before = value(manager, "memory", "memory.kmem.limit_in_bytes")

    with caplog.at_level(logging.WARNING):
        manager.apply({"memory": {"kernel": 8 * MiB, "kernelTCP": 8 * MiB}})

    assert value(manager, "memory", "memory.kmem.limit_in_bytes") == before
    assert "memory.kernel is ignored" in caplog.text
    assert "memory.kernelTCP is ignored" in caplog.text


def test_memory_use_hierarchy_false_error(make_manager):
    manager = make_manager("memhierarchy")

    with pytest.raises(CgroupError, match=r'write "0" to .*memory.use_hierarchy: Invalid argument \(EINVAL\)'):
        manager.apply({"memory": {"useHierarchy": False}})


def test_memory_oom_kill(make_manager, children):
    manager = make_manager("oom")
    manager.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_touch(128 * MiB))

    assert child.wait() == -signal.SIGKILL
    assert manager.oom_events() >= 1
    assert manager.stats()["memory"]["usage"]["max"] >= 31 * MiB


def test_memory_within_limit_survives(make_manager, children):
    manager = make_manager("nooom")
    manager.apply({"memory": {"limit": 128 * MiB, "swap": 128 * MiB}})
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_touch(16 * MiB))

    assert child.result() == 16 * MiB
    assert child.exit_code == 0
    assert manager.oom_events() == 0


def test_update_check_before_update(make_manager, children):
    manager = make_manager("checkupdate")
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_sleep(32 * MiB))
    usage_file = os.path.join(manager.paths["memory"], "memory.usage_in_bytes")
    # memory.usage_in_bytes lags behind the real usage by per-CPU charge batches.
    assert cgroup_testlib.wait_until(lambda: int(cgroup_testlib.read(usage_file)) > 24 * MiB)

    with pytest.raises(CgroupError, match="below the current usage"):
        manager.update({"memory": {"limit": 8 * MiB, "checkBeforeUpdate": True}})

    assert value(manager, "memory", "memory.limit_in_bytes") == V1_UNLIMITED


# -- cpu -----------------------------------------------------------------------


def test_cpu_files(make_manager):
    manager = make_manager("cpufiles")

    manager.apply({"cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 10000}})

    assert value(manager, "cpu", "cpu.shares") == "512"
    assert value(manager, "cpu", "cpu.cfs_quota_us") == "50000"
    assert value(manager, "cpu", "cpu.cfs_period_us") == "200000"
    assert value(manager, "cpu", "cpu.cfs_burst_us") == "10000"


def test_cpu_idle_file(make_manager):
    manager = make_manager("cpuidle")

    manager.apply({"cpu": {"idle": 1}})

    assert value(manager, "cpu", "cpu.idle") == "1"

    manager.update({"cpu": {"idle": 0, "shares": 256}})

    assert value(manager, "cpu", "cpu.idle") == "0"
    assert value(manager, "cpu", "cpu.shares") == "256"


def test_cpu_quota_unlimited(make_manager):
    manager = make_manager("cpuunlimited")
    manager.apply({"cpu": {"quota": 50000}})

    manager.update({"cpu": {"quota": -1}})

    assert value(manager, "cpu", "cpu.cfs_quota_us") == "-1"


def test_cpu_shares_clamped_rejected(make_manager):
    manager = make_manager("cpushares")

    with pytest.raises(CgroupError, match="shares 1000000"):
        manager.apply({"cpu": {"shares": 1000000}})


def test_cpu_burst_above_quota_rejected(make_manager):
    manager = make_manager("cpuburst")

    with pytest.raises(CgroupError, match="burst 60000"):
        manager.apply({"cpu": {"quota": 50000, "burst": 60000}})


def test_cpu_realtime_files(make_manager, session_parent):
    parent_cpu = session_parent.paths["cpu"]
    if not os.path.exists(os.path.join(parent_cpu, "cpu.rt_runtime_us")):
        pytest.skip("kernel without CONFIG_RT_GROUP_SCHED")
    manager = make_manager("cpurt")
    # The session owns the parent, which needs a real-time budget before its child can get one.
    with open(os.path.join(parent_cpu, "cpu.rt_runtime_us"), "w") as handle:
        handle.write("100000")
    try:
        manager.apply({"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 40000}})

        assert value(manager, "cpu", "cpu.rt_period_us") == "500000"
        assert value(manager, "cpu", "cpu.rt_runtime_us") == "40000"
    finally:
        with open(os.path.join(manager.paths["cpu"], "cpu.rt_runtime_us"), "w") as handle:
            handle.write("0")
        with open(os.path.join(parent_cpu, "cpu.rt_runtime_us"), "w") as handle:
            handle.write("0")


def cpu_usage_ns(manager):
    return int(cgroup_testlib.read(os.path.join(manager.paths["cpuacct"], "cpuacct.usage")))


def test_cpu_quota_enforced(make_manager, children):
    manager = make_manager("cpuquota")
    manager.apply({"cpu": {"quota": 20000, "period": 100000}})
    child = children.start_in(manager.add_process, cgroup_testlib.busy_loop)
    time.sleep(0.2)

    start_usage, start_time = cpu_usage_ns(manager), time.monotonic()
    time.sleep(1.0)
    share = (cpu_usage_ns(manager) - start_usage) / ((time.monotonic() - start_time) * 1e9)

    assert 0.1 < share < 0.3
    assert manager.stats()["cpu"]["throttling"]["throttledPeriods"] > 0


# -- cpuset --------------------------------------------------------------------


def test_cpuset_copied_from_parent(make_manager, session_parent):
    manager = make_manager("cpusetcopy")

    parent = session_parent.paths["cpuset"]
    assert value(manager, "cpuset", "cpuset.cpus") == cgroup_testlib.read(os.path.join(parent, "cpuset.cpus"))
    assert value(manager, "cpuset", "cpuset.mems") == cgroup_testlib.read(os.path.join(parent, "cpuset.mems"))
    assert value(manager, "cpuset", "cpuset.cpus") != ""


def test_cpuset_files(make_manager, children):
    manager = make_manager("cpusetfiles")

    manager.apply({"cpu": {"cpus": "0", "mems": "0"}})

    assert value(manager, "cpuset", "cpuset.cpus") == "0"
    assert value(manager, "cpuset", "cpuset.mems") == "0"
    sleeper = children.sleepers(1)[0]
    manager.add_process(sleeper.pid)
    assert os.sched_getaffinity(sleeper.pid) == {0}


# -- pids ----------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "expected"), [(10, "10"), (0, "0"), (-1, "max")])
def test_pids_files(make_manager, limit, expected):
    manager = make_manager(f"pidsfiles{limit}")

    manager.apply({"pids": {"limit": limit}})

    assert value(manager, "pids", "pids.max") == expected


def test_pids_limit_stops_fork(make_manager, children):
    manager = make_manager("pidsfork")
    manager.apply({"pids": {"limit": 1}})
    child = children.start_in(manager.add_process, cgroup_testlib.try_fork)

    assert child.result() == errno.EAGAIN


def test_pids_limit_stops_shell_loop(make_manager, children):
    manager = make_manager("pidsshell")
    manager.apply({"pids": {"limit": 3}})
    script = f"for i in 1 2 3 4 5 6; do {cgroup_testlib.BUSYBOX} sleep 1 & done; wait"
    read_end, write_end = os.pipe()

    def run_shell():
        os.dup2(write_end, 2)
        os.execv(cgroup_testlib.BUSYBOX, [cgroup_testlib.BUSYBOX, "sh", "-c", script])

    child = children.fork(run_shell)
    os.close(write_end)
    manager.add_process(child.pid)
    child.start()
    errors = b""
    while chunk := os.read(read_end, 4096):
        errors += chunk
    os.close(read_end)

    assert b"can't fork" in errors
    assert b"Resource temporarily unavailable" in errors


# -- blkio ---------------------------------------------------------------------


def test_blkio_throttle_files(make_manager):
    manager = make_manager("blkiothrottle")
    major, minor = cgroup_testlib.whole_disk_numbers("/")
    device = {"major": major, "minor": minor}

    manager.apply(
        {
            "blockIO": {
                "throttleReadBpsDevice": [dict(device, rate=1048576)],
                "throttleWriteBpsDevice": [dict(device, rate=2097152)],
                "throttleReadIOPSDevice": [dict(device, rate=100)],
                "throttleWriteIOPSDevice": [dict(device, rate=200)],
            }
        }
    )

    assert value(manager, "blkio", "blkio.throttle.read_bps_device") == f"{major}:{minor} 1048576"
    assert value(manager, "blkio", "blkio.throttle.write_bps_device") == f"{major}:{minor} 2097152"
    assert value(manager, "blkio", "blkio.throttle.read_iops_device") == f"{major}:{minor} 100"
    assert value(manager, "blkio", "blkio.throttle.write_iops_device") == f"{major}:{minor} 200"


def test_blkio_weight_files(make_manager):
    manager = make_manager("blkioweight")
    directory = manager.paths["blkio"]
    names = [name for name in ("blkio.bfq.weight", "blkio.weight") if os.path.exists(os.path.join(directory, name))]
    if not names:
        with pytest.raises(CgroupError, match="blockIO.weight 500: .* does not exist"):
            manager.apply({"blockIO": {"weight": 500}})
        return

    manager.apply({"blockIO": {"weight": 500}})

    assert value(manager, "blkio", names[0]).split()[-1] == "500"


def test_blkio_leaf_weight_ignored(make_manager, caplog):
    manager = make_manager("blkioleaf")
    if os.path.exists(os.path.join(manager.paths["blkio"], "blkio.leaf_weight")):
        pytest.skip("kernel with CFQ leaf weights")

    with caplog.at_level(logging.WARNING):
        manager.apply({"blockIO": {"leafWeight": 300}})

    assert "leafWeight is ignored" in caplog.text


# -- controllers this host lacks ---------------------------------------------------


def test_unified_rejected_on_v1(make_manager):
    manager = make_manager("unifiedv1")

    with pytest.raises(CgroupError, match="unified hierarchy"):
        manager.apply({"unified": {"memory.high": "100000"}})


@pytest.mark.parametrize(
    ("controller", "resources"),
    [
        ("hugetlb", {"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}]}),
        ("net_cls", {"network": {"classID": 1048577}}),
        ("net_prio", {"network": {"priorities": [{"name": "lo", "priority": 5}]}}),
        ("rdma", {"rdma": {"mlx5_1": {"hcaHandles": 3}}}),
    ],
)
def test_unmounted_controller_rejected(make_manager, controller, resources):
    manager = make_manager(f"missing{controller}")
    if controller in manager.paths:
        pytest.skip(f"the {controller} controller is mounted on this host")
    if controller == "hugetlb" and manager._unified_hugetlb_path():
        pytest.skip("hugetlb is enabled in the cgroup2 tree of this host")

    with pytest.raises(CgroupError, match=f"{controller} controller is not mounted"):
        manager.apply(resources)
