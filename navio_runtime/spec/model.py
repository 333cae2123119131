"""Typed views of a validated config.json.

The dataclasses cover what the lifecycle and the init process orchestrate.
They are plain, not frozen, dataclasses: every `create` imports this module,
and defining frozen ones takes about twice as long. Large sub-objects that one
module consumes whole (linux.resources for the cgroup drivers, linux.seccomp,
process.capabilities) stay plain dicts, so the schema remains their single
definition. `Spec.raw` keeps the original document.
"""

from dataclasses import dataclass, field


@dataclass
class Root:
    path: str
    readonly: bool = False


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple = ()


@dataclass
class Process:
    args: tuple
    cwd: str
    env: tuple = ()
    user: User = field(default_factory=User)
    terminal: bool = False
    console_size: dict | None = None
    capabilities: dict | None = None
    rlimits: tuple = ()
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    selinux_label: str | None = None
    oom_score_adj: int | None = None
    io_priority: dict | None = None
    scheduler: dict | None = None
    exec_cpu_affinity: dict | None = None


@dataclass
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple = ()


@dataclass
class Namespace:
    type: str
    path: str | None = None


@dataclass
class IDMapping:
    container_id: int
    host_id: int
    size: int


@dataclass
class Device:
    path: str
    type: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass
class Hook:
    path: str
    args: tuple = ()
    env: tuple = ()
    timeout: int | None = None


@dataclass
class Linux:
    namespaces: tuple = ()
    uid_mappings: tuple = ()
    gid_mappings: tuple = ()
    time_offsets: dict | None = None
    devices: tuple = ()
    cgroups_path: str | None = None
    resources: dict | None = None
    sysctl: dict | None = None
    seccomp: dict | None = None
    rootfs_propagation: str | None = None
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    mount_label: str | None = None
    personality: dict | None = None
    memory_policy: dict | None = None

    def namespace(self, ns_type):
        """Return the Namespace entry of `ns_type`, or None when the host's is inherited."""
        for namespace in self.namespaces:
            if namespace.type == ns_type:
                return namespace
        return None


@dataclass
class Spec:
    oci_version: str
    root: Root
    process: Process | None
    linux: Linux
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple = ()
    hooks: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)


def _process_from_dict(data):
    if data is None:
        return None

    user_data = data.get("user") or {}
    user = User(
        uid=user_data.get("uid", 0),
        gid=user_data.get("gid", 0),
        umask=user_data.get("umask"),
        additional_gids=tuple(user_data.get("additionalGids") or ()),
    )
    return Process(
        args=tuple(data.get("args") or ()),
        cwd=data.get("cwd", "/"),
        env=tuple(data.get("env") or ()),
        user=user,
        terminal=bool(data.get("terminal", False)),
        console_size=data.get("consoleSize"),
        capabilities=data.get("capabilities"),
        rlimits=tuple(data.get("rlimits") or ()),
        no_new_privileges=bool(data.get("noNewPrivileges", False)),
        apparmor_profile=data.get("apparmorProfile"),
        selinux_label=data.get("selinuxLabel"),
        oom_score_adj=data.get("oomScoreAdj"),
        io_priority=data.get("ioPriority"),
        scheduler=data.get("scheduler"),
        exec_cpu_affinity=data.get("execCPUAffinity"),
    )


def _mappings(items):
    return tuple(IDMapping(m["containerID"], m["hostID"], m["size"]) for m in items or ())


def _linux_from_dict(data):
    data = data or {}
    devices = tuple(
        Device(
            path=d["path"],
            type=d["type"],
            major=d.get("major", 0),
            minor=d.get("minor", 0),
            file_mode=d.get("fileMode"),
            uid=d.get("uid"),
            gid=d.get("gid"),
        )
        for d in data.get("devices") or ()
    )
    return Linux(
        namespaces=tuple(Namespace(n["type"], n.get("path") or None) for n in data.get("namespaces") or ()),
        uid_mappings=_mappings(data.get("uidMappings")),
        gid_mappings=_mappings(data.get("gidMappings")),
        time_offsets=data.get("timeOffsets"),
        devices=devices,
        cgroups_path=data.get("cgroupsPath") or None,
        resources=data.get("resources"),
        sysctl=data.get("sysctl"),
        seccomp=data.get("seccomp"),
        rootfs_propagation=data.get("rootfsPropagation") or None,
        masked_paths=tuple(data.get("maskedPaths") or ()),
        readonly_paths=tuple(data.get("readonlyPaths") or ()),
        mount_label=data.get("mountLabel"),
        personality=data.get("personality"),
        memory_policy=data.get("memoryPolicy"),
    )


def _hooks_from_dict(data):
    hooks = {}
    for stage, entries in (data or {}).items():
        hooks[stage] = tuple(
            Hook(h["path"], tuple(h.get("args") or ()), tuple(h.get("env") or ()), h.get("timeout"))
            for h in entries or ()
        )
    return hooks


def spec_from_dict(data):
    """Build a Spec from a config.json document that has passed validation."""
    root = data.get("root") or {}
    mounts = tuple(
        Mount(m["destination"], m.get("type"), m.get("source"), tuple(m.get("options") or ()))
        for m in data.get("mounts") or ()
    )
    return Spec(
        oci_version=data["ociVersion"],
        root=Root(root.get("path", "rootfs"), bool(root.get("readonly", False))),
        process=_process_from_dict(data.get("process")),
        linux=_linux_from_dict(data.get("linux")),
        hostname=data.get("hostname"),
        domainname=data.get("domainname"),
        mounts=mounts,
        hooks=_hooks_from_dict(data.get("hooks")),
        annotations=dict(data.get("annotations") or {}),
        raw=data,
    )
