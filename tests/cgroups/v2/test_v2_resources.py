"""V2Manager.apply and update: the value of every control file, and enforcement on real processes.

Some fixtures load kernel modules (bfq, rdma_rxe, dummy), and they do that only
inside the throwaway VM of scripts/run-v2-tests (RUN_IN_CGROUP2_VM=1).
"""

import errno
import logging
import os
import signal
import subprocess
import time

import pytest

import cgroup_testlib
from navio_runtime.errors import CgroupError

MiB = 1024 * 1024
IN_VM = os.environ.get("RUN_IN_CGROUP2_VM") == "1"


def value(manager, name):
    return cgroup_testlib.read(os.path.join(manager.path, name))


# -- memory ------------------------------------------------------------------


def test_memory_files(make_manager):
    manager = make_manager("memfiles")

    manager.apply({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB}})

    assert value(manager, "memory.max") == str(64 * MiB)
    assert value(manager, "memory.low") == str(32 * MiB)
    assert value(manager, "memory.swap.max") == str(32 * MiB)

    manager.update({"memory": {"limit": -1, "reservation": -1}})

    assert value(manager, "memory.max") == "max"
    assert value(manager, "memory.low") == "max"
    assert value(manager, "memory.swap.max") == "max"

    manager.update({"memory": {"limit": 48 * MiB, "swap": 48 * MiB}})

    assert value(manager, "memory.swap.max") == "0"


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        ({"swap": 64 * MiB}, "swap limit needs a memory limit"),
        ({"limit": 64 * MiB, "swap": 32 * MiB}, "must be >= linux.resources.memory.limit"),
        ({"swappiness": 10}, "no per-cgroup swappiness"),
        ({"disableOOMKiller": True}, "cannot disable the OOM killer"),
        ({"useHierarchy": False}, "always hierarchical"),
        ({"limit": -2}, "expected a value in -1.."),
    ],
)
def test_memory_invalid_rejected(make_manager, memory, message):
    manager = make_manager("meminvalid")

    with pytest.raises(CgroupError, match=message):
        manager.apply({"memory": memory})


def test_memory_kernel_ignored(make_manager, caplog):
    manager = make_manager("memkernel")

    with caplog.at_level(logging.WARNING):
        manager.apply({"memory": {"limit": 64 * MiB, "kernel": 8 * MiB, "kernelTCP": 8 * MiB}})

    assert value(manager, "memory.max") == str(64 * MiB)
    assert "memory.kernel is ignored" in caplog.text
    assert "memory.kernelTCP is ignored" in caplog.text


def test_memory_oom_kill(make_manager, children):
    manager = make_manager("oom")
    manager.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_touch(96 * MiB))

    assert child.wait() == -signal.SIGKILL
    assert manager.oom_events() >= 1
    assert manager.stats()["memory"]["usage"]["failcnt"] >= 1


def test_update_check_before_update(make_manager, children):
    manager = make_manager("checkupdate")
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_sleep(32 * MiB))
    assert cgroup_testlib.wait_until(lambda: int(value(manager, "memory.current")) > 32 * MiB, 60)

    with pytest.raises(CgroupError, match="below the current usage"):
        manager.update({"memory": {"limit": 16 * MiB, "checkBeforeUpdate": True}})

    assert value(manager, "memory.max") == "max"
    assert child.exit_code is None


# -- cpu -----------------------------------------------------------------------


def test_cpu_files(make_manager):
    manager = make_manager("cpufiles")

    manager.apply({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 20000}})

    assert value(manager, "cpu.weight") == "39"
    assert value(manager, "cpu.max") == "50000 100000"
    assert value(manager, "cpu.max.burst") == "20000"

    manager.update({"cpu": {"quota": -1, "period": 200000, "shares": 2}})

    assert value(manager, "cpu.max") == "max 200000"
    assert value(manager, "cpu.weight") == "1"

    manager.update({"cpu": {"quota": 30000}})

    assert value(manager, "cpu.max") == "30000 200000"


def test_cpu_idle_file(make_manager):
    manager = make_manager("cpuidle")

    manager.apply({"cpu": {"idle": 1}})

    assert value(manager, "cpu.idle") == "1"

    manager.update({"cpu": {"idle": 0, "shares": 262144}})

    assert value(manager, "cpu.idle") == "0"
    assert value(manager, "cpu.weight") == "10000"


