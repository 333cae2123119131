"""`delete`: remove a stopped container (or, with force, kill and remove any container)."""

import os
import select
import signal

from navio_runtime.errors import ContainerNotFound, NavioError, StateError
from navio_runtime.log import get_logger
from navio_runtime.state_store import STOPPED, StateStore, process_start_time

log = get_logger(__name__)

KILL_TIMEOUT = 10.0


def delete(container_id, force=False, root=None):
    store = StateStore(root) if root else StateStore()
    try:
        with store.lock(container_id):
            state = _remove_locked(store, container_id, force)
    except ContainerNotFound:
        # podman calls delete --force after every failed create, for ids that may not exist.
        if force:
            return
        raise
    if state is None:
        return

    poststop = (state.config.get("hooks") or {}).get("poststop")
    if poststop:
        from navio_runtime.hooks import run_hooks_logging_errors
        from navio_runtime.spec.model import spec_from_dict

        run_hooks_logging_errors(spec_from_dict(state.config).hooks["poststop"],
                                 store.oci_state(state, status=STOPPED), "poststop")
    log.info("deleted container %s", container_id)


def _remove_locked(store, container_id, force):
    """Remove the container while its lock is held; return its state, or None if it was unreadable."""
    try:
        state = store.load(container_id)
    except StateError as error:
        if not force or isinstance(error, ContainerNotFound):
            raise
        # A state file that cannot be read names no process or cgroup to clean up.
        log.warning("removing container %s with an unreadable state: %s", container_id, error)
        store.remove(container_id)
        return None

    status = store.status(state)
    if status != STOPPED:
        if not force:
            raise StateError(
                f"cannot delete container {container_id}: its status is {status!r}; "
                "stop it first or use --force"
            )
        _kill_and_wait(state)

    if state.cgroup:
        from navio_runtime.cgroups import manager_from_dict

        manager = manager_from_dict(state.cgroup)
        # Without its own pid namespace a stopped container can leave
        # processes behind; like runc, delete kills them rather than fail.
        manager.kill_all(signal.SIGKILL)
        manager.destroy()

    store.remove(container_id)
    return state


def _kill_and_wait(state):
    """SIGKILL the init and wait until it has exited."""
    if state.pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(state.pid)
    except ProcessLookupError:
        return
    try:
        if process_start_time(state.pid) != state.pid_start_time:
            return
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        # A frozen process cannot die until its cgroup is thawed.
        from navio_runtime.container.kill import thaw_after_kill

        thaw_after_kill(state)
        # A pidfd becomes readable when the process exits.
        ready, _, _ = select.select([pidfd], [], [], KILL_TIMEOUT)
        if not ready:
            raise NavioError(f"container init {state.pid} did not exit {KILL_TIMEOUT} s after SIGKILL")
    finally:
        os.close(pidfd)
