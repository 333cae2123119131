"""`events`: statistics and OOM notifications of a container, in the JSON format of `runc events`.

A stats event is {"type": "stats", "id": ID, "data": {...}}, where data is
Manager.stats(): cpu, cpuset, memory, pids, blkio and hugetlb (and rdma on
cgroup v2). An OOM event is {"type": "oom", "id": ID}.
"""

import re
import time

from navio_runtime.errors import CgroupError, ContainerNotFound, NavioError, StateError
from navio_runtime.state_store import STOPPED, StateStore
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Seconds between two stats events when the caller sets no interval (runc's default).
DEFAULT_INTERVAL = 5.0

# Maximum seconds between two checks of the OOM kill counter and of the
# container's status, so an OOM kill is reported soon after it happens.
POLL_INTERVAL = 0.1

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text):
    """Return the seconds of a duration in Go's syntax, such as "5s", "500ms" or "1m30s".

    Raises NavioError for a value without a unit, an unknown unit or a value that is not positive.
    """
    value = str(text).strip()
    position = 0
    seconds = 0.0
    while position < len(value):
        match = _DURATION_PART.match(value, position)
        if match is None:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not value or position != len(value):
        raise NavioError(f"invalid --interval {text!r}: expected a duration such as 5s, 500ms or 1m30s")
    if seconds <= 0:
        raise NavioError(f"invalid --interval {text!r}: the interval must be greater than 0")
    return seconds


def stats_event(container_id, root=None):
    """Return one stats event of a created, running or paused container; raise StateError when it has stopped."""
    from navio_runtime.container.ps import open_container_cgroup

    store = StateStore(root) if root else StateStore()
    state = store.load(container_id)
    _check_not_stopped(store, state)
    manager = open_container_cgroup(state)
    return {"type": "stats", "id": container_id, "data": manager.stats()}


def watch_events(container_id, emit, interval=DEFAULT_INTERVAL, root=None):
    """Call `emit(event)` with a stats event every `interval` seconds and an OOM event per OOM kill.

    The first stats event is emitted at once. The function returns when the
    container stops or is deleted, after a last check for OOM kills, so the
    OOM kill of the container's init is reported. OOM kills from before the
    call are not reported. Several kills between two checks, which are at most
    POLL_INTERVAL seconds apart, are reported as one event.
    NOTE: a container deleted right after its init was OOM-killed can end the
    watch before the kill was seen, because the counter goes with the cgroup.
    """
    from navio_runtime.container.ps import open_container_cgroup

    store = StateStore(root) if root else StateStore()
    state = store.load(container_id)
    _check_not_stopped(store, state)
    manager = open_container_cgroup(state)
    oom_count = _read_oom_count(manager, container_id)
    next_stats = time.monotonic()

    while True:
        # The status is read before the counter, so a kill that ended the container is counted before the exit.
        running = _is_running(store, container_id)
        count = _read_oom_count(manager, container_id)
        if count > oom_count:
            emit({"type": "oom", "id": container_id})
        oom_count = max(oom_count, count)
        if not running:
            return

        now = time.monotonic()
        if now >= next_stats:
            try:
                emit({"type": "stats", "id": container_id, "data": manager.stats()})
            except CgroupError as error:
                log.warning("container %s: cannot read the statistics: %s", container_id, error)
            next_stats = max(next_stats + interval, now)
        time.sleep(max(0.0, min(POLL_INTERVAL, next_stats - time.monotonic())))


def _check_not_stopped(store, state):
    status = store.status(state)
    if status == STOPPED:
        raise StateError(f"cannot read the events of container {state.id}: its status is 'stopped'")


def _is_running(store, container_id):
    """Return False once the container has stopped or its state is gone."""
    try:
        state = store.load(container_id)
    except ContainerNotFound:
        return False
    return store.status(state) != STOPPED


def _read_oom_count(manager, container_id):
    try:
        return manager.oom_events()
    except CgroupError as error:
        log.warning("container %s: cannot read the OOM kill counter: %s", container_id, error)
        return 0