@pytest.mark.parametrize("key", ["realtimeRuntime", "realtimePeriod"])
def test_cpu_realtime_rejected(make_manager, key):
    manager = make_manager("cpurt")

    with pytest.raises(CgroupError, match="no real-time group scheduling"):
        manager.apply({"cpu": {key: 1000}})


def test_cpu_quota_enforced(make_manager, children):
    manager = make_manager("cpuquota")
    manager.apply({"cpu": {"quota": 20000, "period": 100000}})
    child = children.start_in(manager.add_process, cgroup_testlib.busy_loop)
    time.sleep(0.3)

    start_usage, start_time = manager.stats()["cpu"]["usage"]["total"], time.monotonic()
    time.sleep(1.0)
    share = (manager.stats()["cpu"]["usage"]["total"] - start_usage) / ((time.monotonic() - start_time) * 1e9)

    assert 0.1 < share < 0.3
    assert manager.stats()["cpu"]["throttling"]["throttledPeriods"] > 0


def test_cpuset_files(make_manager):
    manager = make_manager("cpuset")

    manager.apply({"cpu": {"cpus": "0", "mems": "0"}})

    assert value(manager, "cpuset.cpus") == "0"
    assert value(manager, "cpuset.mems") == "0"
    assert value(manager, "cpuset.cpus.effective") == "0"


# -- io ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vda():
    """(major, minor) of the VM's null disk /dev/vda."""
    if not os.path.exists("/sys/block/vda/dev"):
        pytest.skip("no /dev/vda (run scripts/run-v2-tests)")
    major, minor = cgroup_testlib.read("/sys/block/vda/dev").split(":")
    return int(major), int(minor)


def test_io_max_file(make_manager, vda):
    manager = make_manager("iomax")
    major, minor = vda
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

    assert value(manager, "io.max") == f"{major}:{minor} rbps=1048576 wbps=2097152 riops=100 wiops=200"

    manager.update({"blockIO": {"throttleReadBpsDevice": [dict(device, rate=0)]}})

    assert value(manager, "io.max") == f"{major}:{minor} rbps=max wbps=2097152 riops=100 wiops=200"


def test_io_weight_device_unsupported_reported(make_manager, vda):
    manager = make_manager("ioweightmissing")
    if os.path.exists(os.path.join(manager.path, "io.bfq.weight")):
        pytest.skip("bfq is loaded")
    major, minor = vda
    if "enable=1" in cgroup_testlib.read("/sys/fs/cgroup/io.cost.qos"):
        pytest.skip("io.cost is already enabled on /dev/vda")

    with pytest.raises(CgroupError, match="neither the bfq scheduler nor the io.cost controller"):
        manager.apply({"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 1000}]}})


def test_io_weight_file(make_manager, vda):
    manager = make_manager("ioweight")
    if os.path.exists(os.path.join(manager.path, "io.bfq.weight")):
        pytest.skip("bfq is loaded, so weights go to io.bfq.weight")
    major, minor = vda
    if IN_VM:
        # Per-device io.weight needs the io.cost controller on the device. The VM is thrown away after the run.
        with open("/sys/fs/cgroup/io.cost.qos", "w") as handle:
            handle.write(f"{major}:{minor} enable=1")

    manager.apply({"blockIO": {"weight": 500, "weightDevice": [{"major": major, "minor": minor, "weight": 1000}]}})

    lines = value(manager, "io.weight").splitlines()
    assert "default 4950" in lines
    assert f"{major}:{minor} 10000" in lines


def test_io_bfq_weight_file(make_manager, vda):
    major, minor = vda
    if IN_VM:
        subprocess.run(["modprobe", "bfq"], check=True)
        with open("/sys/block/vda/queue/scheduler", "w") as handle:
            handle.write("bfq")
    manager = make_manager("iobfq")
    if "[bfq]" not in cgroup_testlib.read("/sys/block/vda/queue/scheduler"):
        pytest.skip("/dev/vda does not use the bfq I/O scheduler")

    manager.apply({"blockIO": {"weight": 500, "weightDevice": [{"major": major, "minor": minor, "weight": 300}]}})

    lines = value(manager, "io.bfq.weight").splitlines()
    assert "default 500" in lines
    assert f"{major}:{minor} 300" in lines


def test_io_leaf_weight_ignored(make_manager, caplog):
    manager = make_manager("ioleaf")

    with caplog.at_level(logging.WARNING):
        manager.apply({"blockIO": {"leafWeight": 300}})

    assert "leafWeight is ignored" in caplog.text


# -- pids ----------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "expected"), [(10, "10"), (0, "0"), (-1, "max")])
def test_pids_files(make_manager, limit, expected):
    manager = make_manager(f"pidsfiles{limit}")

    manager.apply({"pids": {"limit": limit}})

    assert value(manager, "pids.max") == expected


def test_pids_limit_stops_fork(make_manager, children):
    manager = make_manager("pidsfork")
    manager.apply({"pids": {"limit": 1}})
    child = children.start_in(manager.add_process, cgroup_testlib.try_fork)

    assert child.result() == errno.EAGAIN
    assert int(value(manager, "pids.events").split()[-1]) >= 1


# -- hugetlb, rdma, unified -------------------------------------------------------


def test_hugetlb_files(make_manager):
    manager = make_manager("hugetlb")
    if not os.path.exists(os.path.join(manager.path, "hugetlb.2MB.max")):
        pytest.skip("no 2 MB huge pages in this kernel")

    manager.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})

    assert value(manager, "hugetlb.2MB.max") == str(4 * MiB)
    if os.path.exists(os.path.join(manager.path, "hugetlb.2MB.rsvd.max")):
        assert value(manager, "hugetlb.2MB.rsvd.max") == str(4 * MiB)


