"""`state`: the OCI state document of one container."""

from navio_runtime.state_store import StateStore


def state(container_id, root=None):
    """Return the OCI state of `container_id` as a dict."""
    store = StateStore(root) if root else StateStore()
    return store.oci_state(store.load(container_id))


def state_record(container_id, root=None):
    """Return the runtime's ContainerState of `container_id` (config, cgroup, pid)."""
    store = StateStore(root) if root else StateStore()
    return store.load(container_id)


def list_containers(root=None):
    """Return the OCI state plus creation time of every container under `root`."""
    from navio_runtime.errors import ContainerNotFound, StateError
    from navio_runtime.log import get_logger

    store = StateStore(root) if root else StateStore()
    result = []
    for container_id in store.list_ids():
        try:
            result.append(store.oci_state(store.load(container_id)))
        except ContainerNotFound:
            continue
        except StateError as error:
            # One unreadable state file must not hide every other container.
            get_logger(__name__).warning("skipping container %s: %s", container_id, error)
    return result
