"""V1Manager device rules: devices.deny / devices.allow checked by opening real device nodes."""

import errno
import os

import pytest

import cgroup_testlib
from navio_runtime.cgroups import default_device_rules
from navio_runtime.errors import CgroupError

DENY_ALL = {"allow": False, "access": "rwm"}


@pytest.fixture
def nodes(tmp_path):
    """Copies of /dev/null (c 1:3) and /dev/zero (c 1:5) made with mknod in a temporary directory."""
    return {
        "null": cgroup_testlib.make_device_node(str(tmp_path), "null", "/dev/null"),
        "zero": cgroup_testlib.make_device_node(str(tmp_path), "zero", "/dev/zero"),
    }


def open_in_cgroup(manager, children, path, flags=os.O_RDONLY):
    """Return the errno of opening `path` from a process inside the cgroup (0 when it opens)."""
    return cgroup_testlib.open_errno_in(children, manager.add_process, path, flags)


def test_denied_device_cannot_open(make_manager, children, nodes):
    manager = make_manager("devdeny")

    manager.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]})

    assert open_in_cgroup(manager, children, nodes["null"]) == errno.EPERM
    assert open_in_cgroup(manager, children, nodes["zero"]) == 0
    assert cgroup_testlib.open_errno(nodes["null"]) == 0


def test_devices_list_file(make_manager):
    manager = make_manager("devlist")

    manager.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})

    listing = cgroup_testlib.read(os.path.join(manager.paths["devices"], "devices.list"))
    assert listing == "c 1:5 r"


def test_default_rules_allow_null(make_manager, children, nodes):
    manager = make_manager("devdefault")

    manager.apply({"devices": [DENY_ALL] + default_device_rules()})

    assert open_in_cgroup(manager, children, nodes["null"], os.O_RDWR) == 0
    listing = cgroup_testlib.read(os.path.join(manager.paths["devices"], "devices.list")).splitlines()
    assert "c 136:* rwm" in listing
    assert "c 1:3 rwm" in listing


def test_read_only_access(make_manager, children, nodes):
    manager = make_manager("devreadonly")

    manager.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]})

    assert open_in_cgroup(manager, children, nodes["null"], os.O_RDONLY) == 0
    assert open_in_cgroup(manager, children, nodes["null"], os.O_WRONLY) == errno.EPERM


def test_last_rule_wins(make_manager, children, nodes):
    manager = make_manager("devlastwins")

    manager.apply({"devices": [{"allow": True, "access": "rwm"}, {"allow": False, "major": 1, "minor": 3}]})

    assert open_in_cgroup(manager, children, nodes["null"]) == errno.EPERM
    assert open_in_cgroup(manager, children, nodes["zero"]) == 0


def test_mknod_denied(make_manager, children, tmp_path):
    manager = make_manager("devmknod")
    manager.apply({"devices": [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "access": "m"}]})
    target = str(tmp_path / "made")

    child = children.start_in(manager.add_process, lambda: cgroup_testlib.mknod_errno(target))

    assert child.result() == errno.EPERM


def test_invalid_rule_rejected(make_manager):
    manager = make_manager("devinvalid")

    with pytest.raises(CgroupError, match=r"devices\[0\].access 'rx'"):
        manager.apply({"devices": [{"allow": True, "access": "rx"}]})
