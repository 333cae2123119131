"""`exec`: run an additional process inside a created or running container.

The runtime forks a joiner that makes itself non-dumpable, enters the
container's cgroup and namespaces (setns), and forks the new process, so that
a new pid namespace applies to it. The process then takes the container's
security settings (user, capabilities, noNewPrivileges, AppArmor, seccomp) and
execs. Being non-dumpable, no process of the container can open
/proc/<pid>/exe of the runtime while it is inside, which is how CVE-2019-5736
overwrote runc's binary on the host.
"""

import os
import signal

from navio_runtime.errors import SpecError, StateError
from navio_runtime.init import sync
from navio_runtime.log import get_logger
from navio_runtime.state_store import CREATED, PAUSED, RUNNING, StateStore, process_start_time

log = get_logger(__name__)

# Namespaces joined in this order. The user namespace comes first, so that the
# joiner has capabilities over the rest. The mount namespace comes last,
# because joining it changes what /proc paths resolve to.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def build_exec_process(config_process, args=None, process_file=None, cwd=None, env=(), user=None,
                       additional_gids=(), tty=False, no_new_privileges=False, apparmor=None):
    """Return the process object to run: --process FILE, or the container's process overridden by flags."""
    if process_file:
        import json

        with open(process_file) if process_file != "-" else _stdin() as process_input:
            try:
                process = json.load(process_input)
            except ValueError as error:
                raise SpecError(f"--process {process_file}: invalid JSON: {error}") from None
        if not isinstance(process, dict):
            raise SpecError(f"--process {process_file}: the document must be a JSON object")
    else:
        if not args:
            raise SpecError("exec needs a command to run after the container id, or --process FILE")
        process = {key: value for key, value in (config_process or {}).items()}
        process["args"] = list(args)
        process["terminal"] = tty
        for item in env:
            if "=" not in item:
                raise SpecError(f"--env {item!r}: use NAME=VALUE")
        process["env"] = list(process.get("env") or []) + list(env)
        if cwd:
            process["cwd"] = cwd
        if user:
            process["user"] = _parse_user(user, additional_gids)
        elif additional_gids:
            process.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = list(additional_gids)
        if no_new_privileges:
            process["noNewPrivileges"] = True
        if apparmor:
            process["apparmorProfile"] = apparmor

    if not process.get("args"):
        raise SpecError("process.args: the exec process needs a command")
    process.setdefault("cwd", "/")
    if not str(process["cwd"]).startswith("/"):
        raise SpecError(f"process.cwd {process['cwd']!r} is not an absolute path; use one such as /tmp")
    return process


def _stdin():
    import sys

    return os.fdopen(os.dup(sys.stdin.fileno()))


def _parse_user(value, additional_gids):
    uid_text, _, gid_text = value.partition(":")
    try:
        user = {"uid": int(uid_text), "gid": int(gid_text) if gid_text else 0}
    except ValueError:
        raise SpecError(f"--user {value!r}: use numeric uid[:gid]") from None
    if additional_gids:
        user["additionalGids"] = list(additional_gids)
    return user


def exec_process(container_id, process, root=None, detach=False, pid_file=None, console_socket=None,
                 preserve_fds=0, ignore_paused=False, extra_capabilities=()):
    """Run `process` (from build_exec_process) in the container; return its exit status, or 0 when detached.

    `extra_capabilities` (exec --cap) go to the bounding, effective and permitted
    sets only, never to the inheritable one (CVE-2022-29162).
    """
    store = StateStore(root) if root else StateStore()
    with store.lock(container_id, shared=True):
        state = store.load(container_id)
        status = store.status(state)
        if status == PAUSED and ignore_paused:
            # The joiner would freeze as soon as it enters the frozen cgroup, and
            # exec waits for it to report back, so this could only hang.
            raise StateError(f"cannot exec in container {container_id}: --ignore-paused is not supported; "
                             "resume the container first")
        if status not in (CREATED, RUNNING):
            message = f"cannot exec in container {container_id}: its status is {status!r}"
            if status == PAUSED:
                message += "; resume it first"
            raise StateError(message)
        proxy = None
        if process.get("terminal") and not console_socket:
            if detach:
                raise SpecError("exec -d with a terminal (--tty) needs --console-socket to receive it")
            from navio_runtime.container.console_proxy import ConsoleProxy

            # Like runc without --console-socket: this process becomes the terminal's other end.
            proxy = ConsoleProxy()
            console_socket = proxy.path

        from navio_runtime.plan import build_process_plan
        from navio_runtime.spec.model import spec_from_dict

        try:
            # The container's config with the exec process in place of its own.
            spec = spec_from_dict(dict(state.config, process=process))
            plan = build_process_plan(spec, state.bundle)
            namespace_fds = _open_namespaces(state, spec)
            joiner = _Joiner(state, spec, plan, namespace_fds, console_socket, preserve_fds,
                             store.oci_state(state, status=status), list(extra_capabilities))
            if not detach:
                from navio_runtime.linux.syscalls import set_child_subreaper

                set_child_subreaper()
            pid = joiner.start()
        except BaseException:
            if proxy is not None:
                proxy.close()
            raise

    if pid_file:
        from navio_runtime.container.create import write_pid_file

        write_pid_file(pid_file, pid)
    if detach:
        return 0

    from navio_runtime.container.run import SignalForwarder, poll_exit, wait_forwarding_signals

    if proxy is None:
        return wait_forwarding_signals(pid)

    forwarder = SignalForwarder()
    forwarder.install()
    forwarder.set_target(pid)
    try:
        proxy.receive_master()
        return proxy.copy_until_exit(pid, poll_exit)
    finally:
        forwarder.restore()
        proxy.close()


