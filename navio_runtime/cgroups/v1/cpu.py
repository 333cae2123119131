"""cgroup v1 cpu controller, with the cpuacct statistics.

shares -> cpu.shares, period -> cpu.cfs_period_us, quota -> cpu.cfs_quota_us,
burst -> cpu.cfs_burst_us (Linux 5.14+), idle -> cpu.idle (Linux 5.15+),
realtimePeriod -> cpu.rt_period_us, realtimeRuntime -> cpu.rt_runtime_us.
burst and idle are skipped with a warning on kernels without their files. A value of 0 for
shares, quota, period and the real-time fields means "not set", as in runc.
"""

import errno as _errno
import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import cpu_bandwidth, integer, section
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

WHERE = "linux.resources.cpu"

# Files that older kernels lack; a missing one is skipped with a warning.
_OPTIONAL_FILES = {"cpu.cfs_burst_us", "cpu.idle"}


def requested(resources):
    """Return True when `resources` sets a field of the cpu controller."""
    cpu = section(resources, "cpu")
    keys = ("shares", "quota", "period", "burst", "idle", "realtimeRuntime", "realtimePeriod")
    return any(cpu.get(key) is not None for key in keys)


def _write_cpu_file(path, name, value, key):
    target = os.path.join(path, name)
    if not os.path.exists(target):
        if name in _OPTIONAL_FILES:
            log.warning("%s.%s %s is ignored: %s does not exist (the kernel is too old)", WHERE, key, value, target)
            return
        raise CgroupError(f"cannot apply {WHERE}.{key} {value}: {target} does not exist (the kernel lacks it)")
    files.write(target, str(value))


def _write_retrying_after_quota(path, name, value, quota, key):
    """Write a period or burst file and return the value to write again after the quota, or None.

    The kernel rejects a period or burst (EINVAL) that does not fit the
    current quota, but it fits once the new quota is written.
    """
    try:
        _write_cpu_file(path, name, value, key)
    except files.CgroupFileError as err:
        if err.errno != _errno.EINVAL or not quota:
            raise
        return value
    return None


def apply(path, resources):
    cpu = section(resources, "cpu")
    if not cpu:
        return
    shares, quota, period, burst, idle = cpu_bandwidth(cpu)
    rt_runtime = integer(cpu, "realtimeRuntime", WHERE, minimum=-1)
    rt_period = integer(cpu, "realtimePeriod", WHERE, minimum=0)

    # cpu.idle 1 rejects cpu.shares writes (EINVAL), so leave idle mode
    # before writing shares and enter it after.
    if idle == 0:
        _write_cpu_file(path, "cpu.idle", 0, "idle")
    if shares:
        shares_file = os.path.join(path, "cpu.shares")
        files.write(shares_file, str(shares))
        # The kernel clamps shares to 2..262144, so report a value it changed.
        effective = files.read_uint(shares_file)
        if effective != shares:
            raise CgroupError(
                f"invalid {WHERE}.shares {shares}: the kernel set {effective} instead (allowed range 2..262144)"
            )
    if idle == 1:
        _write_cpu_file(path, "cpu.idle", 1, "idle")

    pending_period = None
    if period:
        pending_period = _write_retrying_after_quota(path, "cpu.cfs_period_us", period, quota, "period")
    pending_burst = None
    if burst is not None:
        pending_burst = _write_retrying_after_quota(path, "cpu.cfs_burst_us", burst, quota, "burst")
    if quota:
        files.write(os.path.join(path, "cpu.cfs_quota_us"), str(quota))
        if pending_period is not None:
            _write_cpu_file(path, "cpu.cfs_period_us", pending_period, "period")
        if pending_burst is not None:
            _write_cpu_file(path, "cpu.cfs_burst_us", pending_burst, "burst")

    # The real-time period must be set before the runtime that has to fit into it.
    if rt_period:
        _write_cpu_file(path, "cpu.rt_period_us", rt_period, "realtimePeriod")
    if rt_runtime:
        _write_cpu_file(path, "cpu.rt_runtime_us", rt_runtime, "realtimeRuntime")


def _read_list(path):
    text = files.read_optional(path, "")
    return [int(value) for value in text.split()]


def stats(path, cpuacct_path=None):
    """Return cpu usage (from cpuacct) and CFS throttling (from cpu.stat).

    `cpuacct_path` is the cpuacct directory when that controller is mounted
    apart from cpu, and it defaults to `path`.
    """
    cpuacct_path = cpuacct_path or path
    usage = {"total": 0, "kernel": 0, "user": 0, "percpu": [], "percpu_kernel": [], "percpu_user": []}
    throttling = {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}
    if cpuacct_path:
        usage["total"] = files.read_uint(os.path.join(cpuacct_path, "cpuacct.usage"))
        usage["percpu"] = _read_list(os.path.join(cpuacct_path, "cpuacct.usage_percpu"))
        usage["percpu_kernel"] = _read_list(os.path.join(cpuacct_path, "cpuacct.usage_percpu_sys"))
        usage["percpu_user"] = _read_list(os.path.join(cpuacct_path, "cpuacct.usage_percpu_user"))
        # cpuacct.stat counts in USER_HZ clock ticks.
        ticks = files.read_flat_keyed(os.path.join(cpuacct_path, "cpuacct.stat"))
        nanoseconds_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        usage["user"] = ticks.get("user", 0) * nanoseconds_per_tick
        usage["kernel"] = ticks.get("system", 0) * nanoseconds_per_tick
    if path:
        cpu_stat = files.read_flat_keyed(os.path.join(path, "cpu.stat"))
        throttling = {
            "periods": cpu_stat.get("nr_periods", 0),
            "throttledPeriods": cpu_stat.get("nr_throttled", 0),
            "throttledTime": cpu_stat.get("throttled_time", 0),
        }
    return {"usage": usage, "throttling": throttling}
