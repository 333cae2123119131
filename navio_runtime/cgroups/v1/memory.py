"""cgroup v1 memory controller.

limit -> memory.limit_in_bytes, reservation -> memory.soft_limit_in_bytes,
swap -> memory.memsw.limit_in_bytes (memory+swap), swappiness ->
memory.swappiness, disableOOMKiller -> memory.oom_control, useHierarchy ->
memory.use_hierarchy. Values of 0 for limit, reservation and swap mean
"not set", as in runc, and -1 means unlimited.
"""

import errno as _errno
import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import check_memory_usage, integer, memory_limits, section
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

WHERE = "linux.resources.memory"


def requested(resources):
    """Return True when `resources` has a memory section."""
    return bool(section(resources, "memory"))


def _write_limit(path, limit):
    limit_file = os.path.join(path, "memory.limit_in_bytes")
    try:
        files.write(limit_file, str(limit))
    except files.CgroupFileError as err:
        if err.errno != _errno.EBUSY:
            raise
        usage = files.read_uint(os.path.join(path, "memory.usage_in_bytes"))
        raise CgroupError(f"{err}: the new limit {limit} is below the current usage {usage}") from None


def _write_swap(path, swap):
    swap_file = os.path.join(path, "memory.memsw.limit_in_bytes")
    if not os.path.exists(swap_file):
        raise CgroupError(
            f"cannot apply {WHERE}.swap {swap}: {swap_file} does not exist (the kernel has swap accounting off)"
        )
    files.write(swap_file, str(swap))


def _set_limit_and_swap(path, limit, swap):
    if limit and swap:
        # The kernel requires memsw >= limit at every step, so raise the
        # memory+swap limit first when it grows and last when it shrinks.
        current = files.read_uint(os.path.join(path, "memory.limit_in_bytes"))
        if swap == -1 or current < swap:
            _write_swap(path, swap)
            _write_limit(path, limit)
        else:
            _write_limit(path, limit)
            _write_swap(path, swap)
        return
    if limit:
        _write_limit(path, limit)
    if swap:
        _write_swap(path, swap)


def apply(path, resources):
    memory = section(resources, "memory")
    if not memory:
        return
    limit, reservation, swap = memory_limits(memory)
    swappiness = integer(memory, "swappiness", WHERE, minimum=0, maximum=100)

    for key in ("kernel", "kernelTCP"):
        if memory.get(key) is not None:
            log.warning(
                "%s.%s is ignored: kernel memory limits are deprecated (NOT RECOMMENDED by the runtime-spec, "
                "obsolete since Linux 5.4)",
                WHERE,
                key,
            )
    if limit and limit > 0 and swap and swap != -1 and swap < limit:
        raise CgroupError(
            f"invalid {WHERE}.swap {swap}: it is the memory+swap total and must be >= {WHERE}.limit {limit}"
        )
    if limit == -1 and not swap:
        # An unlimited memory limit without a swap value also lifts the memory+swap limit.
        if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
            swap = -1

    _set_limit_and_swap(path, limit, swap)
    if reservation:
        files.write(os.path.join(path, "memory.soft_limit_in_bytes"), str(reservation))
    if memory.get("disableOOMKiller"):
        files.write(os.path.join(path, "memory.oom_control"), "1")
    if swappiness is not None:
        files.write(os.path.join(path, "memory.swappiness"), str(swappiness))
    if memory.get("useHierarchy") is not None:
        files.write(os.path.join(path, "memory.use_hierarchy"), "1" if memory["useHierarchy"] else "0")


def check_before_update(path, resources):
    """Raise CgroupError when checkBeforeUpdate is set and the new limit is below the current usage."""
    check_memory_usage(path, resources, "memory.usage_in_bytes")


def oom_kill_count(path):
    """Return the number of processes the OOM killer has killed in this cgroup (Linux 4.13+)."""
    return files.read_flat_keyed(os.path.join(path, "memory.oom_control")).get("oom_kill", 0)


def _entry(path, prefix):
    return {
        "usage": files.read_uint(os.path.join(path, f"{prefix}.usage_in_bytes")),
        "limit": files.read_uint(os.path.join(path, f"{prefix}.limit_in_bytes"), files.UNLIMITED),
        "max": files.read_uint(os.path.join(path, f"{prefix}.max_usage_in_bytes")),
        "failcnt": files.read_uint(os.path.join(path, f"{prefix}.failcnt")),
    }


def stats(path):
    raw = files.read_flat_keyed(os.path.join(path, "memory.stat"))
    return {
        "cache": raw.get("cache", 0),
        "usage": _entry(path, "memory"),
        "swap": _entry(path, "memory.memsw"),
        "kernel": _entry(path, "memory.kmem"),
        "kernelTCP": _entry(path, "memory.kmem.tcp"),
        "raw": raw,
    }
