"""Capability sets seen in /proc/<pid>/status after apply_capabilities, as root and as uid 1000."""

import os

import pytest

from navio_runtime.init import capabilities
from security_helpers import capability_mask, report, run_child, status_fields, switch_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="capability tests need root")

CAP_CHOWN = 0
CAP_KILL = 5
CAP_SETPCAP = 8
CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
CAP_SYS_RESOURCE = 24

CONTAINER_CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "ambient": ["CAP_NET_BIND_SERVICE"],
}


def host_bounding_mask():
    with open("/proc/self/status") as file:
        return int(status_fields(file.read())["CapBnd"], 16)


def report_own_status():
    with open("/proc/thread-self/status") as file:
        report(file.read())


def masks(fields):
    return {name: int(fields[name], 16) for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_sets_survive_user_switch():
    def prepare():
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities(CONTAINER_CAPS)
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    fields = status_fields(result.stdout)
    assert fields["Uid"].split()[0] == "1000"
    sets = masks(fields)
    assert sets["CapBnd"] == capability_mask(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapPrm"] == capability_mask(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapEff"] == capability_mask(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapInh"] == capability_mask(CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapAmb"] == capability_mask(CAP_NET_BIND_SERVICE)


def test_sets_after_exec_as_user():
    def prepare():
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities(CONTAINER_CAPS)

    result = run_child(prepare, ["cat", "/proc/self/status"])

    assert result.exit_code == 0, result.stderr
    sets = masks(status_fields(result.stdout))
    # A non-root execve of a file without file capabilities keeps only the
    # ambient set in permitted and effective.
    assert sets["CapBnd"] == capability_mask(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapInh"] == capability_mask(CAP_KILL, CAP_NET_BIND_SERVICE)
    assert sets["CapAmb"] == capability_mask(CAP_NET_BIND_SERVICE)
    assert sets["CapPrm"] == capability_mask(CAP_NET_BIND_SERVICE)
    assert sets["CapEff"] == capability_mask(CAP_NET_BIND_SERVICE)


def test_sets_after_exec_as_root():
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN"],
        "inheritable": [],
        "ambient": [],
    }

    result = run_child(lambda: capabilities.apply_capabilities(caps), ["cat", "/proc/self/status"])

    assert result.exit_code == 0, result.stderr
    sets = masks(status_fields(result.stdout))
    # execve by uid 0 fills permitted and effective from the bounding set.
    assert sets["CapBnd"] == capability_mask(CAP_CHOWN, CAP_KILL)
    assert sets["CapPrm"] == capability_mask(CAP_CHOWN, CAP_KILL)
    assert sets["CapEff"] == capability_mask(CAP_CHOWN, CAP_KILL)
    assert sets["CapInh"] == 0
    assert sets["CapAmb"] == 0


def test_empty_object_drops_all():
    def prepare():
        capabilities.apply_capabilities({})
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    sets = masks(status_fields(result.stdout))
    for name, mask in sets.items():
        assert mask == 0, f"{name} is {mask:#x}"


def test_none_leaves_sets_untouched():
    def prepare():
        capabilities.apply_capabilities(None)
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    sets = masks(status_fields(result.stdout))
    assert sets["CapBnd"] == host_bounding_mask()
    assert sets["CapEff"] == host_bounding_mask()


@pytest.mark.skipif(host_bounding_mask() >> CAP_SYS_RESOURCE & 1 == 1, reason="this host can grant CAP_SYS_RESOURCE")
def test_ungrantable_cap_warns():
    caps = {name: ["CAP_KILL", "CAP_SYS_RESOURCE"] for name in capabilities.SET_NAMES}

    def prepare():
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities(caps)
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert any("CAP_SYS_RESOURCE" in line and "bounding" in line for line in warnings), result.stderr
    sets = masks(status_fields(result.stdout))
    for name, mask in sets.items():
        assert mask == capability_mask(CAP_KILL), f"{name} is {mask:#x}"


def test_unknown_name_warns():
    caps = {name: ["CAP_KILL", "CAP_NOT_A_CAPABILITY"] for name in capabilities.SET_NAMES}

    def prepare():
        capabilities.apply_capabilities(caps)
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "WARNING" in result.stderr
    assert "CAP_NOT_A_CAPABILITY" in result.stderr
    sets = masks(status_fields(result.stdout))
    assert sets["CapBnd"] == capability_mask(CAP_KILL)
    assert sets["CapAmb"] == capability_mask(CAP_KILL)


def test_ambient_needs_inheritable():
    caps = dict(CONTAINER_CAPS, ambient=["CAP_CHOWN"])

    def prepare():
        capabilities.apply_capabilities(caps)
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "CAP_CHOWN" in result.stderr
    assert masks(status_fields(result.stdout))["CapAmb"] == 0


def test_bounding_drop_needs_setpcap():
    without_setpcap = {
        "bounding": capabilities.mask_names(host_bounding_mask()),
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
    }
    caps = {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]}

    def prepare():
        capabilities.apply_capabilities(without_setpcap)
        capabilities.apply_capabilities(caps)

    result = run_child(prepare)

    assert result.exit_code != 0
    assert "CAP_SETPCAP" in result.stderr


def test_exec_caps_skip_inheritable():
    base = {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": []}

    merged = capabilities.merge_exec_capabilities(base, ["CAP_NET_ADMIN"])

    assert merged["bounding"] == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert merged["permitted"] == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert merged["effective"] == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert merged["inheritable"] == []
    assert merged["ambient"] == []


def test_exec_caps_applied():
    base = {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]}

    def prepare():
        capabilities.apply_capabilities_for_exec(base, ["CAP_NET_ADMIN"])
        report_own_status()

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    sets = masks(status_fields(result.stdout))
    assert sets["CapBnd"] == capability_mask(CAP_KILL, CAP_NET_ADMIN)
    assert sets["CapPrm"] == capability_mask(CAP_KILL, CAP_NET_ADMIN)
    assert sets["CapEff"] == capability_mask(CAP_KILL, CAP_NET_ADMIN)
    assert sets["CapInh"] == 0
    assert sets["CapAmb"] == 0


def test_names_cover_kernel_caps():
    with open("/proc/sys/kernel/cap_last_cap") as file:
        kernel_last = int(file.read())

    assert capabilities.CAPABILITY_NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert capabilities.last_capability() == min(kernel_last, 40)
