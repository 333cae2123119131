"""cgroup v1 net_prio controller: linux.resources.network.priorities -> net_prio.ifpriomap."""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import entries, integer
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.network.priorities"


def requested(resources):
    """Return True when `resources` sets interface priorities."""
    return bool(entries(resources, "network", "priorities"))


def apply(path, resources):
    for index, entry in enumerate(entries(resources, "network", "priorities")):
        where = f"{WHERE}[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or any(character.isspace() for character in name):
            raise CgroupError(f"invalid {where}.name {name!r}: expected an interface name")
        priority = integer(entry, "priority", where, minimum=0, maximum=0xFFFFFFFF)
        if priority is None:
            raise CgroupError(f"invalid {where}: priority is required")
        # ifpriomap takes one "<interface> <priority>" pair per write.
        files.write(os.path.join(path, "net_prio.ifpriomap"), f"{name} {priority}")


def stats(path):
    return {}
