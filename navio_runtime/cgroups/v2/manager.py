"""`V2Manager`: a container cgroup on the cgroup v2 unified hierarchy."""

import os
import signal

from navio_runtime.cgroups import files
from navio_runtime.cgroups.base import Manager
from navio_runtime.cgroups.v2 import cpu, cpuset, devices, freezer, hugetlb, io, memory, pids, rdma, unified
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Controller -> function that returns whether linux.resources needs that controller.
_CONTROLLER_REQUESTS = (
    ("pids", pids.requested),
    ("memory", memory.requested),
    ("io", io.requested),
    ("cpu", cpu.requested),
    ("cpuset", cpuset.requested),
    ("hugetlb", hugetlb.requested),
    ("rdma", rdma.requested),
)

# Order of apply(), the same as runc's fs2 driver.
_APPLY_ORDER = (pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, unified)


class V2Manager(Manager):
    """A container cgroup at <root><cgroups_path> on a cgroup v2 mount."""

    version = 2

    def __init__(self, container_id, cgroup_path, root="/sys/fs/cgroup", created=(), systemd=False):
        super().__init__(container_id, cgroup_path, root, created, systemd)
        self.path = os.path.join(root, cgroup_path.lstrip("/"))

    @classmethod
    def from_dict(cls, data):
        return cls(data["container_id"], data["cgroups_path"], data["root"], data.get("created", ()), data.get("systemd", False))

    def to_dict(self):
        data = super().to_dict()
        data["path"] = self.path
        return data

    def directories(self):
        return [self.path]

    def _hierarchies(self):
        return [(self.root, self.path)]

    def _prepare_created(self, directory, is_leaf):
        # A leaf keeps an empty subtree_control: cgroup v2 forbids processes
        # in a cgroup that distributes domain controllers to children.
        if is_leaf:
            return
        available = files.read_optional(os.path.join(directory, "cgroup.controllers"), "").split()
        if not available:
            return
        control_file = os.path.join(directory, "cgroup.subtree_control")
        try:
            files.write(control_file, " ".join(f"+{name}" for name in available))
        except files.CgroupFileError:
            # Enable what can be enabled, because apply() reports a needed controller that is missing.
            for name in available:
                try:
                    files.write(control_file, f"+{name}")
                except files.CgroupFileError as err:
                    log.warning("could not enable the %s controller: %s", name, err)

    def enabled_controllers(self):
        """Return the controllers available in the container cgroup (its cgroup.controllers)."""
        return set(files.read(os.path.join(self.path, "cgroup.controllers")).split())

    def _check_controllers(self, resources):
        needed = {name for name, requested in _CONTROLLER_REQUESTS if requested(resources)}
        missing = needed - self.enabled_controllers()
        if missing:
            parent = os.path.dirname(self.path)
            raise CgroupError(
                f"cannot apply linux.resources to {self.path}: the {', '.join(sorted(missing))} "
                f"controller(s) are not enabled; enable them in {parent}/cgroup.subtree_control"
            )
        network = resources.get("network") or {}
        if network.get("classID") is not None or network.get("priorities"):
            # The runtime-spec requires an error when a v1 setting has no v2 equivalent.
            raise CgroupError(
                "cannot apply linux.resources.network: net_cls and net_prio exist only on cgroup v1; "
                "remove classID and priorities from config.json"
            )
        if resources.get("unified"):
            unified.validate(self.path, resources["unified"])

    def apply(self, resources):
        if not resources:
            return
        self._check_controllers(resources)
        for controller in _APPLY_ORDER:
            controller.apply(self.path, resources)

    def update(self, resources):
        if not resources:
            return
        memory.check_before_update(self.path, resources)
        self.apply(resources)

    def freeze(self):
        freezer.set_frozen(self.path, True)

    def thaw(self):
        freezer.set_frozen(self.path, False)

    def is_frozen(self):
        return freezer.is_frozen(self.path)

    def kill_all(self, signum):
        kill_file = os.path.join(self.path, "cgroup.kill")
        if signum == signal.SIGKILL and os.path.exists(kill_file):
            # cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks in flight included.
            files.write(kill_file, "1")
            return
        super().kill_all(signum)

    def stats(self):
        if not os.path.isdir(self.path):
            raise CgroupError(f"cannot read the statistics of {self.path}: the cgroup does not exist")
        return {
            "cpu": cpu.stats(self.path),
            "cpuset": cpuset.stats(self.path),
            "memory": memory.stats(self.path),
            "pids": pids.stats(self.path),
            "blkio": io.stats(self.path),
            "hugetlb": hugetlb.stats(self.path),
            "rdma": rdma.stats(self.path),
        }

    def oom_events(self):
        return memory.oom_kill_count(self.path)
