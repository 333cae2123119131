"""Semantic checks of config.json: the rules that a JSON schema cannot express.

They cover rules that relate two fields (a hostname needs a new uts
namespace), the file system (root.path must be a directory) and rules that
runc 1.1.5 enforces before it creates a container. They must not assume that
the config passed the schema, because `find_problems` runs them on any document.
"""

import os
import re
import stat

from navio_runtime import OCI_VERSION
from navio_runtime.linux.namespaces import NAMESPACE_PROC_NAMES
from navio_runtime.spec.problems import _SEMVER, _dict, _is_int, _list, _problem, _show, _str, _suggest


def semantic_problems(config, bundle, for_create):
    """Yield the problems that the schema cannot express."""
    if not isinstance(config, dict):
        return
    linux = _dict(config.get("linux"))
    namespaces = _namespace_table(linux)

    yield from check_version(config.get("ociVersion"), ("ociVersion",))
    yield from _check_root(config.get("root"), bundle)
    yield from _check_process(config, for_create)
    yield from _check_mounts(config, namespaces)
    yield from _check_mount_namespace(config, namespaces, for_create)
    yield from _check_hooks(config.get("hooks"))
    yield from _check_namespaces(linux)
    yield from _check_namespace_settings(config, linux, namespaces)
    yield from _check_id_mappings(linux)
    yield from _check_sysctl(linux, namespaces)
    yield from _check_net_devices(linux, namespaces)
    yield from _check_devices(linux)
    yield from _check_resources(linux)
    yield from _check_seccomp(linux.get("seccomp"))
    yield from _check_intel_rdt(linux.get("intelRdt"))
    yield from _check_memory_policy(linux.get("memoryPolicy"))
    yield from _check_time_offsets(linux.get("timeOffsets"))


def check_version(version, parts):
    if not isinstance(version, str):
        return
    match = _SEMVER.match(version)
    fix = f"use a 1.x version such as {_show(OCI_VERSION)}"
    if match is None:
        yield _problem(parts, f"{_show(version)} is not a SemVer 2.0.0 version", fix)
    elif match.group(1) != "1":
        yield _problem(
            parts,
            f"{_show(version)} is not a 1.x version; navio-runtime implements the OCI runtime specification {OCI_VERSION}",
            fix,
        )


def _check_root(root, bundle):
    path = _dict(root).get("path")
    if not isinstance(path, str):
        return
    if not path:
        yield _problem(("root", "path"), "root.path is empty", 'set it to the root filesystem directory, usually "rootfs"')
        return

    full = os.path.join(bundle, path)
    try:
        mode = os.stat(full).st_mode
    except FileNotFoundError:
        yield _problem(
            ("root", "path"),
            f"root filesystem {full} does not exist",
            "create the directory or correct root.path (a relative path is relative to the bundle)",
        )
        return
    except OSError as error:
        yield _problem(("root", "path"), f"cannot access the root filesystem {full}: {error.strerror}")
        return
    if not stat.S_ISDIR(mode):
        yield _problem(("root", "path"), f"root filesystem {full} is not a directory", "point root.path to a directory")


def _check_process(config, for_create):
    process = config.get("process")
    if process is None:
        if for_create:
            yield _problem(
                ("process",),
                'required property "process" is missing; create and run need it',
                'add a "process" object with "args" and "cwd"',
            )
        return
    if not isinstance(process, dict):
        return

    args = process.get("args")
    if args is None or (isinstance(args, list) and not args):
        yield _problem(
            ("process", "args"),
            "process.args is empty; it needs the program to run",
            'add the program and its arguments, for example ["sh"]',
        )
    for index, arg in enumerate(_list(args)):
        if isinstance(arg, str) and "\0" in arg:
            yield _problem(("process", "args", index), f"{_show(arg)} contains a NUL character", "remove the NUL character")

    cwd = process.get("cwd")
    if isinstance(cwd, str) and not cwd.startswith("/"):
        yield _problem(("process", "cwd"), f"{_show(cwd)} is not an absolute path", f"use {_show('/' + cwd)}")

    yield from _check_env(process.get("env"), ("process", "env"))
    yield from _check_rlimits(process.get("rlimits"))
    yield from _check_scheduler(process.get("scheduler"))

    affinity = _dict(process.get("execCPUAffinity"))
    for key in ("initial", "final"):
        yield from _check_cpu_list(affinity.get(key), ("process", "execCPUAffinity", key))


