"""`pause` and `resume`: freeze and thaw every process of a container through its cgroup freezer."""

from navio_runtime.errors import StateError
from navio_runtime.state_store import PAUSED, RUNNING, StateStore
from navio_runtime.log import get_logger

log = get_logger(__name__)


def pause(container_id, root=None):
    """Freeze every process of a running container; raise StateError for any other status."""
    _set_frozen(container_id, root, frozen=True)
    log.info("paused container %s", container_id)


def resume(container_id, root=None):
    """Thaw every process of a paused container; raise StateError for any other status."""
    _set_frozen(container_id, root, frozen=False)
    log.info("resumed container %s", container_id)


def _set_frozen(container_id, root, frozen):
    from navio_runtime.container.ps import open_container_cgroup

    store = StateStore(root) if root else StateStore()
    expected = RUNNING if frozen else PAUSED
    command = "pause" if frozen else "resume"
    with store.lock(container_id):
        state = store.load(container_id)
        status = store.status(state)
        if status != expected:
            raise StateError(f"cannot {command} container {container_id}: its status is {status!r}, not {expected!r}")

        manager = open_container_cgroup(state)
        if frozen:
            manager.freeze()
        else:
            manager.thaw()
