"""cgroup v1 freezer controller: freezer.state (THAWED, FREEZING, FROZEN)."""

import os
import time

from navio_runtime.cgroups import files
from navio_runtime.errors import CgroupError

# Seconds to wait for freezer.state to reach FROZEN or THAWED.
DEFAULT_TIMEOUT = 30.0

# Seconds between attempts that thaw and freeze again a cgroup stuck in
# FREEZING, which helps when its processes keep forking.
_RETRY_INTERVAL = 1.0


def state(path):
    """Return the content of freezer.state."""
    return files.read(os.path.join(path, "freezer.state")).strip()


def is_frozen(path):
    """Return True when freezer.state is FROZEN."""
    return state(path) == "FROZEN"


def set_frozen(path, frozen, timeout=DEFAULT_TIMEOUT):
    """Write freezer.state and wait until it reads FROZEN (or THAWED).

    A cgroup that is still FREEZING when the timeout expires is thawed
    again and CgroupError is raised, because a half-frozen cgroup would hang.
    """
    state_file = os.path.join(path, "freezer.state")
    target_state = "FROZEN" if frozen else "THAWED"
    files.write(state_file, target_state)
    deadline = time.monotonic() + timeout
    next_retry = time.monotonic() + _RETRY_INTERVAL
    delay = 0.001
    while state(path) != target_state:
        now = time.monotonic()
        if now > deadline:
            if frozen:
                files.write(state_file, "THAWED")
            raise CgroupError(f"timed out after {timeout:g} s waiting for {state_file} to read {target_state}")
        if frozen and now > next_retry:
            files.write(state_file, "THAWED")
            files.write(state_file, "FROZEN")
            next_retry = now + _RETRY_INTERVAL
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def apply(path, resources):
    """Do nothing, because linux.resources has no freezer field. The manager freezes and thaws."""


def stats(path):
    return {"frozen": is_frozen(path)}
