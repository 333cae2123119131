"""cgroup v2 cpu controller: cpu.weight, cpu.max, cpu.max.burst and cpu.idle."""

import errno as _errno
import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import cpu_bandwidth, section
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.cpu"

# cpu.shares range of cgroup v1 (kernel MIN_SHARES and MAX_SHARES).
MIN_SHARES = 2
MAX_SHARES = 262144


def shares_to_weight(shares):
    """Convert v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000) with runc's linear formula.

    0 means "not set" and returns 0. Shares outside 2..262144 are clamped,
    as the kernel clamps cpu.shares.
    """
    if not shares:
        return 0
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def cpu_max_value(quota, period):
    """Return the cpu.max value for an OCI quota and period, or None to leave it alone.

    A quota of -1, or no quota with a period, writes "max". Without a period
    only the quota is written, and the kernel keeps the current period.
    """
    if quota is None and period is None:
        return None
    text = str(quota) if quota is not None and quota > 0 else "max"
    if period:
        text += f" {period}"
    return text


def requested(resources):
    """Return True when `resources` sets a field that needs the cpu controller."""
    cpu = section(resources, "cpu")
    return any(cpu.get(key) is not None for key in ("shares", "quota", "period", "burst", "idle"))


def apply(path, resources):
    cpu = section(resources, "cpu")
    if not cpu:
        return
    shares, quota, period, burst, idle = cpu_bandwidth(cpu)
    if quota == 0:
        # runc treats a zero quota as "not set".
        quota = None

    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key):
            raise CgroupError(
                f"invalid {WHERE}.{key} {cpu[key]}: cgroup v2 has no real-time group scheduling; "
                "remove it from config.json"
            )

    # cpu.idle 1 rejects cpu.weight writes (EINVAL), so leave idle mode
    # before writing the weight and enter it after.
    if idle == 0:
        files.write(os.path.join(path, "cpu.idle"), "0")
    weight = shares_to_weight(shares)
    if weight:
        files.write(os.path.join(path, "cpu.weight"), str(weight))
    if idle == 1:
        files.write(os.path.join(path, "cpu.idle"), "1")

    pending_burst = None
    if burst is not None:
        try:
            files.write(os.path.join(path, "cpu.max.burst"), str(burst))
        except files.CgroupFileError as err:
            # A burst above the current quota is rejected, so retry after the new quota is written.
            if err.errno != _errno.EINVAL or quota is None:
                raise
            pending_burst = str(burst)

    max_value = cpu_max_value(quota, period)
    if max_value is not None:
        files.write(os.path.join(path, "cpu.max"), max_value)
    if pending_burst is not None:
        files.write(os.path.join(path, "cpu.max.burst"), pending_burst)


def stats(path):
    cpu_stat = files.read_flat_keyed(os.path.join(path, "cpu.stat"))
    return {
        "usage": {
            "total": cpu_stat.get("usage_usec", 0) * 1000,
            "kernel": cpu_stat.get("system_usec", 0) * 1000,
            "user": cpu_stat.get("user_usec", 0) * 1000,
            "percpu": [],
            "percpu_kernel": [],
            "percpu_user": [],
        },
        "throttling": {
            "periods": cpu_stat.get("nr_periods", 0),
            "throttledPeriods": cpu_stat.get("nr_throttled", 0),
            "throttledTime": cpu_stat.get("throttled_usec", 0) * 1000,
        },
    }