def map_huge_pages(size):
    """mmap `size` bytes of 2 MB huge pages and touch them; return 0 or the errno of the failure."""
    import mmap

    map_hugetlb = 0x40000  # MAP_HUGETLB from <sys/mman.h>; Python's mmap module does not export it
    try:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | map_hugetlb)
    except OSError as err:
        return err.errno
    region[0] = 1
    region.close()
    return 0


def test_hugetlb_limit_enforced(make_manager, children):
    manager = make_manager("hugetlbenforce")
    if int(cgroup_testlib.read("/proc/sys/vm/nr_hugepages")) < 2:
        pytest.skip("fewer than 2 huge pages reserved (run-in-cgroup2-vm --hugepages 8)")
    manager.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}]})

    child = children.start_in(manager.add_process, lambda: [map_huge_pages(4 * MiB), map_huge_pages(2 * MiB)])

    assert child.result() == [errno.ENOMEM, 0]


def test_hugetlb_unknown_size_rejected(make_manager):
    manager = make_manager("hugetlbsize")

    with pytest.raises(CgroupError, match="hugetlb.64KB.max does not exist"):
        manager.apply({"hugepageLimits": [{"pageSize": "64KB", "limit": 65536}]})


@pytest.fixture(scope="module")
def rdma_device():
    """An rdma device: rxe0 over a dummy interface, created only inside the test VM."""
    if not IN_VM:
        pytest.skip("creates an rdma device; runs only in the test VM")
    commands = [
        ["modprobe", "rdma_rxe"],
        ["modprobe", "dummy"],
        ["ip", "link", "add", "navio0", "type", "dummy"],
        ["ip", "link", "set", "navio0", "up"],
        ["rdma", "link", "add", "rxe0", "type", "rxe", "netdev", "navio0"],
    ]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"{' '.join(command)} failed: {result.stderr.strip()}")
    yield "rxe0"
    subprocess.run(["rdma", "link", "delete", "rxe0"], capture_output=True)
    subprocess.run(["ip", "link", "delete", "navio0"], capture_output=True)


def test_rdma_files(make_manager, rdma_device):
    manager = make_manager("rdma")

    manager.apply({"rdma": {rdma_device: {"hcaHandles": 2, "hcaObjects": 100}}})

    assert value(manager, "rdma.max") == f"{rdma_device} hca_handle=2 hca_object=100"
    assert manager.stats()["rdma"]["limit"] == [{"device": rdma_device, "hca_handles": 2, "hca_objects": 100}]


def test_unified_keys(make_manager):
    manager = make_manager("unified")

    manager.apply({"pids": {"limit": 10}, "unified": {"memory.high": "50000000", "pids.max": "20"}})

    assert value(manager, "memory.high") == "49999872"
    assert value(manager, "pids.max") == "20"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("../memory.max", "without"),
        ("memory/max", "without"),
        ("cgroup.procs", "manages this file itself"),
        ("cgroup.subtree_control", "manages this file itself"),
        ("memory.nonexistent", "does not exist"),
        ("noprefix", "expected <controller>.<file>"),
    ],
)
def test_unified_bad_key_rejected(make_manager, key, message):
    manager = make_manager("unifiedbad")

    with pytest.raises(CgroupError, match=message):
        manager.apply({"unified": {key: "1"}})