def _check_env(env, parts):
    for index, entry in enumerate(_list(env)):
        if not isinstance(entry, str):
            continue
        name, equals, _ = entry.partition("=")
        if not equals:
            yield _problem(parts + (index,), f"{_show(entry)} has no \"=\"", 'write it as "NAME=value"')
        elif not name:
            yield _problem(parts + (index,), f"{_show(entry)} has an empty variable name", 'write it as "NAME=value"')
        elif "\0" in entry:
            yield _problem(parts + (index,), f"{_show(entry)} contains a NUL character", "remove the NUL character")


def _check_rlimits(rlimits):
    first_index = {}
    for index, rlimit in enumerate(_list(rlimits)):
        if not isinstance(rlimit, dict):
            continue
        kind = rlimit.get("type")
        if isinstance(kind, str):
            if kind in first_index:
                yield _problem(
                    ("process", "rlimits", index, "type"),
                    f"{_show(kind)} is already set by process.rlimits[{first_index[kind]}]",
                    "keep one entry per resource",
                )
            else:
                first_index[kind] = index

        soft = rlimit.get("soft")
        hard = rlimit.get("hard")
        if _is_int(soft) and _is_int(hard) and soft > hard:
            yield _problem(
                ("process", "rlimits", index, "soft"),
                f"soft limit {soft} is greater than hard limit {hard}",
                "lower the soft limit or raise the hard limit",
            )


def _check_scheduler(scheduler):
    if not isinstance(scheduler, dict):
        return
    policy = scheduler.get("policy")
    parts = ("process", "scheduler")

    priority = scheduler.get("priority")
    if _is_int(priority) and priority != 0 and policy not in ("SCHED_FIFO", "SCHED_RR"):
        yield _problem(
            parts + ("priority",),
            f"priority {priority} needs policy SCHED_FIFO or SCHED_RR, not {_show(policy)}",
            "remove the priority or change the policy",
        )

    deadline_fields = {key: scheduler.get(key) for key in ("runtime", "deadline", "period")}
    if policy != "SCHED_DEADLINE":
        for key, value in deadline_fields.items():
            if _is_int(value) and value != 0:
                yield _problem(
                    parts + (key,),
                    f"{key} {value} needs policy SCHED_DEADLINE, not {_show(policy)}",
                    f"remove {key} or change the policy",
                )
        return

    # sched_setattr(2) rejects a deadline policy unless runtime <= deadline <= period.
    runtime, deadline, period = (value if _is_int(value) else 0 for value in deadline_fields.values())
    if deadline == 0:
        yield _problem(parts + ("deadline",), "SCHED_DEADLINE needs a deadline greater than 0", "set deadline in nanoseconds")
    elif runtime > deadline:
        yield _problem(
            parts + ("runtime",), f"runtime {runtime} is greater than deadline {deadline}", "use runtime <= deadline"
        )
    if period != 0 and deadline > period:
        yield _problem(parts + ("deadline",), f"deadline {deadline} is greater than period {period}", "use deadline <= period")


def _check_mount_namespace(config, namespaces, for_create):
    # Without a mount namespace the rootfs bind and every entry of mounts[]
    # would be made in the host's mount table and outlive the container.
    if for_create and "mount" not in namespaces and isinstance(config.get("linux"), dict):
        yield _problem(
            ("linux", "namespaces"),
            "there is no mount namespace, so the rootfs and mounts would be set up on the host",
            'add {"type": "mount"} to linux.namespaces',
        )


def host_path_problems(config, bundle):
    """Yield problems with host paths that `create` would only find in the init: missing bind sources.

    Used by `check`. The validation of every `create` leaves this to the init,
    which reports the same error, because configs written for another host
    (tests, examples) name paths that do not exist here.
    """
    if not isinstance(config, dict):
        return
    for index, mount in enumerate(_list(config.get("mounts"))):
        if not isinstance(mount, dict):
            continue
        options = _list(mount.get("options"))
        is_bind = mount.get("type") == "bind" or "bind" in options or "rbind" in options
        source = mount.get("source")
        if is_bind and isinstance(source, str) and source:
            # A relative bind source is relative to the bundle.
            host_path = source if source.startswith("/") else os.path.join(bundle, source)
            if not os.path.exists(host_path):
                yield _problem(
                    ("mounts", index, "source"),
                    f"bind source {_show(source)} does not exist on the host",
                    "create it or correct the path",
                )


