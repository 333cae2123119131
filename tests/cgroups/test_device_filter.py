"""The cgroup v2 eBPF device filter, loaded into the kernel and checked by opening real device nodes.

These tests need only a cgroup2 mount: /sys/fs/cgroup on unified hosts,
/sys/fs/cgroup/unified on hybrid ones. Device programs work on any cgroup2
directory, with or without controllers.
"""

import errno
import os

import pytest

import cgroup_testlib
from navio_runtime.cgroups import default_device_rules
from navio_runtime.cgroups.device_rules import parse_rules
from navio_runtime.cgroups.mode import unified_mount
from navio_runtime.cgroups.v2 import ebpf

DENY_ALL = {"allow": False, "access": "rwm"}
ALLOW_ALL = {"allow": True, "access": "rwm"}


@pytest.fixture(scope="module")
def cgroup2_root():
    mount = unified_mount()
    if mount is None:
        pytest.skip("no cgroup2 mount on this host")
    return mount


@pytest.fixture
def filter_cgroup(cgroup2_root, request):
    """A cgroup2 directory of this test, removed at teardown."""
    path = os.path.join(cgroup2_root, f"navio-test-{os.getpid()}-{request.node.name.split('[')[0]}")
    os.mkdir(path)
    yield path
    cgroup_testlib.wait_until(lambda: not cgroup_testlib.read(os.path.join(path, "cgroup.procs")))
    os.rmdir(path)


@pytest.fixture
def nodes(tmp_path):
    """Device nodes made with mknod: null (c 1:3), zero (c 1:5) and tun (c 10:200)."""
    directory = str(tmp_path)
    tun = os.path.join(directory, "tun")
    os.mknod(tun, 0o666 | 0o020000, os.makedev(10, 200))
    return {
        "null": cgroup_testlib.make_device_node(directory, "null", "/dev/null"),
        "zero": cgroup_testlib.make_device_node(directory, "zero", "/dev/zero"),
        "tun": tun,
    }


def install(path, entries):
    ebpf.replace_device_filter(path, ebpf.assemble(parse_rules(entries)))


def open_in(path, children, node, flags=os.O_RDONLY):
    """Return the errno of opening `node` from a process in cgroup `path` (0 when it opens)."""
    return cgroup_testlib.open_errno_in(children, cgroup_testlib.join_cgroup(path), node, flags)


def test_filter_denies_and_allows(filter_cgroup, children, nodes):
    install(filter_cgroup, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}])

    assert open_in(filter_cgroup, children, nodes["null"]) == errno.EPERM
    assert open_in(filter_cgroup, children, nodes["zero"], os.O_RDWR) == 0


def test_filter_last_rule_wins(filter_cgroup, children, nodes):
    install(filter_cgroup, [ALLOW_ALL, {"allow": False, "type": "c", "major": 1, "minor": 3}])

    assert open_in(filter_cgroup, children, nodes["null"]) == errno.EPERM
    assert open_in(filter_cgroup, children, nodes["zero"]) == 0


def test_filter_partial_access(filter_cgroup, children, nodes):
    install(filter_cgroup, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}])

    assert open_in(filter_cgroup, children, nodes["null"], os.O_RDONLY) == 0
    assert open_in(filter_cgroup, children, nodes["null"], os.O_WRONLY) == errno.EPERM
    assert open_in(filter_cgroup, children, nodes["null"], os.O_RDWR) == errno.EPERM


def test_filter_partial_deny(filter_cgroup, children, nodes):
    install(filter_cgroup, [ALLOW_ALL, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}])

    assert open_in(filter_cgroup, children, nodes["null"], os.O_RDONLY) == 0
    assert open_in(filter_cgroup, children, nodes["null"], os.O_RDWR) == errno.EPERM


def test_filter_wildcard_minor(filter_cgroup, children, nodes):
    install(filter_cgroup, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "access": "rwm"}])

    assert open_in(filter_cgroup, children, nodes["null"]) == 0
    assert open_in(filter_cgroup, children, nodes["zero"]) == 0
    assert open_in(filter_cgroup, children, nodes["tun"]) == errno.EPERM


def test_filter_default_rules(filter_cgroup, children, nodes):
    install(filter_cgroup, [DENY_ALL] + default_device_rules())

    assert open_in(filter_cgroup, children, nodes["null"], os.O_RDWR) == 0
    assert open_in(filter_cgroup, children, nodes["zero"], os.O_RDWR) == 0
    assert open_in(filter_cgroup, children, nodes["tun"], os.O_RDWR) == errno.EPERM


def test_filter_empty_list_denies_all(filter_cgroup, children, nodes):
    install(filter_cgroup, [])

    assert open_in(filter_cgroup, children, nodes["null"]) == errno.EPERM


def test_filter_mknod_denied(filter_cgroup, children, tmp_path):
    install(filter_cgroup, [ALLOW_ALL, {"allow": False, "type": "c", "access": "m"}])
    target = str(tmp_path / "made")

    child = children.start_in(cgroup_testlib.join_cgroup(filter_cgroup), lambda: cgroup_testlib.mknod_errno(target))

    assert child.result() == errno.EPERM


def test_filter_block_device(filter_cgroup, children, tmp_path):
    major, minor = cgroup_testlib.whole_disk_numbers("/")
    node = str(tmp_path / "disk")
    os.mknod(node, 0o600 | 0o060000, os.makedev(major, minor))
    install(filter_cgroup, [ALLOW_ALL, {"allow": False, "type": "b", "major": major, "minor": minor, "access": "r"}])

    assert open_in(filter_cgroup, children, node) == errno.EPERM


def test_filter_replaced_not_stacked(filter_cgroup, children, nodes):
    install(filter_cgroup, [DENY_ALL])
    first_ids, _ = ebpf.attached_program_ids(filter_cgroup)

    install(filter_cgroup, [ALLOW_ALL])

    ids, flags = ebpf.attached_program_ids(filter_cgroup)
    assert len(ids) == 1
    assert ids != first_ids
    assert flags == ebpf.BPF_F_ALLOW_MULTI
    assert open_in(filter_cgroup, children, nodes["null"]) == 0
