"""Messages between `create`, the intermediate process and the container init.

The channel is a SOCK_SEQPACKET socket pair, so each send is one message.
Messages are small JSON objects with a "type" field: "go", "map-ids", "ack",
"pid", "hooks", "ready" and "error" (which carries "message").
"""

import errno
import json
import os
import socket

from navio_runtime.errors import InitError

MAX_MESSAGE = 1 << 20


def socket_pair():
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock, message_type, **fields):
    fields["type"] = message_type
    sock.sendall(json.dumps(fields).encode())


def receive(sock, expected=None, timeout=None, eof_ok=False):
    """Receive one message; raise InitError on an "error" message or an unexpected type.

    End of file raises InitError too, unless `eof_ok` is set: then it returns
    None, which is how a close-on-exec socket reports a successful execve.
    """
    sock.settimeout(timeout)
    try:
        data = sock.recv(MAX_MESSAGE)
    except socket.timeout:
        raise InitError(f"timed out after {timeout} s waiting for the container init") from None
    if not data:
        if eof_ok:
            return None
        raise InitError("the container init exited before it finished setting up")
    message = json.loads(data)
    if message.get("type") == "error":
        raise InitError(message.get("message", "unknown error in the container init"))
    if expected and message.get("type") not in expected:
        raise InitError(f"unexpected message {message.get('type')!r} from the container init, expected {expected}")
    return message


def fork_after_pid_report(report_pid):
    """Fork a child that goes on only after the parent has called `report_pid(pid)`.

    Returns (pid, host_pid): (0, the child's host PID) in the child and
    (child PID, child PID) in the parent. A parent that forks into a new pid
    namespace knows the child's host PID, the child does not. Holding the child
    also means the runtime reads the "pid" message before any message of the
    child. The child exits with status 1 if the parent fails before releasing it.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError as error:
        os.close(read_fd)
        os.close(write_fd)
        hint = "; the container's pids limit may be reached" if error.errno == errno.EAGAIN else ""
        raise InitError(f"fork failed: {error.strerror}{hint}") from None
    if pid == 0:
        os.close(write_fd)
        data = os.read(read_fd, 32)
        os.close(read_fd)
        if not data:
            os._exit(1)
        return 0, int(data)

    os.close(read_fd)
    try:
        report_pid(pid)
        os.write(write_fd, str(pid).encode())
    finally:
        os.close(write_fd)
    return pid, pid
