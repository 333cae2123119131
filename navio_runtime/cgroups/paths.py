"""Resolution of linux.cgroupsPath to a path inside the cgroup hierarchy.

The result is always absolute inside the hierarchy ("/navio/abc"), and the
drivers join it to each mount point.
"""

import os

from navio_runtime.errors import CgroupError

# Parent of the container cgroups when cgroupsPath is relative or unset.
RUNTIME_PARENT = "navio"

# Marker directory that exists only when systemd is the running init system
# (the check that sd_booted(3) does).
SYSTEMD_RUN_DIR = "/run/systemd/system"

DEFAULT_SYSTEMD_SLICE = "system.slice"
DEFAULT_SYSTEMD_PREFIX = "navio"


def systemd_running():
    """Return True when systemd is the running init system."""
    return os.path.isdir(SYSTEMD_RUN_DIR)


def _check_components(path, field):
    for component in path.split("/"):
        if component in (".", ".."):
            raise CgroupError(f"invalid {field} {path!r}: \".\" and \"..\" components are not allowed")


def resolve_cgroups_path(container_id, cgroups_path, systemd=False):
    """Return the absolute cgroup path for a container.

    Absolute cgroupsPath: used as is, relative to the cgroup root.
    Relative cgroupsPath: placed under /navio.
    None or "": /navio/<container_id>.
    With `systemd`, cgroupsPath has the form "slice:prefix:name" and names
    the scope <prefix>-<name>.scope below the expanded slice.
    Raises CgroupError for paths with "." or ".." components, for the root
    itself, and for the "slice:prefix:name" form without `systemd`.
    """
    if systemd:
        return _resolve_systemd(container_id, cgroups_path)

    if not cgroups_path:
        _check_container_id(container_id)
        return f"/{RUNTIME_PARENT}/{container_id}"

    if cgroups_path.count(":") == 2 and "/" not in cgroups_path.split(":", 1)[0]:
        raise CgroupError(
            f"invalid cgroupsPath {cgroups_path!r}: the \"slice:prefix:name\" form needs the "
            "systemd cgroup driver; pass --systemd-cgroup or use a path such as /navio/<id>"
        )
    _check_components(cgroups_path, "cgroupsPath")
    if cgroups_path.startswith("/"):
        path = os.path.normpath(cgroups_path)
    else:
        path = os.path.normpath(f"/{RUNTIME_PARENT}/{cgroups_path}")
    if path == "/":
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: a container cannot use the cgroup root")
    return path


def _check_container_id(container_id):
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise CgroupError(f"invalid container id {container_id!r} for a cgroup name")


def _resolve_systemd(container_id, cgroups_path):
    if not systemd_running():
        raise CgroupError(
            f"--systemd-cgroup was given but systemd is not running ({SYSTEMD_RUN_DIR} is missing); "
            "run without --systemd-cgroup"
        )
    if not cgroups_path:
        _check_container_id(container_id)
        cgroups_path = f"{DEFAULT_SYSTEMD_SLICE}:{DEFAULT_SYSTEMD_PREFIX}:{container_id}"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupError(
            f"invalid cgroupsPath {cgroups_path!r}: the systemd cgroup driver expects \"slice:prefix:name\""
        )
    slice_name, prefix, name = parts
    if not name or "/" in name or "/" in prefix:
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: name must be non-empty and without \"/\"")
    parent = expand_slice(slice_name or DEFAULT_SYSTEMD_SLICE)
    if name.endswith(".slice"):
        # NOTE: systemd places a slice unit by its own name, so the given
        # parent slice is only used here as the directory that contains it.
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return os.path.join(parent, unit)


def expand_slice(slice_name):
    """Return the cgroup path of a systemd slice ("a-b.slice" -> "/a.slice/a-b.slice").

    "-.slice" is the root slice. Raises CgroupError for names that systemd
    rejects: no ".slice" suffix, a "/", or a "-" at the start, at the end or
    doubled.
    """
    suffix = ".slice"
    if not slice_name.endswith(suffix) or "/" in slice_name:
        raise CgroupError(f"invalid systemd slice {slice_name!r}: expected a name such as \"system.slice\"")
    if slice_name == "-.slice":
        return "/"
    stem = slice_name[: -len(suffix)]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise CgroupError(f"invalid systemd slice {slice_name!r}: \"-\" separates non-empty parts")
    path = ""
    prefix = ""
    for part in stem.split("-"):
        prefix = f"{prefix}-{part}" if prefix else part
        path += f"/{prefix}{suffix}"
    return path
