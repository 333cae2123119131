"""cgroup v1 pids controller: pids.max, with the same file format as cgroup v2.

Following runtime-spec 1.3, a negative limit writes "max" and 0 is a real
limit that forbids every new process. An absent limit leaves pids.max alone.
"""

from navio_runtime.cgroups.v2.pids import apply, requested, stats  # noqa: F401
