"""The cgroup library: one `Manager` interface over the cgroup v2 and v1 drivers.

Typical use by the lifecycle code:

    manager = open_manager(container_id, config["linux"].get("cgroupsPath"))
    manager.create()
    resources = dict(config["linux"].get("resources") or {})
    resources["devices"] = list(resources.get("devices") or []) + default_device_rules()
    manager.apply(resources)
    manager.add_process(init_pid)
    state["cgroup"] = manager.to_dict()
    ...
    manager = manager_from_dict(state["cgroup"])
    manager.kill_all(signal.SIGKILL)
    manager.destroy()

Submodules are imported on first use, so importing this package costs
nothing until a manager is opened.
"""

__all__ = [
    "CgroupError",
    "Manager",
    "V1Manager",
    "V2Manager",
    "default_device_rules",
    "detect_mode",
    "manager_from_dict",
    "open_manager",
]

from navio_runtime.errors import CgroupError


def detect_mode(root="/sys/fs/cgroup"):
    """Return "unified", "hybrid" or "legacy" for the cgroup mounts at `root`, from /proc/self/mountinfo."""
    from navio_runtime.cgroups import mode

    return mode.detect_mode(root)


def open_manager(container_id, cgroups_path, systemd=False, root="/sys/fs/cgroup"):
    """Return the Manager for a container's cgroup. Nothing is created until `create()`.

    `cgroups_path` is linux.cgroupsPath: absolute paths are taken from the
    cgroup root, relative ones from /navio, and None means /navio/<id>.
    With `systemd`, it has the form "slice:prefix:name". NOTE: there is no
    systemd D-Bus client, so the scope directory is created directly below
    the slice, as runc's cgroupfs driver would, and systemd does not track it.
    """
    from navio_runtime.cgroups import mode, paths

    cgroup_path = paths.resolve_cgroups_path(container_id, cgroups_path, systemd)
    layout = mode.detect_mode(root)
    if layout == mode.UNIFIED:
        from navio_runtime.cgroups.v2.manager import V2Manager

        return V2Manager(container_id, cgroup_path, root, systemd=systemd)

    from navio_runtime.cgroups.v1.manager import V1Manager

    mounts = mode.v1_controller_mounts(root)
    unified_root = mode.unified_mount(root) if layout == mode.HYBRID else None
    return V1Manager(container_id, cgroup_path, root, mounts, unified_root, systemd=systemd)


def manager_from_dict(data):
    """Return the Manager that `Manager.to_dict()` described, for example from state.json."""
    version = data.get("version") if isinstance(data, dict) else None
    if version == 2:
        from navio_runtime.cgroups.v2.manager import V2Manager as manager_class
    elif version == 1:
        from navio_runtime.cgroups.v1.manager import V1Manager as manager_class
    else:
        raise CgroupError(f"invalid saved cgroup manager {data!r}: expected \"version\" 1 or 2")
    try:
        return manager_class.from_dict(data)
    except KeyError as err:
        raise CgroupError(f"invalid saved cgroup manager {data!r}: missing key {err}") from None


def default_device_rules():
    """Return the devices every container may use, as linux.resources.devices entries."""
    from navio_runtime.cgroups.device_rules import default_device_rules as rules

    return rules()


def __getattr__(name):
    if name == "Manager":
        from navio_runtime.cgroups.base import Manager

        return Manager
    if name == "V2Manager":
        from navio_runtime.cgroups.v2.manager import V2Manager

        return V2Manager
    if name == "V1Manager":
        from navio_runtime.cgroups.v1.manager import V1Manager

        return V1Manager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
