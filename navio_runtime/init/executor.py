"""Carry out a container plan in the intermediate and init processes.

Process model (the runc shape):

    create --fork--> intermediate --setns/unshare--fork--> init (PID 1 of a new pid namespace)

The intermediate joins and creates namespaces, has `create` write the id maps
of a new user namespace, forks the init, reports its host PID and exits. The
init runs the rootfs, container and process stages of the plan, reports
"ready", and blocks in accept(2) on the exec socket until `start` connects.
Everything here runs in forked children of a single-threaded Python process,
so unshare(CLONE_NEWUSER) and setns are allowed.
"""

import os
import signal
import sys

from navio_runtime.errors import InitError, NavioError
from navio_runtime.init import process as process_steps
from navio_runtime.init import rootfs as rootfs_steps
from navio_runtime.init import sync
from navio_runtime.init import terminal
from navio_runtime.linux import syscalls as sc
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Signals that end the init while it waits for `start`. As PID 1 of a pid
# namespace it would otherwise ignore every signal it has no handler for.
_TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class InitContext:
    """Settings and open resources that the intermediate and init processes use to run the plan."""

    def __init__(self, spec, bundle, plan, sync_socket, exec_listener, preserve_fds=0, cgroup_paths=None,
                 container_id="", state_dir=""):
        self.spec = spec
        self.bundle = bundle
        self.plan = plan
        self.sync_socket = sync_socket
        self.exec_listener = exec_listener
        self.preserve_fds = preserve_fds
        self.cgroup_paths = cgroup_paths or {}
        self.container_id = container_id
        self.state_dir = state_dir
        self.rootfs = ""
        self.root_fd = -1
        self.environment = {}
        self.executable = ""
        self.state = {}
        self.start_connection = None
        self.seccomp_listener = None
        self.host_pid = 0
        self.console_socket = None
        self.terminal_fd = -1
        # Capabilities that `exec --cap` adds to the bounding, effective and permitted sets.
        self.extra_capabilities = ()
        linux = spec.linux
        self.mount_namespace = linux.namespace("mount") is not None
        self.cgroup_namespace = linux.namespace("cgroup") is not None


def _process_attrs():
    from navio_runtime.init import process_attrs

    return process_attrs


def _capabilities():
    from navio_runtime.init import capabilities

    return capabilities


def _set_rlimits(ctx, op):
    _process_attrs().apply_rlimits(list(ctx.spec.process.rlimits))


def _set_oom_score_adj(ctx, op):
    _process_attrs().apply_oom_score_adj(ctx.spec.process.oom_score_adj)


def _set_io_priority(ctx, op):
    _process_attrs().apply_io_priority(ctx.spec.process.io_priority)


def _set_scheduler(ctx, op):
    _process_attrs().apply_scheduler(ctx.spec.process.scheduler)


def _set_personality(ctx, op):
    _process_attrs().apply_personality(ctx.spec.linux.personality)


def _set_memory_policy(ctx, op):
    from navio_runtime.init.memory_policy import apply_memory_policy

    apply_memory_policy(ctx.spec.linux.memory_policy)


def _set_apparmor_profile(ctx, op):
    _process_attrs().apply_apparmor_profile(ctx.spec.process.apparmor_profile)


def _set_selinux_label(ctx, op):
    _process_attrs().apply_selinux_label(ctx.spec.process.selinux_label)


def _set_user(ctx, op):
    _capabilities().keep_capabilities_across_setuid()
    process_steps.set_user(ctx, op)


def _set_capabilities(ctx, op):
    if ctx.extra_capabilities:
        _capabilities().apply_capabilities_for_exec(ctx.spec.process.capabilities, list(ctx.extra_capabilities))
    else:
        _capabilities().apply_capabilities(ctx.spec.process.capabilities)


def _set_cpu_affinity(ctx, op):
    _process_attrs().apply_exec_cpu_affinity(ctx.spec.process.exec_cpu_affinity, final=True)


def _set_no_new_privileges(ctx, op):
    sc.set_no_new_privileges()


def _load_seccomp(ctx, op):
    from navio_runtime.init import seccomp

    state = dict(ctx.state)
    state["pid"] = ctx.host_pid
    seccomp.load_seccomp(ctx.spec.linux.seccomp, notify_state=state, listener=ctx.seccomp_listener)


