"""cgroup v1 cpuset controller: cpuset.cpus and cpuset.mems.

A new v1 cpuset starts with empty cpus and mems, and the kernel refuses
to add a process to it (ENOSPC), so `copy_from_parent` fills in the
parent's values for each directory the manager creates.
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.v2.cpuset import WHERE, apply, requested  # noqa: F401  (same OCI fields and files)


def copy_from_parent(directory):
    """Copy cpuset.cpus and cpuset.mems from the parent directory where `directory` has them empty."""
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if files.read(os.path.join(directory, name)).strip():
            continue
        value = files.read(os.path.join(parent, name)).strip()
        if value:
            files.write(os.path.join(directory, name), value)


def stats(path):
    return {
        "cpus": files.read_optional(os.path.join(path, "cpuset.effective_cpus"), ""),
        "mems": files.read_optional(os.path.join(path, "cpuset.effective_mems"), ""),
    }