def _open_namespaces(state, spec):
    """Open the container's namespaces while the init is pinned by a pidfd and its start time matches."""
    from navio_runtime.linux.syscalls import NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES

    pidfd = os.pidfd_open(state.pid)
    fds = []
    try:
        if process_start_time(state.pid) != state.pid_start_time:
            raise StateError(f"container {state.id}: its init process {state.pid} has exited")
        by_type = {namespace.type: namespace for namespace in spec.linux.namespaces}
        for ns_type in JOIN_ORDER:
            if ns_type not in by_type:
                continue
            path = f"/proc/{state.pid}/ns/{NAMESPACE_PROC_NAMES[ns_type]}"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                raise StateError(f"cannot open {ns_type} namespace {path}: {error.strerror}") from None
            fds.append((ns_type, NAMESPACE_FLAGS[ns_type], fd))
        if process_start_time(state.pid) != state.pid_start_time:
            raise StateError(f"container {state.id}: its init process {state.pid} has exited")
    except BaseException:
        for _, _, fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(pidfd)
    return fds


class _Joiner:
    """The runtime side of exec: forks the joiner and waits until the new process has exec'd."""

    def __init__(self, state, spec, plan, namespace_fds, console_socket_path, preserve_fds, oci_state,
                 extra_capabilities):
        self.state = state
        self.spec = spec
        self.plan = plan
        self.namespace_fds = namespace_fds
        self.console_socket_path = console_socket_path
        self.preserve_fds = preserve_fds
        self.oci_state = oci_state
        self.extra_capabilities = extra_capabilities

    def start(self):
        """Fork the joiner, put it in the container's cgroup and return the host PID of the new process."""
        console = None
        if self.console_socket_path:
            from navio_runtime.init.terminal import connect_console_socket

            console = connect_console_socket(self.console_socket_path)

        parent_socket, child_socket = sync.socket_pair()
        joiner_pid = os.fork()
        if joiner_pid == 0:
            parent_socket.close()
            self._run_joiner(child_socket, console)

        child_socket.close()
        if console is not None:
            console.close()
        for _, _, fd in self.namespace_fds:
            os.close(fd)
        try:
            if self.state.cgroup:
                from navio_runtime.cgroups import manager_from_dict

                manager_from_dict(self.state.cgroup).add_process(joiner_pid)
            sync.send(parent_socket, "go")
            message = sync.receive(parent_socket, expected=("pid",), timeout=60)
            pid = message["pid"]
            # End of file without an error means execve succeeded (the socket is close-on-exec).
            sync.receive(parent_socket, timeout=60, eof_ok=True)
            return pid
        except BaseException:
            os.kill(joiner_pid, signal.SIGKILL)
            raise
        finally:
            parent_socket.close()
            try:
                os.waitpid(joiner_pid, 0)
            except ChildProcessError:
                pass

    def _run_joiner(self, sync_socket, console):
        """Body of the joiner: enter the container and fork the new process there. Never returns."""
        from navio_runtime.init import executor
        from navio_runtime.init.process import close_fds_except
        from navio_runtime.linux import syscalls as sc
        from navio_runtime.log import open_log_fds

        ctx = executor.InitContext(self.spec, self.state.bundle, self.plan, sync_socket, None,
                                   preserve_fds=self.preserve_fds, container_id=self.state.id)
        ctx.state = self.oci_state
        ctx.console_socket = console
        ctx.extra_capabilities = self.extra_capabilities
        try:
            keep = {sync_socket.fileno()} | {fd for _, _, fd in self.namespace_fds} | open_log_fds()
            if console is not None:
                keep.add(console.fileno())
            close_fds_except(keep, 3 + self.preserve_fds)
            sc.set_dumpable(False)
            executor.preload_modules(ctx)

            sync.receive(sync_socket, expected=("go",))
            for ns_type, flag, fd in self.namespace_fds:
                sc.setns(fd, flag, target=f"{ns_type} namespace of container {self.state.id}")
                os.close(fd)

            # The new process needs its host PID for the seccomp agent's state.
            pid, ctx.host_pid = sync.fork_after_pid_report(lambda child: sync.send(sync_socket, "pid", pid=child))
            if pid == 0:
                executor.run_exec_process(ctx)
            os._exit(0)
        except BaseException as error:
            executor.report_and_exit(ctx, error)
