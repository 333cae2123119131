"""`V1Manager`: a container cgroup on cgroup v1 hierarchies (legacy and hybrid hosts).

The container gets the same path in every mounted v1 hierarchy, named
ones such as name=systemd included. On a hybrid host it also joins that
path in the cgroup2 tree, as runc does, so tools that read the unified
hierarchy see the container.
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.base import Manager
from navio_runtime.cgroups.v1 import blkio, cpu, cpuset, devices, freezer, hugetlb, memory, net_cls, net_prio, pids, rdma
from navio_runtime.cgroups.v2 import hugetlb as v2_hugetlb
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

# (controller, module) in runc's order of the fs driver.
_APPLY_ORDER = (
    ("cpuset", cpuset),
    ("devices", devices),
    ("memory", memory),
    ("cpu", cpu),
    ("pids", pids),
    ("blkio", blkio),
    ("hugetlb", hugetlb),
    ("net_cls", net_cls),
    ("net_prio", net_prio),
    ("rdma", rdma),
)


class V1Manager(Manager):
    """A container cgroup at <mount point><cgroups_path> in each v1 hierarchy."""

    version = 1

    def __init__(self, container_id, cgroup_path, root, mounts, unified_root=None, created=(), systemd=False):
        """`mounts` maps each v1 controller to its mount point. `unified_root` is the cgroup2 mount on hybrid hosts."""
        super().__init__(container_id, cgroup_path, root, created, systemd)
        self.mounts = dict(mounts)
        self.unified_root = unified_root
        relative = cgroup_path.lstrip("/")
        self.paths = {controller: os.path.join(mount, relative) for controller, mount in self.mounts.items()}
        self.unified_path = os.path.join(unified_root, relative) if unified_root else None

    @classmethod
    def from_dict(cls, data):
        return cls(
            data["container_id"],
            data["cgroups_path"],
            data["root"],
            data["mounts"],
            data.get("unified_root"),
            data.get("created", ()),
            data.get("systemd", False),
        )

    def to_dict(self):
        data = super().to_dict()
        data["mounts"] = dict(self.mounts)
        data["unified_root"] = self.unified_root
        return data

    def _hierarchies(self):
        pairs = []
        for controller in sorted(self.mounts):
            pair = (self.mounts[controller], self.paths[controller])
            if pair not in pairs:
                pairs.append(pair)
        if self.unified_path:
            pairs.append((self.unified_root, self.unified_path))
        return pairs

    def directories(self):
        return [leaf for _, leaf in self._hierarchies()]

    def _prepare_created(self, directory, is_leaf):
        cpuset_mount = self.mounts.get("cpuset")
        if cpuset_mount and directory.startswith(cpuset_mount + "/"):
            cpuset.copy_from_parent(directory)

    def _path_of(self, controller, purpose):
        path = self.paths.get(controller)
        if path is None:
            raise CgroupError(
                f"cannot apply {purpose}: the cgroup v1 {controller} controller is not mounted below {self.root}"
            )
        return path

    def _unified_hugetlb_path(self):
        """Return the cgroup2 directory when hugetlb is only available there (hybrid hosts), else None."""
        if "hugetlb" in self.paths or not self.unified_path:
            return None
        enabled = files.read_optional(os.path.join(self.unified_path, "cgroup.controllers"), "").split()
        return self.unified_path if "hugetlb" in enabled else None

    def apply(self, resources):
        if not resources:
            return
        if resources.get("unified"):
            raise CgroupError(
                "cannot apply linux.resources.unified: it needs the cgroup v2 unified hierarchy, "
                f"and {self.root} uses cgroup v1"
            )
        for controller, module in _APPLY_ORDER:
            if not module.requested(resources):
                continue
            if controller == "hugetlb":
                unified_path = self._unified_hugetlb_path()
                if unified_path:
                    v2_hugetlb.apply(unified_path, resources)
                    continue
            module.apply(self._path_of(controller, f"linux.resources for {controller}"), resources)

    def update(self, resources):
        if not resources:
            return
        if memory.requested(resources):
            memory.check_before_update(self._path_of("memory", "linux.resources.memory"), resources)
        self.apply(resources)

    def freeze(self):
        freezer.set_frozen(self._path_of("freezer", "a freeze"), True)

    def thaw(self):
        freezer.set_frozen(self._path_of("freezer", "a thaw"), False)

    def is_frozen(self):
        return freezer.is_frozen(self._path_of("freezer", "a freezer state check"))

    def stats(self):
        if not any(os.path.isdir(directory) for directory in self.directories()):
            raise CgroupError(f"cannot read the statistics of {self.cgroup_path}: the cgroup does not exist")
        result = {
            "cpu": cpu.stats(self.paths.get("cpu"), self.paths.get("cpuacct")),
            "cpuset": {},
            "memory": {},
            "pids": {"current": 0, "limit": 0},
            "blkio": {"ioServiceBytesRecursive": [], "ioServicedRecursive": []},
            "hugetlb": {},
        }
        for key, controller, module in (
            ("cpuset", "cpuset", cpuset),
            ("memory", "memory", memory),
            ("pids", "pids", pids),
            ("blkio", "blkio", blkio),
            ("hugetlb", "hugetlb", hugetlb),
        ):
            path = self.paths.get(controller)
            if path:
                result[key] = module.stats(path)
        unified_hugetlb = self._unified_hugetlb_path()
        if unified_hugetlb:
            result["hugetlb"] = v2_hugetlb.stats(unified_hugetlb)
        return result

    def oom_events(self):
        path = self.paths.get("memory")
        return memory.oom_kill_count(path) if path else 0
