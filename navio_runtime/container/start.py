"""`start`: release a created container's init so that it executes the user process."""

import json
import os
import socket

from navio_runtime.errors import InitError, StateError
from navio_runtime.state_store import CREATED, EXEC_SOCKET, RUNNING, StateStore
from navio_runtime.log import get_logger

log = get_logger(__name__)


def start(container_id, root=None):
    store = StateStore(root) if root else StateStore()
    with store.lock(container_id):
        state = store.load(container_id)
        status = store.status(state)
        if status != CREATED:
            raise StateError(f"cannot start container {container_id}: its status is {status!r}, not 'created'")

        oci_state = store.oci_state(state, status=RUNNING)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dir_fd = store.open_dir(container_id)
        try:
            connection.connect(f"/proc/self/fd/{dir_fd}/{EXEC_SOCKET}")
            connection.sendall(json.dumps({"type": "start", "state": oci_state}).encode())
            connection.shutdown(socket.SHUT_WR)

            # The init closes the connection when execve succeeds (the socket is
            # close-on-exec); on failure it sends an error first.
            reply = _read_all(connection)
        except OSError as error:
            raise InitError(f"cannot start container {container_id}: the init is not reachable: {error.strerror}") from None
        finally:
            connection.close()
            os.close(dir_fd)

        state.started = True
        store.save(state)
        try:
            os.unlink(store.exec_socket_path(container_id))
        except FileNotFoundError:
            pass

        if reply:
            message = json.loads(reply).get("message", reply.decode(errors="replace"))
            raise InitError(f"cannot start container {container_id}: {message}")

    poststart = state.config.get("hooks", {}).get("poststart")
    if poststart:
        from navio_runtime.hooks import run_hooks_logging_errors
        from navio_runtime.spec.model import spec_from_dict

        spec = spec_from_dict(state.config)
        run_hooks_logging_errors(spec.hooks.get("poststart", ()), oci_state, "poststart")
    log.info("started container %s", container_id)


def _read_all(connection):
    chunks = []
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
