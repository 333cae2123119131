"""V1Manager life cycle on a legacy or hybrid host: create, join, list, freeze, kill, destroy."""

import os
import signal
import time

import pytest

import cgroup_testlib
from navio_runtime.cgroups import manager_from_dict, open_manager
from navio_runtime.errors import CgroupError


def proc_cgroups(pid):
    """Return {hierarchy controllers: path} from /proc/<pid>/cgroup."""
    result = {}
    for line in cgroup_testlib.read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        result[controllers] = path
    return result


def test_create_makes_every_hierarchy(make_manager):
    manager = make_manager("create")

    for directory in manager.directories():
        assert os.path.isdir(directory), directory
    assert manager.version == 1
    assert set(manager.created) == set(manager.directories())


def test_create_hybrid_joins_unified(make_manager):
    manager = make_manager("hybrid")
    if manager.unified_path is None:
        pytest.skip("legacy host without a cgroup2 tree")

    assert os.path.isdir(manager.unified_path)
    assert manager.unified_path in manager.directories()


def test_to_dict_round_trip(make_manager):
    manager = make_manager("roundtrip")

    reopened = manager_from_dict(manager.to_dict())

    assert type(reopened) is type(manager)
    assert reopened.directories() == manager.directories()
    assert reopened.created == manager.created
    assert reopened.to_dict() == manager.to_dict()


def test_add_process_joins_all(make_manager, children):
    manager = make_manager("join")
    sleeper = children.sleepers(1)[0]

    manager.add_process(sleeper.pid)

    joined = proc_cgroups(sleeper.pid)
    for controllers in ("memory", "pids", "cpuset", "devices", "freezer", "name=systemd"):
        assert joined.get(controllers) == manager.cgroup_path, controllers
    if manager.unified_path:
        assert joined[""] == manager.cgroup_path


def test_pids_lists_exactly_added(make_manager, children):
    manager = make_manager("pids")
    sleepers = children.sleepers(3)
    children.sleepers(1)  # stays outside the cgroup

    for process in sleepers:
        manager.add_process(process.pid)

    assert manager.pids() == sorted(process.pid for process in sleepers)


def test_pids_includes_child_cgroups(make_manager, children):
    manager = make_manager("nested")
    inner, outer = children.sleepers(2)
    manager.add_process(outer.pid)
    nested = os.path.join(manager.paths["pids"], "inner")
    os.mkdir(nested)

    with open(os.path.join(nested, "cgroup.procs"), "w") as handle:
        handle.write(str(inner.pid))

    assert manager.pids() == sorted([inner.pid, outer.pid])


def test_kill_all_sigkill(make_manager, children):
    manager = make_manager("killall")
    sleepers = children.sleepers(3, manager=manager)

    manager.kill_all(signal.SIGKILL)

    for process in sleepers:
        assert process.wait(timeout=10) == -signal.SIGKILL
    assert cgroup_testlib.wait_until(lambda: manager.pids() == [])
    assert not manager.is_frozen()


def test_kill_all_sigterm(make_manager, children):
    manager = make_manager("killterm")
    sleepers = children.sleepers(2, manager=manager)

    manager.kill_all(signal.SIGTERM)

    for process in sleepers:
        assert process.wait(timeout=10) == -signal.SIGTERM


def test_freeze_stops_progress(make_manager, children, tmp_path):
    manager = make_manager("freeze")
    counter_file = tmp_path / "counter"
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.count_into(str(counter_file)))
    assert cgroup_testlib.wait_until(counter_file.exists)
    assert cgroup_testlib.wait_until(lambda: int(counter_file.read_text() or 0) > 3)

    manager.freeze()
    frozen_value = counter_file.read_text()
    time.sleep(0.3)

    assert manager.is_frozen()
    assert counter_file.read_text() == frozen_value
    assert cgroup_testlib.read(os.path.join(manager.paths["freezer"], "freezer.state")) == "FROZEN"

    manager.thaw()

    assert not manager.is_frozen()
    assert cgroup_testlib.wait_until(lambda: counter_file.read_text() not in ("", frozen_value))


def test_kill_all_keeps_frozen_state(make_manager, children):
    manager = make_manager("killfrozen")
    sleeper = children.sleepers(1)[0]
    manager.add_process(sleeper.pid)
    manager.freeze()

    manager.kill_all(signal.SIGTERM)

    assert manager.is_frozen()
    manager.thaw()
    assert sleeper.wait(timeout=10) == -signal.SIGTERM


def test_destroy_removes_directories(make_manager):
    manager = make_manager("destroy")
    directories = manager.directories()

    manager.destroy()

    for directory in directories:
        assert not os.path.exists(directory), directory
    assert manager.created == []


def test_destroy_removes_nested_cgroups(make_manager):
    manager = make_manager("destroynested")
    nested = os.path.join(manager.paths["memory"], "inner", "deeper")
    os.makedirs(nested)

    manager.destroy()

    assert not os.path.exists(manager.paths["memory"])


def test_destroy_keeps_parent_with_siblings(session_parent):
    base = f"{session_parent.cgroup_path}/shared"
    first = open_manager("first", f"{base}/first")
    second = open_manager("second", f"{base}/second")
    first.create()
    second.create()
    shared = os.path.dirname(second.paths["memory"])
    try:
        first.destroy()

        assert os.path.isdir(second.paths["memory"])
        assert os.path.isdir(shared)
        assert shared in first.created
    finally:
        second.destroy()

    assert os.path.isdir(shared)

    first.destroy()

    assert not os.path.exists(shared)


def test_existing_cgroup_with_processes_rejected(make_manager, children):
    owner = make_manager("busy")
    sleeper = children.sleepers(1)[0]
    owner.add_process(sleeper.pid)
    intruder = make_manager("busy", create=False)

    with pytest.raises(CgroupError, match="already exists and contains processes"):
        intruder.create()

    assert intruder.created == []


def test_preexisting_cgroup_survives_destroy(make_manager):
    owner = make_manager("preexisting")
    guest = make_manager("preexisting", create=False)

    guest.create()
    guest.destroy()

    assert guest.created == []
    for directory in owner.directories():
        assert os.path.isdir(directory), directory


def test_stats_has_keys(make_manager, children):
    manager = make_manager("stats")
    child = children.start_in(manager.add_process, lambda: cgroup_testlib.allocate_and_sleep(4 * 1024 * 1024))
    memory_file = os.path.join(manager.paths["memory"], "memory.usage_in_bytes")
    assert cgroup_testlib.wait_until(lambda: int(cgroup_testlib.read(memory_file)) > 0)

    stats = manager.stats()

    assert set(stats) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert stats["pids"]["current"] == 1
    assert stats["memory"]["usage"]["usage"] > 0
    assert stats["memory"]["usage"]["limit"] == 2**64 - 1
    assert set(stats["cpu"]["usage"]) >= {"total", "kernel", "user", "percpu"}
    assert set(stats["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}


def test_stats_missing_cgroup_rejected(make_manager):
    manager = make_manager("nostats", create=False)

    with pytest.raises(CgroupError, match="does not exist"):
        manager.stats()
