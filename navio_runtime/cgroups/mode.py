"""Detection of the cgroup layout (unified, hybrid or legacy) from /proc/self/mountinfo."""

import os
import re
from collections import namedtuple

from navio_runtime.errors import CgroupError

MOUNTINFO = "/proc/self/mountinfo"

UNIFIED = "unified"
HYBRID = "hybrid"
LEGACY = "legacy"

# Mount options of a cgroup v1 mount that are not controller names.
_V1_NON_CONTROLLER_OPTIONS = {"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"}

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


# One line of /proc/self/mountinfo, reduced to the fields the cgroup code uses.
Mount = namedtuple("Mount", "root mount_point fstype super_options")


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def read_mounts(mountinfo=MOUNTINFO):
    """Return the cgroup and cgroup2 mounts listed in `mountinfo`."""
    try:
        with open(mountinfo) as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise CgroupError(f"read {mountinfo}: {os.strerror(err.errno)}") from None
    mounts = []
    for line in lines:
        fields = line.split()
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[separator + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        super_options = tuple(fields[separator + 3].split(",")) if len(fields) > separator + 3 else ()
        mounts.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fstype, super_options))
    return mounts


def _under(path, root):
    return os.path.dirname(path) == root


def detect_mode(root="/sys/fs/cgroup", mountinfo=MOUNTINFO):
    """Return "unified", "hybrid" or "legacy" for the cgroup mounts at `root`.

    unified: `root` itself is a cgroup2 mount.
    hybrid: v1 controller mounts below `root` plus a cgroup2 mount below it
    (systemd mounts it at `root`/unified).
    legacy: only v1 controller mounts below `root`.
    Raises CgroupError when no cgroup filesystem is mounted at or below `root`.
    """
    root = os.path.normpath(root)
    mounts = read_mounts(mountinfo)
    if any(m.fstype == "cgroup2" and m.mount_point == root for m in mounts):
        return UNIFIED
    has_v1 = any(m.fstype == "cgroup" and _under(m.mount_point, root) for m in mounts)
    has_v2 = any(m.fstype == "cgroup2" and _under(m.mount_point, root) for m in mounts)
    if has_v1:
        return HYBRID if has_v2 else LEGACY
    raise CgroupError(
        f"no cgroup filesystem is mounted at or below {root} (checked {mountinfo}); "
        "mount cgroup2 there or the v1 controllers below it"
    )


def v1_controller_mounts(root="/sys/fs/cgroup", mountinfo=MOUNTINFO):
    """Return {controller: mount point} for the cgroup v1 hierarchies below `root`.

    Named hierarchies appear as "name=<name>" (for example "name=systemd").
    Controllers that share a hierarchy, such as "cpu,cpuacct", map to the same
    mount point. The first mount of a controller wins.
    """
    root = os.path.normpath(root)
    result = {}
    for mount in read_mounts(mountinfo):
        if mount.fstype != "cgroup" or not _under(mount.mount_point, root):
            continue
        # NOTE: a hierarchy whose mount root is not "/" (a bind mount of a
        # sub-cgroup, as inside some containers) is used as if it were the
        # hierarchy's root, so absolute cgroupsPath values are taken relative to it.
        for option in mount.super_options:
            if option in _V1_NON_CONTROLLER_OPTIONS or option.startswith("release_agent="):
                continue
            result.setdefault(option, mount.mount_point)
    return result


def unified_mount(root="/sys/fs/cgroup", mountinfo=MOUNTINFO):
    """Return the cgroup2 mount point at or below `root`, or None when there is none."""
    root = os.path.normpath(root)
    below = None
    for mount in read_mounts(mountinfo):
        if mount.fstype != "cgroup2":
            continue
        if mount.mount_point == root:
            return root
        if below is None and _under(mount.mount_point, root):
            below = mount.mount_point
    return below
