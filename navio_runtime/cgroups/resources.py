"""Helpers to read the linux.resources dict of config.json."""

from navio_runtime.errors import CgroupError


def section(resources, key):
    """Return the object linux.resources.<key>, or {} when it is absent or null."""
    value = (resources or {}).get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CgroupError(f"invalid linux.resources.{key} {value!r}: expected an object")
    return value


def entries(resources, key, subkey):
    """Return the list linux.resources.<key>.<subkey>, or [] when it is absent or null."""
    value = section(resources, key).get(subkey)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"invalid linux.resources.{key}.{subkey} {value!r}: expected a list")
    return value


def integer(container, key, where, minimum=None, maximum=None):
    """Return container[key] as an int, or None when absent. Raise CgroupError when it is out of range."""
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"invalid {where}.{key} {value!r}: expected an integer")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else minimum
        high = "" if maximum is None else maximum
        raise CgroupError(f"invalid {where}.{key} {value}: expected a value in {low}..{high}")
    return value


def cpu_bandwidth(cpu):
    """Return (shares, quota, period, burst, idle) of the linux.resources.cpu object `cpu`.

    Each value is an int or None when absent. Raises CgroupError for a value
    out of range and for a burst above a positive quota.
    """
    where = "linux.resources.cpu"
    shares = integer(cpu, "shares", where, minimum=0)
    quota = integer(cpu, "quota", where, minimum=-1)
    period = integer(cpu, "period", where, minimum=0)
    burst = integer(cpu, "burst", where, minimum=0)
    idle = integer(cpu, "idle", where, minimum=0, maximum=1)
    if quota is not None and quota > 0 and burst is not None and burst > quota:
        raise CgroupError(f"invalid {where}.burst {burst}: it must not exceed {where}.quota {quota}")
    return shares, quota, period, burst, idle


def memory_limits(memory):
    """Return (limit, reservation, swap) of the linux.resources.memory object `memory`, each an int or None."""
    where = "linux.resources.memory"
    limit = integer(memory, "limit", where, minimum=-1)
    reservation = integer(memory, "reservation", where, minimum=-1)
    swap = integer(memory, "swap", where, minimum=-1)
    return limit, reservation, swap


def check_memory_usage(path, resources, usage_file):
    """Raise CgroupError when checkBeforeUpdate is set and the new limit is below the current usage.

    `usage_file` is the file in the cgroup directory `path` that contains the
    memory usage in bytes (memory.usage_in_bytes on v1, memory.current on v2).
    """
    import os

    from navio_runtime.cgroups import files

    where = "linux.resources.memory"
    memory = section(resources, "memory")
    limit = integer(memory, "limit", where, minimum=-1)
    if not memory.get("checkBeforeUpdate") or not limit or limit == -1:
        return
    usage = files.read_uint(os.path.join(path, usage_file))
    if limit < usage:
        raise CgroupError(
            f"rejected {where}.limit {limit}: it is below the current usage {usage} of {path} "
            "and checkBeforeUpdate is set"
        )


def device_number(entry, where):
    """Return "major:minor" of a blockIO device entry. Raises CgroupError when either number is missing."""
    major = integer(entry, "major", where, minimum=0)
    minor = integer(entry, "minor", where, minimum=0)
    if major is None or minor is None:
        raise CgroupError(f"invalid {where}: major and minor are required")
    return f"{major}:{minor}"


# The linux.resources.blockIO lists of per-device rate limits.
THROTTLE_LISTS = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice")


def throttle_rates(resources):
    """Yield (list name, "major:minor", rate) for every entry of the blockIO throttle lists, in order.

    Raises CgroupError for an entry without a rate or device numbers. A rate
    of 0 removes the device's limit on both cgroup versions.
    """
    for list_name in THROTTLE_LISTS:
        for index, entry in enumerate(entries(resources, "blockIO", list_name)):
            where = f"linux.resources.blockIO.{list_name}[{index}]"
            rate = integer(entry, "rate", where, minimum=0)
            if rate is None:
                raise CgroupError(f"invalid {where}: rate is required")
            yield list_name, device_number(entry, where), rate
