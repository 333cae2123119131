"""cgroup v2 rdma controller: rdma.max ("<device> hca_handle=<n> hca_object=<n>" per device)."""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import integer, section
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.rdma"


def max_lines(resources):
    """Return the rdma.max lines for linux.resources.rdma, one per device."""
    lines = []
    for device, limits in section(resources, "rdma").items():
        where = f"{WHERE}.{device}"
        if not device or any(character.isspace() for character in device) or not isinstance(limits, dict):
            raise CgroupError(f"invalid {where}: expected a device name and an object with hcaHandles/hcaObjects")
        handles = integer(limits, "hcaHandles", where, minimum=0, maximum=0xFFFFFFFF)
        objects = integer(limits, "hcaObjects", where, minimum=0, maximum=0xFFFFFFFF)
        if handles is None and objects is None:
            raise CgroupError(f"invalid {where}: set hcaHandles, hcaObjects or both")
        fields = [device]
        if handles is not None:
            fields.append(f"hca_handle={handles}")
        if objects is not None:
            fields.append(f"hca_object={objects}")
        lines.append(" ".join(fields))
    return lines


def requested(resources):
    """Return True when `resources` sets an rdma limit."""
    return bool(section(resources, "rdma"))


def apply(path, resources):
    for line in max_lines(resources):
        files.write(os.path.join(path, "rdma.max"), line)


def _entries(table):
    return [
        {"device": device, "hca_handles": values.get("hca_handle", 0), "hca_objects": values.get("hca_object", 0)}
        for device, values in table.items()
    ]


def stats(path):
    return {
        "current": _entries(files.read_nested_keyed(os.path.join(path, "rdma.current"))),
        "limit": _entries(files.read_nested_keyed(os.path.join(path, "rdma.max"))),
    }