def _check_mounts(config, namespaces):
    for index, mount in enumerate(_list(config.get("mounts"))):
        if not isinstance(mount, dict):
            continue
        # A relative destination is valid since runtime-spec 1.2 (deprecated) and
        # means a path relative to "/", which is how the init resolves it.

        options = [option for option in _list(mount.get("options")) if isinstance(option, str)]
        idmap = [option for option in options if option in ("idmap", "ridmap")]
        has_mappings = bool(mount.get("uidMappings") or mount.get("gidMappings"))
        if idmap and not has_mappings and "user" not in namespaces:
            yield _problem(
                ("mounts", index, "options"),
                f"option {_show(idmap[0])} needs uidMappings and gidMappings on the mount or a user namespace",
                "add the mappings to the mount or add a user namespace",
            )


_HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def _check_hooks(hooks):
    hooks = _dict(hooks)
    for stage in _HOOK_STAGES:
        for index, hook in enumerate(_list(hooks.get(stage))):
            path = _dict(hook).get("path")
            if isinstance(path, str) and not path.startswith("/"):
                yield _problem(
                    ("hooks", stage, index, "path"),
                    f"{_show(path)} is not an absolute path",
                    "use the absolute path of the hook program",
                )
            yield from _check_env(_dict(hook).get("env"), ("hooks", stage, index, "env"))


def _namespace_table(linux):
    """Return {type: path or None} for the first entry of each namespace type."""
    table = {}
    for namespace in _list(linux.get("namespaces")):
        kind = _dict(namespace).get("type")
        if isinstance(kind, str) and kind not in table:
            path = namespace.get("path")
            table[kind] = path if isinstance(path, str) and path else None
    return table


def _check_namespaces(linux):
    first_index = {}
    for index, namespace in enumerate(_list(linux.get("namespaces"))):
        if not isinstance(namespace, dict):
            continue
        kind = namespace.get("type")
        if isinstance(kind, str):
            if kind in first_index:
                yield _problem(
                    ("linux", "namespaces", index, "type"),
                    f"namespace type {_show(kind)} is listed twice, first at linux.namespaces[{first_index[kind]}]",
                    "remove the duplicate entry",
                )
            else:
                first_index[kind] = index

        path = namespace.get("path")
        if isinstance(path, str) and path and not path.startswith("/"):
            file_name = NAMESPACE_PROC_NAMES.get(kind, "net") if isinstance(kind, str) else "net"
            yield _problem(
                ("linux", "namespaces", index, "path"),
                f"{_show(path)} is not an absolute path",
                f"use an absolute path such as {_show('/proc/1234/ns/' + file_name)}",
            )


def _needs_new_namespace(namespaces, kind, parts, what):
    """Yield a problem unless the config creates a new namespace of `kind`.

    `what` names the setting for the message, for example 'hostname "box"'.
    """
    if kind not in namespaces:
        yield _problem(
            parts,
            f"{what} needs a new {kind} namespace, but linux.namespaces has no {_show(kind)} entry",
            f'add {{"type": "{kind}"}} to linux.namespaces or remove the setting',
        )
    elif namespaces[kind] is not None:
        yield _problem(
            parts,
            f"{what} needs a new {kind} namespace, but the {kind} namespace is joined from {namespaces[kind]}",
            f"remove the path of the {kind} namespace or remove the setting",
        )


def _check_namespace_settings(config, linux, namespaces):
    for key in ("hostname", "domainname"):
        value = config.get(key)
        if isinstance(value, str) and value:
            yield from _needs_new_namespace(namespaces, "uts", (key,), f"{key} {_show(value)}")

    if _dict(linux.get("timeOffsets")):
        yield from _needs_new_namespace(namespaces, "time", ("linux", "timeOffsets"), "linux.timeOffsets")

    for key in ("maskedPaths", "readonlyPaths"):
        paths = _list(linux.get(key))
        if paths and "mount" not in namespaces:
            yield _problem(
                ("linux", key),
                f"linux.{key} needs a mount namespace, but linux.namespaces has no \"mount\" entry",
                'add {"type": "mount"} to linux.namespaces',
            )
        for index, path in enumerate(paths):
            if isinstance(path, str) and not path.startswith("/"):
                yield _problem(("linux", key, index), f"{_show(path)} is not an absolute path", f"use {_show('/' + path)}")

    if "user" not in namespaces:
        for key in ("uidMappings", "gidMappings"):
            if _list(linux.get(key)):
                yield _problem(
                    ("linux", key),
                    f"linux.{key} is set, but linux.namespaces has no \"user\" entry",
                    'add {"type": "user"} to linux.namespaces or remove the mappings',
                )
    elif namespaces["user"] is None:
        for key in ("uidMappings", "gidMappings"):
            if not _list(linux.get(key)):
                yield _problem(
                    ("linux", key),
                    f"a new user namespace needs linux.{key}, which is missing or empty",
                    f'add linux.{key}, for example [{{"containerID": 0, "hostID": 100000, "size": 65536}}]',
                )


