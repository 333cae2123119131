"""cgroup v2 hugetlb controller: hugetlb.<size>.max and, where the kernel has it, hugetlb.<size>.rsvd.max.

The reservation limit is written too when it exists, because the
runtime-spec requires limiting reservations where the kernel supports them.
"""

import os
import re

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import integer
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.hugepageLimits"

_PAGE_SIZE = re.compile(r"^[0-9]+[KMG]B$")


def requested(resources):
    """Return True when `resources` sets a huge page limit."""
    return bool((resources or {}).get("hugepageLimits"))


def parse_limits(resources):
    """Return [(page_size, limit)] from linux.resources.hugepageLimits."""
    limits = (resources or {}).get("hugepageLimits") or []
    if not isinstance(limits, list):
        raise CgroupError(f"invalid {WHERE} {limits!r}: expected a list")
    result = []
    for index, entry in enumerate(limits):
        where = f"{WHERE}[{index}]"
        page_size = entry.get("pageSize") if isinstance(entry, dict) else None
        if not isinstance(page_size, str) or not _PAGE_SIZE.match(page_size):
            raise CgroupError(f"invalid {where}.pageSize {page_size!r}: expected a size such as \"2MB\" or \"1GB\"")
        limit = integer(entry, "limit", where, minimum=0)
        if limit is None:
            raise CgroupError(f"invalid {where}: limit is required")
        result.append((page_size, limit))
    return result


def write_limits(path, resources, suffix):
    """Write each huge page limit to hugetlb.<size>.<suffix>, and to hugetlb.<size>.rsvd.<suffix> where it exists.

    `suffix` is "max" on cgroup v2 and "limit_in_bytes" on cgroup v1.
    """
    for page_size, limit in parse_limits(resources):
        limit_file = os.path.join(path, f"hugetlb.{page_size}.{suffix}")
        if not os.path.exists(limit_file):
            raise CgroupError(
                f"cannot apply {WHERE} for page size {page_size}: {limit_file} does not exist "
                "(the kernel has no huge pages of that size)"
            )
        reservation_file = os.path.join(path, f"hugetlb.{page_size}.rsvd.{suffix}")
        if os.path.exists(reservation_file):
            files.write(reservation_file, str(limit))
        files.write(limit_file, str(limit))


def apply(path, resources):
    write_limits(path, resources, "max")


def page_sizes(path):
    """Return the huge page sizes that have control files in `path` ("2MB", "1GB")."""
    sizes = set()
    try:
        names = os.listdir(path)
    except OSError:
        return []
    for name in names:
        match = re.match(r"^hugetlb\.([0-9]+[KMG]B)\.max$", name)
        if match:
            sizes.add(match.group(1))
    return sorted(sizes)


def stats(path):
    result = {}
    for size in page_sizes(path):
        events = files.read_flat_keyed(os.path.join(path, f"hugetlb.{size}.events"))
        # cgroup v2 keeps no peak usage, so "max" (the peak in runc's format) stays 0.
        result[size] = {
            "usage": files.read_uint(os.path.join(path, f"hugetlb.{size}.current")),
            "max": 0,
            "failcnt": events.get("max", 0),
            "limit": files.read_uint(os.path.join(path, f"hugetlb.{size}.max"), files.UNLIMITED),
        }
    return result
