"""cgroup v2 freezer: cgroup.freeze, with cgroup.events reporting when the freeze is complete."""

import os
import time

from navio_runtime.cgroups import files
from navio_runtime.errors import CgroupError

# Seconds to wait for cgroup.events to report the new state. Freezing waits
# for every task to reach a safe point, which takes long under emulation.
DEFAULT_TIMEOUT = 30.0


def _events_frozen(path):
    return files.read_flat_keyed(os.path.join(path, "cgroup.events")).get("frozen", 0) == 1


def set_frozen(path, frozen, timeout=DEFAULT_TIMEOUT):
    """Write cgroup.freeze and wait until cgroup.events reports "frozen 1" (or "frozen 0")."""
    freeze_file = os.path.join(path, "cgroup.freeze")
    if not os.path.exists(freeze_file):
        raise CgroupError(f"cannot freeze {path}: {freeze_file} does not exist (the kernel is older than 5.2)")
    files.write(freeze_file, "1" if frozen else "0")
    deadline = time.monotonic() + timeout
    delay = 0.001
    while _events_frozen(path) != frozen:
        if time.monotonic() > deadline:
            state = "frozen" if frozen else "thawed"
            raise CgroupError(f"timed out after {timeout:g} s waiting for {path} to be {state} (cgroup.events)")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def is_frozen(path):
    """Return True when the kernel reports the cgroup as frozen."""
    return _events_frozen(path)


def apply(path, resources):
    """Do nothing, because linux.resources has no freezer field. The manager freezes and thaws."""


def stats(path):
    return {"frozen": is_frozen(path)}
