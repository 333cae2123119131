"""cgroup v2 memory controller: memory.max, memory.low and memory.swap.max.

Values of 0 for limit, reservation and swap mean "not set", as in runc,
and -1 means "max".
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import check_memory_usage, memory_limits, section
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

WHERE = "linux.resources.memory"


def _limit_text(value):
    return "max" if value == -1 else str(value)


def swap_max_value(limit, swap):
    """Return the memory.swap.max value for an OCI limit and swap, or None to leave it alone.

    The OCI swap value is the v1 memory+swap total, while cgroup v2 limits
    swap alone, so the value written is swap - limit. An unlimited memory
    limit without a swap value also makes swap unlimited, as it does on v1.
    Raises CgroupError for a swap limit without a memory limit and for a
    swap total below the memory limit.
    """
    if limit == -1 and not swap:
        return "max"
    if not swap:
        return None
    if swap == -1:
        return "max"
    if not limit or limit == -1:
        raise CgroupError(
            f"invalid {WHERE}.swap {swap}: a swap limit needs a memory limit (set {WHERE}.limit too)"
        )
    if swap < limit:
        raise CgroupError(
            f"invalid {WHERE}.swap {swap}: it is the memory+swap total and must be >= {WHERE}.limit {limit}"
        )
    return str(swap - limit)


def _check_v1_only_fields(memory):
    # The runtime-spec marks kernel and kernelTCP NOT RECOMMENDED and allows
    # runtimes to ignore them. cgroup v2 has no separate kernel memory limit.
    for key in ("kernel", "kernelTCP"):
        if memory.get(key) is not None:
            log.warning("%s.%s is ignored: cgroup v2 has no separate kernel memory limit", WHERE, key)
    # The runtime-spec requires an error when a v1 setting has no v2 equivalent.
    if memory.get("swappiness") is not None:
        raise CgroupError(
            f"invalid {WHERE}.swappiness {memory['swappiness']}: cgroup v2 has no per-cgroup swappiness; "
            "remove it from config.json"
        )
    if memory.get("disableOOMKiller"):
        raise CgroupError(
            f"invalid {WHERE}.disableOOMKiller true: cgroup v2 cannot disable the OOM killer of a cgroup; "
            "remove it from config.json"
        )
    if memory.get("useHierarchy") is False:
        raise CgroupError(f"invalid {WHERE}.useHierarchy false: cgroup v2 memory accounting is always hierarchical")


def requested(resources):
    """Return True when `resources` sets a memory limit that needs the memory controller."""
    memory = section(resources, "memory")
    return any(memory.get(key) for key in ("limit", "reservation", "swap"))


def apply(path, resources):
    memory = section(resources, "memory")
    if not memory:
        return
    limit, reservation, swap = memory_limits(memory)
    _check_v1_only_fields(memory)

    swap_value = swap_max_value(limit, swap)
    if swap_value is not None:
        swap_file = os.path.join(path, "memory.swap.max")
        if os.path.exists(swap_file):
            files.write(swap_file, swap_value)
        elif swap:
            raise CgroupError(
                f"cannot apply {WHERE}.swap {swap}: {swap_file} does not exist "
                "(the kernel has swap accounting off)"
            )

    if limit:
        files.write(os.path.join(path, "memory.max"), _limit_text(limit))
    if reservation:
        files.write(os.path.join(path, "memory.low"), _limit_text(reservation))


def check_before_update(path, resources):
    """Raise CgroupError when checkBeforeUpdate is set and the new limit is below the current usage."""
    check_memory_usage(path, resources, "memory.current")


def oom_kill_count(path):
    """Return the number of processes the OOM killer has killed in this cgroup."""
    return files.read_flat_keyed(os.path.join(path, "memory.events")).get("oom_kill", 0)


def _entry(usage=0, limit=0, max_usage=0, failcnt=0):
    return {"usage": usage, "limit": limit, "max": max_usage, "failcnt": failcnt}


def stats(path):
    raw = files.read_flat_keyed(os.path.join(path, "memory.stat"))
    events = files.read_flat_keyed(os.path.join(path, "memory.events"))
    usage = files.read_uint(os.path.join(path, "memory.current"))
    limit = files.read_uint(os.path.join(path, "memory.max"), files.UNLIMITED)
    memory_entry = _entry(usage, limit, files.read_uint(os.path.join(path, "memory.peak")), events.get("max", 0))

    # v1 reports swap as memory+swap, and runc keeps that meaning on v2.
    swap_usage = files.read_uint(os.path.join(path, "memory.swap.current"))
    swap_limit = files.read_uint(os.path.join(path, "memory.swap.max"), files.UNLIMITED)
    swap_events = files.read_flat_keyed(os.path.join(path, "memory.swap.events"))
    if swap_limit != files.UNLIMITED and limit != files.UNLIMITED:
        swap_limit += limit
    else:
        swap_limit = files.UNLIMITED
    swap_entry = _entry(swap_usage + usage, swap_limit, 0, swap_events.get("fail", 0))

    return {
        "cache": raw.get("file", 0),
        "usage": memory_entry,
        "swap": swap_entry,
        "kernel": _entry(usage=raw.get("kernel", 0)),
        "kernelTCP": _entry(usage=raw.get("sock", 0)),
        "raw": raw,
    }
