"""cgroup v2 cpuset controller: cpuset.cpus and cpuset.mems."""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import section
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.cpu"


def requested(resources):
    """Return True when `resources` sets cpus or mems."""
    cpu = section(resources, "cpu")
    return bool(cpu.get("cpus") or cpu.get("mems"))


def apply(path, resources):
    cpu = section(resources, "cpu")
    for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        value = cpu.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise CgroupError(f"invalid {WHERE}.{key} {value!r}: expected a list such as \"0-3,6\"")
        files.write(os.path.join(path, filename), value)


def stats(path):
    return {
        "cpus": files.read_optional(os.path.join(path, "cpuset.cpus.effective"), ""),
        "mems": files.read_optional(os.path.join(path, "cpuset.mems.effective"), ""),
    }
