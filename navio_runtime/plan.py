"""Turn a validated config into the ordered list of operations that builds the container.

The plan is data: each Operation names an action and its arguments, in the
order the runtime carries them out. `navio-runtime plan` prints it without
touching the host, the tests check it without root, and the init process
executes exactly this list (navio_runtime.init.executor), so what is printed
is what is done.

Stages, in order:
  runtime     done by the `create` process on the host (cgroup setup)
  namespaces  done by the intermediate process (setns, unshare, id maps)
  rootfs      done by the container init before pivot_root
  container   done by the init inside the new root
  process     done by the init last, ending with execve
"""

import os
from dataclasses import dataclass, field

from navio_runtime.errors import SpecError

# Mount options that set or clear MS_* flags: name -> (flag, set?).
# Values match <sys/mount.h>; kept here so the plan does not import ctypes.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MOUNT_FLAG_OPTIONS = {
    "ro": (MS_RDONLY, True),
    "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True),
    "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True),
    "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True),
    "exec": (MS_NOEXEC, False),
    "sync": (MS_SYNCHRONOUS, True),
    "async": (MS_SYNCHRONOUS, False),
    "dirsync": (MS_DIRSYNC, True),
    "remount": (MS_REMOUNT, True),
    "mand": (MS_MANDLOCK, True),
    "nomand": (MS_MANDLOCK, False),
    "noatime": (MS_NOATIME, True),
    "atime": (MS_NOATIME, False),
    "nodiratime": (MS_NODIRATIME, True),
    "diratime": (MS_NODIRATIME, False),
    "relatime": (MS_RELATIME, True),
    "norelatime": (MS_RELATIME, False),
    "strictatime": (MS_STRICTATIME, True),
    "nostrictatime": (MS_STRICTATIME, False),
    "lazytime": (MS_LAZYTIME, True),
    "nolazytime": (MS_LAZYTIME, False),
    "nosymfollow": (MS_NOSYMFOLLOW, True),
    "symfollow": (MS_NOSYMFOLLOW, False),
    "silent": (MS_SILENT, True),
    "loud": (MS_SILENT, False),
    "bind": (MS_BIND, True),
    "rbind": (MS_BIND | MS_REC, True),
}

PROPAGATION_OPTIONS = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Recursive mount attributes of runtime-spec 1.1+ (applied with mount_setattr(2)).
RECURSIVE_ATTRIBUTE_OPTIONS = {
    "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
    "rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
    "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
}

# Options that the runtime accepts and handles itself or ignores on purpose.
IGNORED_OPTIONS = {"tmpcopyup", "notmpcopyup", "copy-symlink", "idmap", "ridmap"}

# Devices every Linux container gets (runtime-spec config-linux.md "Default Devices").
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)

DEFAULT_DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

NAMESPACE_ORDER = ("user", "mount", "uts", "ipc", "network", "cgroup", "time", "pid")


@dataclass(frozen=True)
class Operation:
    stage: str
    action: str
    args: dict = field(default_factory=dict)

    def describe(self):
        parts = []
        for key, value in self.args.items():
            if value in (None, "", [], {}) or (key in _FLAG_ARGUMENTS and value == 0):
                continue
            if key in _FLAG_ARGUMENTS:
                value = mount_flag_names(value)
            elif key == "mode" and isinstance(value, int):
                value = f"{value:04o}"
            elif key == "propagation":
                value = [mount_flag_names(flags) for flags in value]
            parts.append(f"{key}={_show(value)}")
        return f"{self.action} {' '.join(parts)}".rstrip()

    def to_dict(self):
        return {"stage": self.stage, "action": self.action, "args": self.args}


# Plan arguments that hold MS_* mount flags, printed by name.
_FLAG_ARGUMENTS = ("flags", "remount_flags")