# The kernel accepts at most 340 lines in /proc/<pid>/uid_map and gid_map (Linux 4.15 and later).
_MAX_ID_MAP_ENTRIES = 340


def _check_id_mappings(linux):
    for key in ("uidMappings", "gidMappings"):
        yield from _check_mapping_list(linux.get(key), ("linux", key))


def _check_mapping_list(mappings, parts):
    mappings = _list(mappings)
    if len(mappings) > _MAX_ID_MAP_ENTRIES:
        yield _problem(
            parts,
            f"{len(mappings)} mappings exceed the kernel's limit of {_MAX_ID_MAP_ENTRIES}",
            "merge adjacent ranges",
        )
    for index, mapping in enumerate(mappings):
        size = _dict(mapping).get("size")
        if _is_int(size) and size == 0:
            yield _problem(parts + (index, "size"), "size 0 maps no IDs", "use a size of at least 1")


# System V IPC sysctls, namespaced by the ipc namespace (see ipc_namespaces(7)).
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


def _sysctl_name(name):
    """Return a sysctl name with dots as separators, because sysctl(8) also accepts slashes."""
    separators = [position for position in (name.find("."), name.find("/")) if position >= 0]
    if separators and name[min(separators)] == "/":
        return name.translate(str.maketrans("./", "/."))
    return name


def _is_runtime_network_namespace(path):
    """Return True if `path` is the network namespace of this process, None if unknown."""
    try:
        own = os.stat("/proc/self/ns/net")
        other = os.stat(path)
    except OSError:
        return None
    return (own.st_dev, own.st_ino) == (other.st_dev, other.st_ino)


def _check_sysctl(linux, namespaces):
    # The rules follow runc 1.1.5, which sets only the sysctls that a namespace
    # of the container isolates, because the others would change the host.
    for key in _dict(linux.get("sysctl")):
        name = _sysctl_name(key)
        parts = ("linux", "sysctl", key)
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                yield _problem(
                    parts,
                    f"sysctl {_show(key)} would change the host: linux.namespaces has no \"ipc\" entry",
                    'add {"type": "ipc"} to linux.namespaces or remove the sysctl',
                )
        elif name.startswith("net."):
            if "network" not in namespaces:
                yield _problem(
                    parts,
                    f"sysctl {_show(key)} would change the host: linux.namespaces has no \"network\" entry",
                    'add {"type": "network"} to linux.namespaces or remove the sysctl',
                )
            elif namespaces["network"] is not None and _is_runtime_network_namespace(namespaces["network"]):
                yield _problem(
                    parts,
                    f"sysctl {_show(key)} would change the host: the network namespace {namespaces['network']} is the host's",
                    "use a network namespace of the container or remove the sysctl",
                )
        elif name == "kernel.hostname" and "uts" in namespaces:
            yield _problem(parts, f"sysctl {_show(key)} conflicts with the hostname property", "set hostname instead")
        elif name == "kernel.domainname" and "uts" in namespaces:
            continue
        else:
            yield _problem(
                parts,
                f"sysctl {_show(key)} is not isolated by a namespace of the container, so it would change the host",
                "remove it from linux.sysctl",
            )


# IFNAMSIZ is 16 bytes including the terminating NUL.
_MAX_INTERFACE_NAME = 15


def _interface_name_problem(name):
    """Return why `name` cannot be a network interface name, or ""."""
    if not name:
        return "is empty"
    if len(name.encode()) > _MAX_INTERFACE_NAME:
        return f"is longer than {_MAX_INTERFACE_NAME} bytes"
    if name in (".", ".."):
        return "is not allowed"
    if any(char in "/:" or char.isspace() for char in name):
        return "contains \"/\", \":\" or whitespace"
    return ""


