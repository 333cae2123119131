"""cgroup v1 hugetlb controller: hugetlb.<size>.limit_in_bytes and, where the kernel has it,
hugetlb.<size>.rsvd.limit_in_bytes (reservation limit, Linux 5.7+)."""

import os
import re

from navio_runtime.cgroups import files
from navio_runtime.cgroups.v2.hugetlb import WHERE, parse_limits, requested, write_limits  # noqa: F401


def apply(path, resources):
    write_limits(path, resources, "limit_in_bytes")


def stats(path):
    result = {}
    try:
        names = os.listdir(path)
    except OSError:
        return result
    for name in sorted(names):
        match = re.match(r"^hugetlb\.([0-9]+[KMG]B)\.limit_in_bytes$", name)
        if not match:
            continue
        prefix = os.path.join(path, f"hugetlb.{match.group(1)}")
        result[match.group(1)] = {
            "usage": files.read_uint(f"{prefix}.usage_in_bytes"),
            "max": files.read_uint(f"{prefix}.max_usage_in_bytes"),
            "failcnt": files.read_uint(f"{prefix}.failcnt"),
            "limit": files.read_uint(f"{prefix}.limit_in_bytes", files.UNLIMITED),
        }
    return result