def _run_create_hooks(ctx, op):
    """Have `create` run prestart and createRuntime hooks, then run createContainer hooks here."""
    sync.send(ctx.sync_socket, "hooks")
    reply = sync.receive(ctx.sync_socket, expected=("ack",))
    ctx.state = reply.get("state", ctx.state)

    from navio_runtime.hooks import run_hooks

    run_hooks(ctx.spec.hooks.get("createContainer", ()), ctx.state, "createContainer")


def _chdir(ctx, op):
    process_steps.change_directory(ctx, op)
    process_steps.resolve_executable(ctx)


def _wait_for_start(ctx, op):
    """Report "ready" to `create`, then block until `start` connects to the exec socket."""
    sync.send(ctx.sync_socket, "ready")
    ctx.sync_socket.close()

    connection, _ = ctx.exec_listener.accept()
    ctx.exec_listener.close()
    ctx.start_connection = connection

    message = sync.receive(connection, expected=("start",))
    ctx.state = message.get("state", ctx.state)

    hooks = ctx.spec.hooks.get("startContainer", ())
    if hooks:
        from navio_runtime.hooks import run_hooks

        run_hooks(hooks, ctx.state, "startContainer")


def _execute(ctx, op):
    if ctx.terminal_fd >= 0:
        terminal.attach_terminal(ctx)
    process_steps.execute(ctx, op)


ACTIONS = {
    "set-propagation": rootfs_steps.set_propagation,
    "bind-rootfs": rootfs_steps.bind_rootfs,
    "mount": rootfs_steps.mount_entry,
    "mount-cgroup": rootfs_steps.mount_cgroup,
    "mknod": rootfs_steps.make_device,
    "symlink": rootfs_steps.make_symlink,
    "ptmx-symlink": rootfs_steps.make_ptmx_symlink,
    "mkdir": rootfs_steps.make_directory,
    "mkdir-cwd": rootfs_steps.make_cwd,
    "console": terminal.setup_console,
    "run-create-hooks": _run_create_hooks,
    "pivot-root": rootfs_steps.pivot_root,
    "chroot": rootfs_steps.chroot,
    "mask-path": rootfs_steps.mask_path,
    "readonly-path": rootfs_steps.readonly_path,
    "remount-root-readonly": rootfs_steps.remount_root_readonly,
    "sethostname": rootfs_steps.set_hostname,
    "setdomainname": rootfs_steps.set_domainname,
    "sysctl": rootfs_steps.write_sysctl,
    "set-rlimits": _set_rlimits,
    "set-oom-score-adj": _set_oom_score_adj,
    "set-io-priority": _set_io_priority,
    "set-scheduler": _set_scheduler,
    "set-personality": _set_personality,
    "set-memory-policy": _set_memory_policy,
    "set-apparmor-profile": _set_apparmor_profile,
    "set-selinux-label": _set_selinux_label,
    "set-user": _set_user,
    "set-umask": process_steps.set_umask,
    "set-capabilities": _set_capabilities,
    "set-cpu-affinity": _set_cpu_affinity,
    "set-no-new-privileges": _set_no_new_privileges,
    "chdir": _chdir,
    "load-seccomp": _load_seccomp,
    "wait-for-start": _wait_for_start,
    "exec": _execute,
}


def report_and_exit(ctx, error):
    """Send `error` to the waiting runtime process (`create` or `exec`, or `start` after "ready") and exit."""
    if isinstance(error, NavioError):
        message = str(error)
    elif isinstance(error, OSError):
        message = f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    else:
        # No traceback module here: importing it costs about 3 ms on every create.
        message = f"{type(error).__name__}: {error}"

    channel = ctx.start_connection or ctx.sync_socket
    try:
        sync.send(channel, "error", message=message)
    except OSError:
        pass
    os._exit(1)


def _exit_on_signal(signum, frame):
    os._exit(128 + signum)


# ---------------------------------------------------------------------------
# Intermediate process
# ---------------------------------------------------------------------------


def _join_namespace(op):
    ns_type, path = op.args["type"], op.args["path"]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise InitError(f"linux.namespaces: cannot open {ns_type} namespace {path}: {error.strerror}") from None
    try:
        expected = sc.NAMESPACE_FLAGS[ns_type]
        actual = sc.namespace_type_of(fd, path)
        if actual != expected:
            raise InitError(f"linux.namespaces: {path} is not a {ns_type} namespace")
        sc.setns(fd, expected, target=f"{ns_type} namespace {path}")
    finally:
        os.close(fd)


