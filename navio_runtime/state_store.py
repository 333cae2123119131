"""Container state on disk: `<root>/<id>/state.json`, written atomically under a lock.

The directory of a container is created with mkdir(2), so of two concurrent
`create` calls for one id exactly one succeeds. Every write goes to a
temporary file that is fsynced and renamed over state.json, so a reader sees
either the old or the new document, never a torn one. Operations that change a
container hold an exclusive flock(2) on its directory.

The lifecycle status is derived when the state is read, never trusted from
disk: a stored pid is only "alive" while /proc/<pid>/stat shows the same start
time as recorded at create (PIDs are reused), and a zombie counts as stopped.
"""

import errno
import fcntl
import json
import os

from navio_runtime import OCI_VERSION
from navio_runtime.errors import ContainerExists, ContainerNotFound, StateError

DEFAULT_ROOT = "/run/navio"
STATE_FILE = "state.json"
EXEC_SOCKET = "exec.sock"

# The same rule as runc: letters, digits, "_", "+", "-" and ".", but not "." or "..".
_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def _is_id(name):
    # A set test rather than a regular expression: `state` and `start` never import re.
    return bool(name) and all(character in _ID_CHARACTERS for character in name)

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"


# Maximum id length: a path component may have at most 255 bytes.
MAX_ID_LENGTH = 255


def validate_container_id(container_id):
    if container_id in (".", ".."):
        raise StateError(f"invalid container id {container_id!r}: '.' and '..' are not allowed")
    if not _is_id(container_id):
        raise StateError(
            f"invalid container id {container_id!r}: use letters, digits, '_', '+', '-' and '.' only"
        )
    if len(container_id) > MAX_ID_LENGTH:
        raise StateError(f"invalid container id: {len(container_id)} characters, the maximum is {MAX_ID_LENGTH}")


class ContainerState:
    """Runtime record of one container.

    A plain class with __slots__ rather than a dataclass: every command loads
    it, and importing dataclasses (with inspect) costs about 5 ms per command.
    """

    # Field name -> default; the defaults of mutable fields are copied per instance.
    FIELDS = {
        "id": "",
        "bundle": "",
        "rootfs": "",
        "pid": 0,
        "pid_start_time": 0,
        "created": "",
        "owner": "root",
        "annotations": {},
        # Process that runs `create`, so a crashed create is not reported as "creating" forever.
        "creator_pid": 0,
        "creator_start_time": 0,
        # Set once `start` has released the init; guards against a second start.
        "started": False,
        "cgroup": None,
        "config": {},
    }
    __slots__ = tuple(FIELDS)

    def __init__(self, **values):
        unknown = set(values) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"unknown ContainerState fields: {sorted(unknown)}")
        for name, default in self.FIELDS.items():
            value = values.get(name, default)
            if value is default and isinstance(default, dict):
                value = {}
            setattr(self, name, value)

    def __repr__(self):
        return f"ContainerState(id={self.id!r}, pid={self.pid}, bundle={self.bundle!r})"

    def to_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in cls.FIELDS if name in data})


def process_start_time(pid):
    """Return field 22 of /proc/<pid>/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            data = stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None

    # The command name in field 2 may contain spaces and parentheses; fields after it are fixed.
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_same_process_alive(pid, start_time):
    if pid <= 0:
        return False
    return process_start_time(pid) == start_time


class StateStore:
    """The directory of all containers, `--root` (default /run/navio)."""

    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def container_dir(self, container_id):
        validate_container_id(container_id)
        return os.path.join(self.root, container_id)

    def exec_socket_path(self, container_id):
        return os.path.join(self.container_dir(container_id), EXEC_SOCKET)

    def open_dir(self, container_id):
        """Return an O_PATH fd of the container's directory, for socket paths under it.

        A unix socket path may have at most 107 bytes, which `<root>/<64-char
        id>/exec.sock` can exceed, so sockets are addressed as
        /proc/self/fd/<fd>/exec.sock.
        """
        return os.open(self.container_dir(container_id), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def create_dir(self, container_id):
        """Create the container's directory; raise ContainerExists if another create owns the id."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        path = self.container_dir(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id, self.root) from None
        return path

    def exists(self, container_id):
        return os.path.isdir(self.container_dir(container_id))

    def lock(self, container_id, shared=False):
        """Return a context manager that holds flock(2) on the container's directory."""
        return _DirectoryLock(self, container_id, shared)

    def load(self, container_id):
        path = os.path.join(self.container_dir(container_id), STATE_FILE)
        try:
            with open(path, "rb") as state_file:
                data = json.loads(state_file.read())
        except FileNotFoundError:
            if self.exists(container_id):
                # The directory exists but state.json was never written: create crashed early.
                return ContainerState(id=container_id, bundle="")
            raise ContainerNotFound(container_id, self.root) from None
        except ValueError as error:
            raise StateError(f"state file {path} is corrupt: {error}") from None
        return ContainerState.from_dict(data)

    def save(self, state):
        directory = self.container_dir(state.id)
        final_path = os.path.join(directory, STATE_FILE)
        temp_path = os.path.join(directory, f".{STATE_FILE}.{os.getpid()}.tmp")
        data = json.dumps(state.to_dict(), separators=(",", ":")).encode()

        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp_path, final_path)

        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self, container_id):
        directory = self.container_dir(container_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass

    def list_ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if _is_id(name) and os.path.isdir(os.path.join(self.root, name)))

    def status(self, state):
        """Derive the lifecycle status of `state` from the live system."""
        if state.pid <= 0:
            if is_same_process_alive(state.creator_pid, state.creator_start_time):
                return CREATING
            return STOPPED

        if not is_same_process_alive(state.pid, state.pid_start_time):
            return STOPPED

        if os.path.exists(self.exec_socket_path(state.id)) and not state.started:
            return CREATED

        if state.cgroup and _cgroup_is_frozen(state.cgroup):
            return PAUSED
        return RUNNING

    def oci_state(self, state, status=None):
        """Return the OCI runtime-spec state document of `state`."""
        status = status or self.status(state)
        document = {
            "ociVersion": OCI_VERSION,
            "id": state.id,
            "status": status,
            "bundle": state.bundle,
            "rootfs": state.rootfs,
            "created": state.created,
            "owner": state.owner,
        }
        if status in (CREATED, RUNNING, PAUSED):
            document["pid"] = state.pid
        else:
            document["pid"] = 0
        if state.annotations:
            document["annotations"] = state.annotations
        return document


def _cgroup_is_frozen(cgroup_data):
    try:
        from navio_runtime.cgroups import manager_from_dict
    except ImportError:
        return False
    try:
        return manager_from_dict(cgroup_data).is_frozen()
    except (OSError, ValueError, KeyError):
        return False


class _DirectoryLock:
    def __init__(self, store, container_id, shared):
        self.store = store
        self.container_id = container_id
        self.shared = shared
        self.fd = -1

    def __enter__(self):
        path = self.store.container_dir(self.container_id)
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.container_id, self.store.root) from None
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)

        # A concurrent delete may have removed the directory while this call waited.
        if os.fstat(self.fd).st_nlink == 0:
            os.close(self.fd)
            raise ContainerNotFound(self.container_id, self.store.root)
        return self

    def __exit__(self, *exc_info):
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError as error:
                if error.errno != errno.EBADF:
                    raise
        return False