def _check_net_devices(linux, namespaces):
    devices = _dict(linux.get("netDevices"))
    if not devices:
        return
    if "network" not in namespaces:
        yield _problem(
            ("linux", "netDevices"),
            "linux.netDevices needs a network namespace, but linux.namespaces has no \"network\" entry",
            'add {"type": "network"} to linux.namespaces',
        )
    elif namespaces["network"] is not None and _is_runtime_network_namespace(namespaces["network"]):
        yield _problem(
            ("linux", "netDevices"),
            f"linux.netDevices would move devices into the host's network namespace {namespaces['network']}",
            "use a network namespace of the container",
        )

    for host_name, device in devices.items():
        reason = _interface_name_problem(host_name)
        if reason:
            yield _problem(("linux", "netDevices", host_name), f"interface name {_show(host_name)} {reason}")
        name = _dict(device).get("name")
        if isinstance(name, str) and name:
            reason = _interface_name_problem(name)
            if reason:
                yield _problem(("linux", "netDevices", host_name, "name"), f"interface name {_show(name)} {reason}")


def _check_devices(linux):
    first_index = {}
    for index, device in enumerate(_list(linux.get("devices"))):
        if not isinstance(device, dict):
            continue
        path = device.get("path")
        parts = ("linux", "devices", index)
        if isinstance(path, str):
            # The spec allows device nodes anywhere in the container, as runc does.
            if not path.startswith("/"):
                yield _problem(parts + ("path",), f"{_show(path)} is not an absolute path", f"use {_show('/' + path)}")
            elif path in first_index:
                yield _problem(
                    parts + ("path",),
                    f"{_show(path)} is already created by linux.devices[{first_index[path]}]",
                    "remove the duplicate entry",
                )
            else:
                first_index[path] = index

        kind = device.get("type")
        if kind in ("c", "b", "u"):
            for key in ("major", "minor"):
                if key not in device:
                    yield _problem(
                        parts + (key,),
                        f"a device of type {_show(kind)} needs {_show(key)}",
                        f"add the {key} device number",
                    )


def _check_resources(linux):
    cgroups_path = linux.get("cgroupsPath")
    if isinstance(cgroups_path, str) and ".." in cgroups_path.split("/"):
        yield _problem(
            ("linux", "cgroupsPath"),
            f"{_show(cgroups_path)} contains a \"..\" component",
            "use a path without \"..\"",
        )

    resources = _dict(linux.get("resources"))
    parts = ("linux", "resources")

    for key in _dict(resources.get("unified")):
        if "/" in key or ".." in key or key in ("", "."):
            yield _problem(
                parts + ("unified", key),
                f"{_show(key)} is not a file name in the container's cgroup",
                'use a cgroup v2 file name such as "memory.max", without "/" or ".."',
            )

    cpu = _dict(resources.get("cpu"))
    quota = cpu.get("quota")
    burst = cpu.get("burst")
    if _is_int(quota) and _is_int(burst) and quota > 0 and burst > quota:
        yield _problem(
            parts + ("cpu", "burst"),
            f"burst {burst} is greater than quota {quota}",
            "use a burst no larger than the quota",
        )
    for key in ("cpus", "mems"):
        yield from _check_cpu_list(cpu.get(key), parts + ("cpu", key))

    memory = _dict(resources.get("memory"))
    limit = memory.get("limit")
    swap = memory.get("swap")
    if _is_int(limit) and _is_int(swap) and limit > 0 and 0 < swap < limit:
        yield _problem(
            parts + ("memory", "swap"),
            f"swap {swap} is less than limit {limit}; swap is the limit of memory plus swap",
            "use a swap value of at least the memory limit, or -1 for unlimited",
        )
    swappiness = memory.get("swappiness")
    # runc 1.1 also accepts 2**64 - 1, which is -1 written as an unsigned number.
    if _is_int(swappiness) and 100 < swappiness < 2**64 - 1:
        yield _problem(parts + ("memory", "swappiness"), f"swappiness {swappiness} is above 100", "use a value from 0 to 100")


_CPU_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+)(?::[0-9]+/[0-9]+)?)?\Z")


def _check_cpu_list(text, parts):
    """Yield a problem unless `text` is a list such as "0-3,7" (the format of cpuset.cpus)."""
    if not isinstance(text, str) or not text.strip():
        return
    for item in text.strip().split(","):
        match = _CPU_RANGE.match(item)
        if match is None:
            yield _problem(parts, f"{_show(text)} is not a list of numbers and ranges", 'use the form "0-3,7"')
            return
        if match.group(2) is not None and int(match.group(2)) < int(match.group(1)):
            yield _problem(parts, f"range {_show(item)} in {_show(text)} ends before it starts", "write ranges as low-high")
            return


