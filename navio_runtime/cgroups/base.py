"""The `Manager` interface and the logic that the v1 and v2 drivers share.

A manager owns one container cgroup, identified by its path inside the
hierarchy ("/navio/abc"). On cgroup v2 that is one directory. On cgroup v1
it is one directory per mounted hierarchy, plus the directory in the
cgroup2 tree on hybrid hosts.

The manager records which directories it created (`created`, saved by
`to_dict`), and `destroy` removes only those, so a cgroup that existed
before `create` is left in place.
"""

import abc
import errno as _errno
import os
import signal
import time

from navio_runtime.cgroups import files
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Seconds that destroy() keeps retrying rmdir(2) on EBUSY, which the kernel
# returns while exited processes of the cgroup are still being released.
REMOVE_TIMEOUT = 5.0


class Manager(abc.ABC):
    """One container's cgroup, on cgroup v1 or v2."""

    version = 0

    def __init__(self, container_id, cgroup_path, root, created=(), systemd=False):
        self.container_id = container_id
        self.cgroup_path = cgroup_path
        self.root = root
        self.systemd = systemd
        self.created = list(created)

    # -- driver specific ---------------------------------------------------

    @abc.abstractmethod
    def directories(self):
        """Return the container's cgroup directory in every hierarchy the manager uses."""

    @abc.abstractmethod
    def _hierarchies(self):
        """Return (mount point, container directory) pairs, one per hierarchy."""

    def _prepare_created(self, directory, is_leaf):
        """Configure a directory right after create() made it (enable controllers, copy cpusets)."""

    @abc.abstractmethod
    def apply(self, resources):
        """Write linux.resources (a dict as in config.json) to the cgroup files."""

    @abc.abstractmethod
    def update(self, resources):
        """Apply changed linux.resources to a running container, as `update` does."""

    @abc.abstractmethod
    def freeze(self):
        """Freeze every process of the cgroup and wait until the kernel reports it frozen."""

    @abc.abstractmethod
    def thaw(self):
        """Thaw the cgroup and wait until the kernel reports it thawed."""

    @abc.abstractmethod
    def is_frozen(self):
        """Return True when the kernel reports the cgroup as frozen."""

    @abc.abstractmethod
    def stats(self):
        """Return usage statistics shaped like the "data" of `runc events --stats`."""

    @abc.abstractmethod
    def oom_events(self):
        """Return how many processes of the cgroup the OOM killer has killed."""

    def to_dict(self):
        """Return a JSON-serialisable description for state.json (see manager_from_dict)."""
        return {
            "version": self.version,
            "container_id": self.container_id,
            "cgroups_path": self.cgroup_path,
            "root": self.root,
            "systemd": self.systemd,
            "created": list(self.created),
        }

    # -- shared behaviour ----------------------------------------------------

    def __repr__(self):
        return f"{type(self).__name__}({self.cgroup_path!r}, created={self.created!r})"

    def create(self):
        """Create every missing directory of the container cgroup.

        Raises CgroupError when the cgroup already exists with processes in
        it, because a new container needs an empty cgroup. When creation
        fails half way, the directories made so far are removed again.
        """
        for directory in self.directories():
            if os.path.isdir(directory):
                pids = self._pids_below(directory)
                if pids:
                    first_pids = ", ".join(str(pid) for pid in pids[:10])
                    raise CgroupError(
                        f"cgroup {directory} already exists and contains processes ({first_pids}); "
                        "a new container needs an empty cgroup, so choose another cgroupsPath"
                    )

        created_now = []
        try:
            for mount_point, leaf in self._hierarchies():
                self._make_directories(mount_point, leaf, created_now)
        except BaseException:
            for directory in reversed(created_now):
                try:
                    os.rmdir(directory)
                except OSError as err:
                    log.warning("could not remove %s after a failed create: %s", directory, err)
            raise
        self.created.extend(directory for directory in created_now if directory not in self.created)
        log.debug("created cgroup directories %s", created_now)

    def _make_directories(self, mount_point, leaf, created_now):
        if not os.path.isdir(mount_point):
            raise CgroupError(f"cannot create cgroup {leaf}: the hierarchy {mount_point} is not mounted")
        relative = os.path.relpath(leaf, mount_point)
        current = mount_point
        for component in relative.split("/"):
            current = os.path.join(current, component)
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                continue
            except OSError as err:
                name = _errno.errorcode.get(err.errno, str(err.errno))
                raise CgroupError(f"mkdir {current}: {os.strerror(err.errno)} ({name})") from None
            created_now.append(current)
            self._prepare_created(current, current == leaf)

    def add_process(self, pid):
        """Move process `pid` into the container cgroup in every hierarchy."""
        for directory in self.directories():
            files.write(os.path.join(directory, "cgroup.procs"), str(pid))

    @staticmethod
    def _pids_below(directory):
        pids = set()
        for cgroup in files.walk_cgroups(directory):
            pids.update(files.read_pids(os.path.join(cgroup, "cgroup.procs")))
        return sorted(pids)

    def pids(self):
        """Return the sorted PIDs of every process in the cgroup, its child cgroups included."""
        pids = set()
        for directory in self.directories():
            pids.update(self._pids_below(directory))
        return sorted(pids)

    def _signal_each(self, signum):
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def kill_all(self, signum):
        """Send `signum` to every process of the cgroup.

        The cgroup is frozen while the PIDs are read and signalled, so no
        process can fork a child that escapes the signal, and thawed again
        so that frozen processes can act on it. A cgroup that was frozen
        before stays frozen unless the signal is SIGKILL.
        """
        was_frozen = False
        frozen_here = False
        try:
            was_frozen = self.is_frozen()
            if not was_frozen:
                self.freeze()
                frozen_here = True
        except CgroupError as err:
            log.warning("signalling %s without freezing it first: %s", self.cgroup_path, err)
        try:
            self._signal_each(signum)
        finally:
            if frozen_here or (was_frozen and signum == signal.SIGKILL):
                self.thaw()

    def destroy(self):
        """Remove the directories that create() made, deepest first.

        The container directory is removed with any child cgroups the
        container made inside it, retrying on EBUSY for REMOVE_TIMEOUT
        seconds. A parent directory that still has other child cgroups is
        left in place. Directories that create() did not make are never removed.
        """
        leaves = set(self.directories())
        for directory in sorted(self.created, key=lambda path: path.count("/"), reverse=True):
            if directory in leaves:
                for child in reversed(list(files.walk_cgroups(directory))[1:]):
                    self._remove_directory(child)
                self._remove_directory(directory)
            elif files.list_child_cgroups(directory):
                log.debug("keeping %s: other cgroups still use it", directory)
            else:
                self._remove_directory(directory)
        self.created = [directory for directory in self.created if os.path.isdir(directory)]

    @staticmethod
    def _remove_directory(directory):
        deadline = time.monotonic() + REMOVE_TIMEOUT
        delay = 0.005
        while True:
            try:
                os.rmdir(directory)
                return
            except FileNotFoundError:
                return
            except OSError as err:
                if err.errno != _errno.EBUSY or time.monotonic() > deadline:
                    name = _errno.errorcode.get(err.errno, str(err.errno))
                    pids = files.read_pids(os.path.join(directory, "cgroup.procs"))
                    raise CgroupError(
                        f"rmdir {directory}: {os.strerror(err.errno)} ({name}); processes left: {pids}"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
