"""cgroupsPath resolution, systemd slice expansion and cgroup layout detection."""

import pytest

from navio_runtime.cgroups import detect_mode, mode, open_manager, paths
from navio_runtime.cgroups.mode import read_mounts, unified_mount, v1_controller_mounts
from navio_runtime.errors import CgroupError

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

LEGACY_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""

UNIFIED_MOUNTINFO = """\
40 23 0:34 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


@pytest.mark.parametrize(
    ("cgroups_path", "expected"),
    [
        (None, "/navio/abc"),
        ("", "/navio/abc"),
        ("/custom/place", "/custom/place"),
        ("/custom//place/", "/custom/place"),
        ("relative/place", "/navio/relative/place"),
        ("/odd:name:here", "/odd:name:here"),
    ],
)
def test_resolve_cgroups_path(cgroups_path, expected):
    assert paths.resolve_cgroups_path("abc", cgroups_path) == expected


@pytest.mark.parametrize("cgroups_path", ["/a/../b", "a/./b", "..", "/"])
def test_resolve_rejects_bad_path(cgroups_path):
    with pytest.raises(CgroupError, match="cgroupsPath"):
        paths.resolve_cgroups_path("abc", cgroups_path)


def test_resolve_rejects_slice_form_without_systemd():
    with pytest.raises(CgroupError, match="--systemd-cgroup"):
        paths.resolve_cgroups_path("abc", "system.slice:navio:abc")


def test_resolve_rejects_bad_container_id():
    with pytest.raises(CgroupError, match="container id"):
        paths.resolve_cgroups_path("a/b", None)


@pytest.mark.parametrize(
    ("slice_name", "expected"),
    [
        ("system.slice", "/system.slice"),
        ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
        ("-.slice", "/"),
    ],
)
def test_expand_slice(slice_name, expected):
    assert paths.expand_slice(slice_name) == expected


@pytest.mark.parametrize("slice_name", ["system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"])
def test_expand_slice_rejects(slice_name):
    with pytest.raises(CgroupError, match="invalid systemd slice"):
        paths.expand_slice(slice_name)


@pytest.mark.skipif(paths.systemd_running(), reason="systemd is running on this host")
def test_systemd_driver_needs_systemd():
    with pytest.raises(CgroupError, match="--systemd-cgroup was given but systemd is not running"):
        open_manager("abc", "system.slice:navio:abc", systemd=True)


def test_systemd_scope_path(monkeypatch):
    # Only the /run/systemd/system probe is replaced, and no cgroup is touched.
    monkeypatch.setattr(paths, "systemd_running", lambda: True)

    assert paths.resolve_cgroups_path("abc", "system.slice:navio:abc", systemd=True) == "/system.slice/navio-abc.scope"
    assert paths.resolve_cgroups_path("abc", None, systemd=True) == "/system.slice/navio-abc.scope"
    assert paths.resolve_cgroups_path("abc", "a-b.slice::abc", systemd=True) == "/a.slice/a-b.slice/abc.scope"
    assert paths.resolve_cgroups_path("abc", ":navio:abc", systemd=True) == "/system.slice/navio-abc.scope"
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        paths.resolve_cgroups_path("abc", "/plain/path", systemd=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(HYBRID_MOUNTINFO, "hybrid"), (LEGACY_MOUNTINFO, "legacy"), (UNIFIED_MOUNTINFO, "unified")],
)
def test_detect_mode_layouts(tmp_path, text, expected):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(text)

    assert mode.detect_mode("/sys/fs/cgroup", str(mountinfo)) == expected


def test_detect_mode_nothing_mounted(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")

    with pytest.raises(CgroupError, match="no cgroup filesystem is mounted"):
        mode.detect_mode("/sys/fs/cgroup", str(mountinfo))


def test_v1_controller_mounts_parse(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(HYBRID_MOUNTINFO)

    mounts = v1_controller_mounts("/sys/fs/cgroup", str(mountinfo))

    assert mounts == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "name=systemd": "/sys/fs/cgroup/systemd",
    }
    assert unified_mount("/sys/fs/cgroup", str(mountinfo)) == "/sys/fs/cgroup/unified"


def test_detect_mode_this_host():
    mounts = read_mounts()
    root_is_v2 = any(m.fstype == "cgroup2" and m.mount_point == "/sys/fs/cgroup" for m in mounts)

    mode_name = detect_mode()

    if root_is_v2:
        assert mode_name == "unified"
    else:
        assert mode_name in ("hybrid", "legacy")
