"""`kill`: send a signal to a container's init (or, with all=True, to every process in its cgroup)."""

import os
import signal

from navio_runtime.errors import StateError
from navio_runtime.state_store import CREATED, PAUSED, RUNNING, STOPPED, StateStore, process_start_time
from navio_runtime.log import get_logger

log = get_logger(__name__)


def parse_signal(value):
    """Return the signal number for "TERM", "SIGTERM", "15" or "sigterm"; raise StateError if unknown."""
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise StateError(f"invalid signal {value!r}: numbers go from 1 to {signal.NSIG - 1}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal.Signals, name))
    except AttributeError:
        raise StateError(f"unknown signal {value!r}; use a name such as TERM or KILL, or a number") from None


def kill(container_id, signum=signal.SIGTERM, all_processes=False, root=None):
    store = StateStore(root) if root else StateStore()
    with store.lock(container_id):
        state = store.load(container_id)
        status = store.status(state)
        if status not in (CREATED, RUNNING, PAUSED) and not (all_processes and status == STOPPED):
            raise StateError(f"cannot kill container {container_id}: its status is {status!r}")

        if all_processes:
            from navio_runtime.cgroups import manager_from_dict

            manager_from_dict(state.cgroup).kill_all(signum)
            return

        send_signal(state.pid, state.pid_start_time, signum)
        if status == PAUSED and signum == signal.SIGKILL:
            thaw_after_kill(state)
    log.info("sent signal %d to container %s", signum, container_id)


def thaw_after_kill(state):
    """Thaw a frozen container after SIGKILL, so that its processes can die (runc does the same)."""
    if not state.cgroup:
        return
    from navio_runtime.cgroups import manager_from_dict

    manager_from_dict(state.cgroup).thaw()


def send_signal(pid, start_time, signum):
    """Signal `pid` through a pidfd, after checking it is still the recorded process."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise StateError(f"process {pid} has exited") from None
    try:
        # The start time catches a PID reused before pidfd_open. After it, the
        # signal goes through the pidfd and can only reach that process.
        if process_start_time(pid) != start_time:
            raise StateError(f"process {pid} has exited")
        signal.pidfd_send_signal(pidfd, signum)
    finally:
        os.close(pidfd)