def _check_seccomp(seccomp):
    if not isinstance(seccomp, dict):
        return
    parts = ("linux", "seccomp")
    errno_actions = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

    default_action = seccomp.get("defaultAction")
    if default_action == "SCMP_ACT_NOTIFY":
        # The runtime needs write(2) after the filter is loaded to hand over the notify fd.
        yield _problem(
            parts + ("defaultAction",),
            "SCMP_ACT_NOTIFY cannot be the default action",
            "use SCMP_ACT_NOTIFY only in syscalls entries",
        )
    if "defaultErrnoRet" in seccomp and isinstance(default_action, str) and default_action not in errno_actions:
        yield _problem(
            parts + ("defaultErrnoRet",),
            f"defaultErrnoRet is set, but the default action {_show(default_action)} returns no errno",
            "remove defaultErrnoRet or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
        )

    has_listener = bool(_str(seccomp.get("listenerPath")))
    if "listenerMetadata" in seccomp and not has_listener:
        yield _problem(
            parts + ("listenerMetadata",),
            "listenerMetadata is set, but listenerPath is not",
            "set listenerPath or remove listenerMetadata",
        )

    for index, syscall in enumerate(_list(seccomp.get("syscalls"))):
        if not isinstance(syscall, dict):
            continue
        action = syscall.get("action")
        entry = parts + ("syscalls", index)
        if "errnoRet" in syscall and isinstance(action, str) and action not in errno_actions:
            yield _problem(
                entry + ("errnoRet",),
                f"errnoRet is set, but the action {_show(action)} returns no errno",
                "remove errnoRet or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
            )
        if action == "SCMP_ACT_NOTIFY":
            if not has_listener:
                yield _problem(
                    entry + ("action",),
                    "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, the socket of the seccomp agent",
                    "set listenerPath",
                )
            if "write" in _list(syscall.get("names")):
                yield _problem(
                    entry + ("names",),
                    "SCMP_ACT_NOTIFY cannot apply to write, which the runtime needs to hand over the notify fd",
                    "remove write from this entry",
                )


def _check_intel_rdt(intel_rdt):
    clos_id = _dict(intel_rdt).get("closID")
    # "/" is the default CLOS, the root of the resctrl file system.
    if isinstance(clos_id, str) and clos_id != "/" and (clos_id in ("", ".", "..") or "/" in clos_id):
        yield _problem(
            ("linux", "intelRdt", "closID"),
            f"{_show(clos_id)} is not a resctrl group name",
            'use a name without "/", or "/" for the default group',
        )


_NODES_REQUIRED = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")
_NODES_FORBIDDEN = ("MPOL_DEFAULT", "MPOL_LOCAL")


def _check_memory_policy(policy):
    if not isinstance(policy, dict):
        return
    parts = ("linux", "memoryPolicy")
    mode = policy.get("mode")
    nodes = policy.get("nodes")
    has_nodes = isinstance(nodes, str) and bool(nodes.strip())

    yield from _check_cpu_list(nodes, parts + ("nodes",))
    if mode in _NODES_REQUIRED and not has_nodes:
        yield _problem(parts + ("nodes",), f"mode {mode} needs at least one node", 'set nodes, for example "0-1"')
    elif mode in _NODES_FORBIDDEN and has_nodes:
        yield _problem(parts + ("nodes",), f"mode {mode} takes no nodes, but nodes is {_show(nodes)}", "remove nodes")

    flags = _list(policy.get("flags"))
    if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
        yield _problem(
            parts + ("flags",),
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
            "keep one of them",
        )


# time_namespaces(7): only these clocks have offsets.
_TIME_NAMESPACE_CLOCKS = ("monotonic", "boottime")


def _check_time_offsets(offsets):
    for clock, offset in _dict(offsets).items():
        parts = ("linux", "timeOffsets", clock)
        if clock not in _TIME_NAMESPACE_CLOCKS:
            yield _problem(
                parts,
                f"clock {_show(clock)} has no offset in a time namespace; only \"monotonic\" and \"boottime\" do",
                _suggest(clock, _TIME_NAMESPACE_CLOCKS) or "remove it",
            )
        nanoseconds = _dict(offset).get("nanosecs")
        if _is_int(nanoseconds) and nanoseconds >= 1_000_000_000:
            yield _problem(
                parts + ("nanosecs",),
                f"nanosecs {nanoseconds} is one second or more",
                "move whole seconds to secs and keep nanosecs below 1000000000",
            )
