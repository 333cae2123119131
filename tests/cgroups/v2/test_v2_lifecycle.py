"""V2Manager life cycle on a cgroup v2 host: create, join, list, freeze, kill, devices, destroy."""

import errno
import os
import signal
import time

import pytest

import cgroup_testlib
from navio_runtime.cgroups import default_device_rules, manager_from_dict, open_manager
from navio_runtime.cgroups.v2 import ebpf
from navio_runtime.errors import CgroupError

DENY_ALL = {"allow": False, "access": "rwm"}


def subtree_control(path):
    return set(cgroup_testlib.read(os.path.join(path, "cgroup.subtree_control")).split())


def test_create_enables_created_ancestors(session_parent):
    manager = open_manager("deep", f"{session_parent.cgroup_path}/deep/leaf")
    try:
        manager.create()
        middle = os.path.dirname(manager.path)

        assert manager.version == 2
        assert manager.created == [middle, manager.path]
        assert subtree_control(middle) == set(cgroup_testlib.read(os.path.join(middle, "cgroup.controllers")).split())
        assert {"memory", "cpu", "pids", "io"} <= manager.enabled_controllers()
        assert subtree_control(manager.path) == set()
    finally:
        manager.destroy()
    assert not os.path.exists(os.path.dirname(manager.path))


def test_missing_controller_reported(session_parent):
    bare = os.path.join(session_parent.path, "bare")
    os.mkdir(bare)
    manager = open_manager("bare", f"{session_parent.cgroup_path}/bare/leaf")
    try:
        manager.create()

        assert manager.created == [manager.path]
        assert subtree_control(bare) == set()
        with pytest.raises(CgroupError, match=r"memory controller\(s\) are not enabled; enable them in .*/bare/"):
            manager.apply({"memory": {"limit": 64 << 20}})
        with pytest.raises(CgroupError, match="the memory controller is not enabled"):
            manager.apply({"unified": {"memory.high": "1000000"}})
    finally:
        manager.destroy()
        os.rmdir(bare)


def test_to_dict_round_trip(make_manager):
    manager = make_manager("roundtrip")

    reopened = manager_from_dict(manager.to_dict())

    assert reopened.to_dict() == manager.to_dict()
    assert reopened.path == manager.path


def test_pids_and_cgroup_kill(make_manager, children):
    manager = make_manager("killall")
    sleepers = children.sleepers(3)
    outsider = children.sleepers(1)[0]
    for process in sleepers:
        manager.add_process(process.pid)

    assert manager.pids() == sorted(process.pid for process in sleepers)
    assert cgroup_testlib.read(f"/proc/{sleepers[0].pid}/cgroup") == f"0::{manager.cgroup_path}"

    manager.kill_all(signal.SIGKILL)

    for process in sleepers:
        assert process.wait(timeout=30) == -signal.SIGKILL
    assert outsider.poll() is None
    assert cgroup_testlib.wait_until(lambda: manager.pids() == [])


def test_kill_all_sigterm(make_manager, children):
    manager = make_manager("killterm")
    sleepers = children.sleepers(2, manager=manager)

    manager.kill_all(signal.SIGTERM)

    for process in sleepers:
        assert process.wait(timeout=30) == -signal.SIGTERM
    assert not manager.is_frozen()


def test_freeze_stops_progress(make_manager, children, tmp_path):
    manager = make_manager("freeze")
    counter_file = tmp_path / "counter"
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.count_into(str(counter_file)))
    assert cgroup_testlib.wait_until(lambda: counter_file.exists() and int(counter_file.read_text() or 0) > 3, 30)

    manager.freeze()
    frozen_value = counter_file.read_text()
    time.sleep(0.5)

    assert manager.is_frozen()
    assert counter_file.read_text() == frozen_value
    assert cgroup_testlib.read(os.path.join(manager.path, "cgroup.freeze")) == "1"

    manager.thaw()

    assert not manager.is_frozen()
    assert cgroup_testlib.wait_until(lambda: counter_file.read_text() not in ("", frozen_value), 30)


def test_existing_cgroup_with_processes_rejected(make_manager, children):
    owner = make_manager("busy")
    owner.add_process(children.sleepers(1)[0].pid)
    intruder = make_manager("busy", create=False)

    with pytest.raises(CgroupError, match="already exists and contains processes"):
        intruder.create()


def test_preexisting_cgroup_survives_destroy(make_manager):
    owner = make_manager("preexisting")
    guest = make_manager("preexisting", create=False)

    guest.create()
    guest.destroy()

    assert guest.created == []
    assert os.path.isdir(owner.path)

    owner.destroy()

    assert not os.path.exists(owner.path)


def open_in(manager, children, node, flags=os.O_RDONLY):
    return cgroup_testlib.open_errno_in(children, manager.add_process, node, flags)


def test_device_filter_enforced(make_manager, children, tmp_path):
    manager = make_manager("devices")
    null = cgroup_testlib.make_device_node(str(tmp_path), "null", "/dev/null")
    zero = cgroup_testlib.make_device_node(str(tmp_path), "zero", "/dev/zero")

    manager.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]})

    assert open_in(manager, children, null) == errno.EPERM
    assert open_in(manager, children, zero, os.O_RDWR) == 0

    manager.update({"devices": [DENY_ALL] + default_device_rules()})

    assert open_in(manager, children, null, os.O_RDWR) == 0
    assert len(ebpf.attached_program_ids(manager.path)[0]) == 1


def test_stats_has_keys(make_manager, children):
    manager = make_manager("stats")
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_sleep(4 << 20))
    assert cgroup_testlib.wait_until(lambda: manager.stats()["memory"]["usage"]["usage"] > 4 << 20, 30)

    stats = manager.stats()

    assert set(stats) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert stats["pids"]["current"] == 1
    assert stats["pids"]["limit"] == 0
    assert stats["memory"]["usage"]["limit"] == 2**64 - 1
    assert stats["cpu"]["usage"]["total"] > 0
    assert "2MB" in stats["hugetlb"]


def test_destroy_removes_directory(make_manager):
    manager = make_manager("destroy")
    os.makedirs(os.path.join(manager.path, "inner"))

    manager.destroy()

    assert not os.path.exists(manager.path)
    assert manager.created == []