_FLAG_NAMES = (
    (MS_RDONLY, "MS_RDONLY"), (MS_NOSUID, "MS_NOSUID"), (MS_NODEV, "MS_NODEV"), (MS_NOEXEC, "MS_NOEXEC"),
    (MS_SYNCHRONOUS, "MS_SYNCHRONOUS"), (MS_REMOUNT, "MS_REMOUNT"), (MS_MANDLOCK, "MS_MANDLOCK"),
    (MS_DIRSYNC, "MS_DIRSYNC"), (MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"), (MS_NOATIME, "MS_NOATIME"),
    (MS_NODIRATIME, "MS_NODIRATIME"), (MS_BIND, "MS_BIND"), (MS_REC, "MS_REC"), (MS_SILENT, "MS_SILENT"),
    (MS_UNBINDABLE, "MS_UNBINDABLE"), (MS_PRIVATE, "MS_PRIVATE"), (MS_SLAVE, "MS_SLAVE"),
    (MS_SHARED, "MS_SHARED"), (MS_RELATIME, "MS_RELATIME"), (MS_STRICTATIME, "MS_STRICTATIME"),
    (MS_LAZYTIME, "MS_LAZYTIME"),
)


def mount_flag_names(flags):
    """Return MS_* flags as "MS_NOSUID|MS_NODEV", with any unknown bits in hex."""
    names = []
    for bit, name in _FLAG_NAMES:
        if flags & bit:
            names.append(name)
            flags &= ~bit
    if flags:
        names.append(hex(flags))
    return "|".join(names) or "0"


def _show(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}:{item}" for key, item in value.items())
    return str(value)


@dataclass
class ParsedMountOptions:
    flags: int = 0
    clear_flags: int = 0
    propagation: list = field(default_factory=list)
    recursive_attributes: list = field(default_factory=list)
    data: list = field(default_factory=list)


def parse_mount_options(options, where="mounts"):
    """Split mount options into MS_* flags, propagation changes, recursive attributes and data."""
    parsed = ParsedMountOptions()
    for option in options:
        if option in MOUNT_FLAG_OPTIONS:
            flag, is_set = MOUNT_FLAG_OPTIONS[option]
            if is_set:
                parsed.flags |= flag
                parsed.clear_flags &= ~flag
            else:
                parsed.flags &= ~flag
                parsed.clear_flags |= flag
        elif option in PROPAGATION_OPTIONS:
            parsed.propagation.append(PROPAGATION_OPTIONS[option])
        elif option in RECURSIVE_ATTRIBUTE_OPTIONS:
            parsed.recursive_attributes.append(option)
        elif option in IGNORED_OPTIONS:
            continue
        elif option == "":
            raise SpecError(f"{where}: empty mount option")
        else:
            parsed.data.append(option)
    return parsed


def resolve_rootfs(bundle, root_path):
    path = root_path if os.path.isabs(root_path) else os.path.join(bundle, root_path)
    return os.path.realpath(path)


class PlanBuilder:
    """Build the operations for one container from its Spec."""

    def __init__(self, spec, bundle, no_pivot=False, cgroup_mode=None, selinux_enabled=None):
        if selinux_enabled is None:
            selinux_enabled = os.path.exists("/sys/fs/selinux/enforce")
        self.selinux_enabled = selinux_enabled
        self.spec = spec
        self.bundle = os.path.abspath(bundle)
        self.no_pivot = no_pivot
        self.cgroup_mode = cgroup_mode
        self.operations = []

    def add(self, stage, action, **args):
        self.operations.append(Operation(stage, action, args))

    def build(self):
        self._runtime()
        self._namespaces()
        self._rootfs()
        self._container()
        self._process()
        return self.operations

    def _runtime(self):
        linux = self.spec.linux
        self.add("runtime", "cgroup-create", path=linux.cgroups_path or "(default)")
        # The default device rules are always applied, so this step is never empty.
        controllers = sorted(set(linux.resources or {}) | {"devices"})
        # NOTE: the plan names the linux.resources fields, not the cgroup files:
        # which file a field becomes depends on the host's cgroup version.
        self.add("runtime", "cgroup-apply", controllers=controllers, settings=_flatten(linux.resources or {}))
        self.add("runtime", "cgroup-join")

    def _namespaces(self):
        linux = self.spec.linux
        joined = [ns for ns in linux.namespaces if ns.path]
        created = {ns.type for ns in linux.namespaces if not ns.path}

        # The user namespace comes first, so that every other namespace is owned by it.
        for ns in sorted(joined, key=lambda n: NAMESPACE_ORDER.index(n.type)):
            self.add("namespaces", "setns", type=ns.type, path=ns.path)

        if "user" in created:
            self.add("namespaces", "unshare", types=["user"])
            self.add(
                "namespaces",
                "write-id-maps",
                uid_mappings=[f"{m.container_id}:{m.host_id}:{m.size}" for m in linux.uid_mappings],
                gid_mappings=[f"{m.container_id}:{m.host_id}:{m.size}" for m in linux.gid_mappings],
            )

        others = [t for t in NAMESPACE_ORDER if t in created and t != "user"]
        if others:
            self.add("namespaces", "unshare", types=others)
        if "time" in created and linux.time_offsets:
            self.add("namespaces", "set-time-offsets", offsets=linux.time_offsets)
        self.add("namespaces", "fork-init", pid_namespace="pid" in created)

    def _rootfs(self):
        spec = self.spec
        linux = spec.linux
        new_mount_ns = linux.namespace("mount") is not None
        rootfs = resolve_rootfs(self.bundle, spec.root.path)

        propagation = linux.rootfs_propagation or "rprivate"
        if propagation not in PROPAGATION_OPTIONS:
            raise SpecError(f"linux.rootfsPropagation: unknown value {propagation!r}")
        if new_mount_ns:
            self.add("rootfs", "set-propagation", path="/", option=propagation,
                     flags=PROPAGATION_OPTIONS[propagation] | MS_REC)
        self.add("rootfs", "bind-rootfs", rootfs=rootfs)

        dev_is_bind = False
        for index, mount in enumerate(spec.mounts):
            self._mount(index, mount)
            if mount.destination.rstrip("/") == "/dev" and (
                mount.type == "bind" or {"bind", "rbind"} & set(mount.options)
            ):
                dev_is_bind = True

        if not dev_is_bind:
            for path, kind, major, minor in DEFAULT_DEVICES:
                if not any(device.path == path for device in linux.devices):
                    self.add("rootfs", "mknod", path=path, type=kind, major=major, minor=minor,
                             mode=0o666, uid=0, gid=0, default=True)
            for target, path in DEFAULT_DEV_SYMLINKS:
                self.add("rootfs", "symlink", target=target, path=path)
            self.add("rootfs", "ptmx-symlink", path="/dev/ptmx")
            self.add("rootfs", "mkdir", path="/dev/shm", mode=0o1777)

        for device in linux.devices:
            mode = device.file_mode if device.file_mode is not None else 0o666
            self.add("rootfs", "mknod", path=device.path, type=device.type, major=device.major,
                     minor=device.minor, mode=mode, uid=device.uid or 0, gid=device.gid or 0)

        if spec.process is not None and spec.process.terminal:
            self.add("rootfs", "console", path="/dev/console")

        if spec.process is not None:
            self.add("rootfs", "mkdir-cwd", path=spec.process.cwd)

        hooks = spec.hooks
        if hooks.get("prestart") or hooks.get("createRuntime") or hooks.get("createContainer"):
            self.add("rootfs", "run-create-hooks",
                     prestart=len(hooks.get("prestart", ())),
                     create_runtime=len(hooks.get("createRuntime", ())),
                     create_container=len(hooks.get("createContainer", ())))

        if self.no_pivot or not new_mount_ns:
            self.add("rootfs", "chroot", rootfs=rootfs)
        else:
            self.add("rootfs", "pivot-root", rootfs=rootfs)

    def _mount(self, index, mount):
        where = f"mounts[{index}]"
        options = parse_mount_options(mount.options, where)
        fstype = mount.type or ""
        is_bind = fstype == "bind" or bool(options.flags & MS_BIND)
        if fstype == "bind":
            options.flags |= MS_BIND

        if fstype in ("cgroup", "cgroup2"):
            self.add("rootfs", "mount-cgroup", destination=mount.destination, type=fstype,
                     flags=options.flags, mode=self.cgroup_mode or "auto")
            return

        # linux.mountLabel labels the filesystems the runtime creates (tmpfs, devpts,
        # mqueue...), as runc does; bind mounts, proc and sysfs keep their own labels.
        # Without SELinux on the host the label is ignored, as podman expects.
        label = self.spec.linux.mount_label
        if label and not is_bind and fstype not in ("proc", "sysfs") and self.selinux_enabled:
            options.data.append(f'context="{label}"')

        self.add(
            "rootfs",
            "mount",
            index=index,
            source=mount.source or "",
            destination=mount.destination,
            type="" if is_bind else fstype,
            flags=options.flags,
            data=",".join(options.data),
            bind=is_bind,
            # A bind mount ignores most flags; they take effect by a remount afterwards.
            remount_flags=options.flags & ~(MS_BIND | MS_REC) if is_bind else 0,
            propagation=options.propagation,
            recursive_attributes=options.recursive_attributes,
        )

    def _container(self):
        spec = self.spec
        linux = spec.linux
        if spec.hostname is not None and linux.namespace("uts") is not None:
            self.add("container", "sethostname", name=spec.hostname)
        if spec.domainname is not None and linux.namespace("uts") is not None:
            self.add("container", "setdomainname", name=spec.domainname)

        # Sysctls go before readonlyPaths, which usually make /proc/sys read-only.
        for key, value in sorted((linux.sysctl or {}).items()):
            self.add("container", "sysctl", key=key, value=value)
        for path in linux.readonly_paths:
            self.add("container", "readonly-path", path=path)
        for path in linux.masked_paths:
            self.add("container", "mask-path", path=path)
        if spec.root.readonly:
            self.add("container", "remount-root-readonly")

    def _process(self):
        process = self.spec.process
        if process is None:
            return
        linux = self.spec.linux

        if process.rlimits:
            self.add("process", "set-rlimits", rlimits=[f"{r['type']}={r['soft']}:{r['hard']}" for r in process.rlimits])
        if process.oom_score_adj is not None:
            self.add("process", "set-oom-score-adj", value=process.oom_score_adj)
        if process.io_priority:
            self.add("process", "set-io-priority", value=process.io_priority)
        if process.scheduler:
            self.add("process", "set-scheduler", value=process.scheduler)
        if linux.personality:
            self.add("process", "set-personality", value=linux.personality)
        if linux.memory_policy:
            self.add("process", "set-memory-policy", value=linux.memory_policy)
        if process.apparmor_profile:
            self.add("process", "set-apparmor-profile", profile=process.apparmor_profile)
        if process.selinux_label:
            self.add("process", "set-selinux-label", label=process.selinux_label)

        # Without noNewPrivileges, loading a filter needs CAP_SYS_ADMIN, so it is
        # loaded before the user switch drops it; this is runc's order too.
        seccomp_early = bool(linux.seccomp) and not process.no_new_privileges
        if seccomp_early:
            self._seccomp()

        user = process.user
        self.add("process", "set-user", uid=user.uid, gid=user.gid, additional_gids=list(user.additional_gids))
        # Without process.user.umask the container gets 0022, as with runc,
        # not whatever umask the caller of the runtime had.
        umask = user.umask if user.umask is not None else 0o022
        self.add("process", "set-umask", umask=f"{umask:04o}")
        self.add("process", "set-capabilities", sets=process.capabilities or {})
        if process.exec_cpu_affinity:
            self.add("process", "set-cpu-affinity", value=process.exec_cpu_affinity)
        if process.no_new_privileges:
            self.add("process", "set-no-new-privileges")
        self.add("process", "chdir", path=process.cwd)
        self.add("process", "wait-for-start")
        if linux.seccomp and not seccomp_early:
            self._seccomp()
        self.add("process", "exec", args=list(process.args), env_count=len(process.env))

    def _seccomp(self):
        seccomp = self.spec.linux.seccomp
        self.add("process", "load-seccomp", default_action=seccomp.get("defaultAction"),
                 rules=len(seccomp.get("syscalls") or []))


def _flatten(value, prefix="linux.resources"):
    """Return ["linux.resources.memory.limit=536870912", ...] for every leaf of `value`."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            items.extend(_flatten(item, f"{prefix}.{key}"))
        return items
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            items.extend(_flatten(item, f"{prefix}[{index}]"))
        return items
    return [f"{prefix}={value}"]


def build_plan(spec, bundle, no_pivot=False, cgroup_mode=None):
    return PlanBuilder(spec, bundle, no_pivot, cgroup_mode).build()


def build_process_plan(spec, bundle):
    """Return the process stage alone, without the wait for `start`: what `exec` runs in the container."""
    builder = PlanBuilder(spec, bundle)
    builder._process()
    return [op for op in builder.operations if op.action != "wait-for-start"]


def format_plan(operations):
    lines = []
    stage = None
    for operation in operations:
        if operation.stage != stage:
            stage = operation.stage
            lines.append(f"{stage}:")
        lines.append(f"  {operation.describe()}")
    return "\n".join(lines)
