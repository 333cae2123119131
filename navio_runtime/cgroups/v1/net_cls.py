"""cgroup v1 net_cls controller: linux.resources.network.classID -> net_cls.classid."""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import integer, section

WHERE = "linux.resources.network"


def requested(resources):
    """Return True when `resources` sets a network class id."""
    return section(resources, "network").get("classID") is not None


def apply(path, resources):
    class_id = integer(section(resources, "network"), "classID", WHERE, minimum=0, maximum=0xFFFFFFFF)
    if class_id is not None:
        files.write(os.path.join(path, "net_cls.classid"), str(class_id))


def stats(path):
    return {}