def _unshare(op):
    flags = 0
    for ns_type in op.args["types"]:
        flags |= sc.NAMESPACE_FLAGS[ns_type]
    sc.unshare(flags, target="namespaces " + ",".join(op.args["types"]))


def _set_time_offsets(op):
    lines = []
    for clock in ("monotonic", "boottime"):
        offset = op.args["offsets"].get(clock)
        if offset:
            lines.append(f"{clock} {offset.get('secs', 0)} {offset.get('nanosecs', 0)}\n")
    with open("/proc/self/timens_offsets", "w") as offsets_file:
        offsets_file.write("".join(lines))


def run_intermediate(ctx):
    """Body of the intermediate process. Never returns."""
    try:
        # Until execve, /proc/<pid>/exe of this process is the host's Python.
        # Non-dumpable, no process of the container can open it (CVE-2019-5736).
        sc.set_dumpable(False)

        message = sync.receive(ctx.sync_socket, expected=("go",))
        ctx.cgroup_paths = message.get("cgroup_paths", {})
        ctx.state = message.get("state", {})
        in_new_user_namespace = False

        for op in ctx.plan:
            if op.stage != "namespaces":
                continue
            if op.action == "setns":
                _join_namespace(op)
                in_new_user_namespace = in_new_user_namespace or op.args["type"] == "user"
            elif op.action == "unshare":
                _unshare(op)
                in_new_user_namespace = in_new_user_namespace or "user" in op.args["types"]
            elif op.action == "write-id-maps":
                sync.send(ctx.sync_socket, "map-ids", pid=os.getpid())
                sync.receive(ctx.sync_socket, expected=("ack",))
            elif op.action == "set-time-offsets":
                _set_time_offsets(op)
            elif op.action == "fork-init":
                break

        if in_new_user_namespace:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)

        pid, _ = sync.fork_after_pid_report(lambda child: sync.send(ctx.sync_socket, "pid", pid=child))
        if pid == 0:
            run_init(ctx)
        os._exit(0)
    except BaseException as error:
        report_and_exit(ctx, error)


# ---------------------------------------------------------------------------
# Init process
# ---------------------------------------------------------------------------


def preload_modules(ctx):
    """Import every module the process needs later: after pivot_root or setns the runtime's files are out of reach.

    Also connects to the seccomp agent, whose listenerPath is a host path.
    """
    import fcntl  # noqa: F401

    from navio_runtime.plan import PROPAGATION_OPTIONS  # noqa: F401

    if ctx.spec.process is not None:
        _process_attrs()
        _capabilities()
    if ctx.spec.linux.memory_policy:
        from navio_runtime.init import memory_policy  # noqa: F401
    if ctx.spec.linux.seccomp:
        from navio_runtime.init import seccomp

        # listenerPath is a host path: connect while the host's root is still reachable.
        ctx.seccomp_listener = seccomp.connect_listener(ctx.spec.linux.seccomp)
    if ctx.spec.hooks:
        import subprocess  # noqa: F401

        from navio_runtime import hooks  # noqa: F401


def run_init(ctx):
    """Body of the container init. Ends in execve or os._exit; never returns."""
    try:
        # The host's /proc is still mounted here, so "self" names the host PID.
        ctx.host_pid = int(os.readlink("/proc/self"))
        preload_modules(ctx)
        for signum in _TERMINATING_SIGNALS:
            signal.signal(signum, _exit_on_signal)
        os.setsid()
        process_steps.close_inherited_fds(3 + ctx.preserve_fds)

        _run_operations(ctx, [op for op in ctx.plan if op.stage not in ("runtime", "namespaces")])
    except BaseException as error:
        report_and_exit(ctx, error)
    finally:
        sys.stderr.flush()


def run_exec_process(ctx):
    """Body of the process that `exec` forked inside the container. Ends in execve or os._exit."""
    try:
        os.setsid()
        if ctx.spec.process.terminal:
            terminal.setup_exec_console(ctx)
        _run_operations(ctx, ctx.plan)
    except BaseException as error:
        report_and_exit(ctx, error)


def _run_operations(ctx, operations):
    """Carry out `operations`, which must end with exec; raise InitError if they do not."""
    for op in operations:
        if op.action == "chdir" and ctx.spec.process is not None:
            ctx.environment = process_steps.container_environment(ctx)
        action = ACTIONS.get(op.action)
        if action is None:
            raise InitError(f"internal error: the plan has an unknown action {op.action!r}")
        action(ctx, op)
    raise InitError("internal error: the plan ended without exec")
