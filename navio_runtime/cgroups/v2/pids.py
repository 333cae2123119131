"""cgroup v2 pids controller: pids.max.

Following runtime-spec 1.3, a negative limit writes "max" and 0 is a real
limit that forbids every new process. An absent limit leaves pids.max alone.
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import integer, section

WHERE = "linux.resources.pids"


def limit_value(limit):
    """Return the pids.max value for an OCI pids limit."""
    return "max" if limit < 0 else str(limit)


def requested(resources):
    """Return True when `resources` sets a pids limit."""
    return section(resources, "pids").get("limit") is not None


def apply(path, resources):
    limit = integer(section(resources, "pids"), "limit", WHERE)
    if limit is not None:
        files.write(os.path.join(path, "pids.max"), limit_value(limit))


def stats(path):
    limit = files.read_uint(os.path.join(path, "pids.max"), files.UNLIMITED)
    # runc reports "no limit" as 0.
    return {
        "current": files.read_uint(os.path.join(path, "pids.current")),
        "limit": 0 if limit == files.UNLIMITED else limit,
    }
