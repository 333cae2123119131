"""`create`: build the container and leave its init waiting for `start`."""

import os
import socket
import time

from navio_runtime.errors import InitError, NavioError, SpecError
from navio_runtime.state_store import CREATING, EXEC_SOCKET, ContainerState, StateStore, process_start_time
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Time allowed for the init to finish its setup and for hooks run by `create`.
SETUP_TIMEOUT = 120


def load_spec(bundle, for_create=True):
    """Read, validate and type `<bundle>/config.json`."""
    from navio_runtime.spec.model import spec_from_dict
    from navio_runtime.spec.validate import load_config, validate_config

    config = load_config(bundle)
    validate_config(config, bundle, for_create=for_create)
    return spec_from_dict(config)


def create(container_id, bundle, root=None, pid_file=None, no_pivot=False, preserve_fds=0,
           systemd_cgroup=False, console_socket=None, before_fork=None):
    """Create container `container_id` from `bundle`; return its ContainerState.

    When create raises, it has removed what it made: the state directory, the
    cgroup and the init process. A create that is killed can leave them, and
    `delete --force` removes them.
    `before_fork` is called in the runtime process just before the first fork
    (`run` uses it to become the subreaper of the init).
    """
    store = StateStore(root) if root else StateStore()
    bundle = os.path.abspath(bundle)

    from navio_runtime.state_store import validate_container_id

    validate_container_id(container_id)
    spec = load_spec(bundle)

    from navio_runtime.plan import build_plan, resolve_rootfs

    plan = build_plan(spec, bundle, no_pivot=no_pivot)

    terminal = spec.process is not None and spec.process.terminal
    if terminal and not console_socket:
        raise SpecError("process.terminal is true, so --console-socket is required to receive the terminal")
    if console_socket and not terminal:
        raise SpecError("--console-socket was given but process.terminal is false; set it to true or drop the flag")

    store.create_dir(container_id)
    builder = _Builder(store, container_id, bundle, spec, plan, preserve_fds, systemd_cgroup, console_socket)
    try:
        with store.lock(container_id):
            builder.state = ContainerState(
                id=container_id,
                bundle=bundle,
                rootfs=resolve_rootfs(bundle, spec.root.path),
                created=_utc_timestamp(),
                annotations=spec.annotations,
                creator_pid=os.getpid(),
                creator_start_time=process_start_time(os.getpid()) or 0,
                config=spec.raw,
            )
            store.save(builder.state)
            if before_fork is not None:
                before_fork()
            builder.build()
            if pid_file:
                write_pid_file(pid_file, builder.state.pid)
    except BaseException:
        builder.tear_down()
        raise
    log.info("created container %s (init pid %d)", container_id, builder.state.pid)
    return builder.state


def _utc_timestamp():
    """Return the current time as RFC 3339 in UTC with nanoseconds, as runc writes `created`."""
    now = time.time_ns()
    seconds, nanoseconds = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds:09d}Z"


def write_pid_file(path, pid):
    """Write the init's host PID, without a newline, atomically (containerd and podman read it)."""
    path = os.path.abspath(path)
    temp_path = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp_path, "w") as pid_file:
            pid_file.write(str(pid))
        os.rename(temp_path, path)
    except OSError as error:
        raise NavioError(f"--pid-file {path}: cannot write it: {error.strerror}") from None


class _Builder:
    """The runtime side of create: cgroup, forks and the conversation with the init."""

    def __init__(self, store, container_id, bundle, spec, plan, preserve_fds, systemd_cgroup, console_socket):
        self.store = store
        self.container_id = container_id
        self.bundle = bundle
        self.spec = spec
        self.plan = plan
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        self.console_socket_path = console_socket
        self.console_socket = None
        self.state = None
        self.cgroup = None
        self.intermediate_pid = 0
        self.init_pid = 0

    def build(self):
        from navio_runtime.init import sync

        self._create_cgroup()

        if self.console_socket_path:
            from navio_runtime.init.terminal import connect_console_socket

            self.console_socket = connect_console_socket(self.console_socket_path)

        exec_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dir_fd = self.store.open_dir(self.container_id)
        try:
            exec_listener.bind(f"/proc/self/fd/{dir_fd}/{EXEC_SOCKET}")
        finally:
            os.close(dir_fd)
        exec_listener.listen(1)
        parent_socket, child_socket = sync.socket_pair()

        self.intermediate_pid = os.fork()
        if self.intermediate_pid == 0:
            parent_socket.close()
            self._run_child(child_socket, exec_listener)

        child_socket.close()
        exec_listener.close()
        if self.console_socket is not None:
            self.console_socket.close()
        try:
            self._converse(parent_socket)
        finally:
            parent_socket.close()
            self._reap_intermediate()

    def _run_child(self, child_socket, exec_listener):
        from navio_runtime.init.executor import InitContext, run_intermediate
        from navio_runtime.init.process import close_fds_except
        from navio_runtime.log import open_log_fds

        keep = {child_socket.fileno(), exec_listener.fileno()} | open_log_fds()
        if self.console_socket is not None:
            keep.add(self.console_socket.fileno())
        close_fds_except(keep, 3 + self.preserve_fds)

        context = InitContext(
            self.spec, self.bundle, self.plan, child_socket, exec_listener,
            preserve_fds=self.preserve_fds, container_id=self.container_id,
            state_dir=self.store.container_dir(self.container_id),
        )
        context.console_socket = self.console_socket
        run_intermediate(context)

    def _create_cgroup(self):
        from navio_runtime.cgroups import open_manager

        linux = self.spec.linux
        self.cgroup = open_manager(self.container_id, linux.cgroups_path, systemd=self.systemd_cgroup)
        self.cgroup.create()
        self.state.cgroup = self.cgroup.to_dict()
        # Recorded before anything else can fail, so `delete --force` finds the cgroup.
        self.store.save(self.state)
        self.cgroup.apply(_resources_with_default_devices(linux.resources, linux.devices))

    def _converse(self, parent_socket):
        from navio_runtime.init import sync

        # The init joins its cgroup before any of its own code runs.
        self.cgroup.add_process(self.intermediate_pid)
        from navio_runtime.init.rootfs import cgroup_directories

        sync.send(parent_socket, "go", cgroup_paths=cgroup_directories(self.intermediate_pid),
                  state=self.store.oci_state(self.state, status=CREATING))

        deadline = time.monotonic() + SETUP_TIMEOUT
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            message = sync.receive(parent_socket, expected=("map-ids", "pid", "hooks", "ready"), timeout=remaining)
            kind = message["type"]
            if kind == "map-ids":
                self._write_id_maps(message["pid"])
                sync.send(parent_socket, "ack")
            elif kind == "pid":
                self._record_init(message["pid"])
            elif kind == "hooks":
                self._run_create_hooks()
                sync.send(parent_socket, "ack", state=self.hook_state(CREATING))
            elif kind == "ready":
                return

    def _record_init(self, pid):
        self.init_pid = pid
        start_time = process_start_time(pid)
        if start_time is None:
            raise InitError(f"the container init (pid {pid}) exited during setup")
        self.state.pid = pid
        self.state.pid_start_time = start_time
        self.store.save(self.state)

    def _write_id_maps(self, pid):
        linux = self.spec.linux
        for name, mappings in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
            text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
            path = f"/proc/{pid}/{name}"
            try:
                with open(path, "w") as map_file:
                    map_file.write(text)
            except OSError as error:
                raise InitError(f"linux.{name[:3]}Mappings: write {text.strip()!r} to {path} failed: {error.strerror}") from None

    def hook_state(self, status):
        return self.store.oci_state(self.state, status=status) | {"pid": self.init_pid}

    def _run_create_hooks(self):
        from navio_runtime.hooks import run_hooks

        state = self.hook_state(CREATING)
        run_hooks(self.spec.hooks.get("prestart", ()), state, "prestart")
        run_hooks(self.spec.hooks.get("createRuntime", ()), state, "createRuntime")

    def _reap_intermediate(self):
        if self.intermediate_pid:
            try:
                os.waitpid(self.intermediate_pid, 0)
            except ChildProcessError:
                pass
            self.intermediate_pid = 0

    def tear_down(self):
        """Undo a failed create: kill the init, remove the cgroup and the state directory."""
        if self.init_pid and process_start_time(self.init_pid) is not None:
            try:
                os.kill(self.init_pid, 9)
            except ProcessLookupError:
                pass
            _wait_for_exit(self.init_pid)
        self._reap_intermediate()
        if self.cgroup is not None:
            try:
                self.cgroup.kill_all(9)
                self.cgroup.destroy()
            except (NavioError, OSError) as error:
                log.warning("cleanup of container %s: %s", self.container_id, error)
        self.store.remove(self.container_id)


def _wait_for_exit(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while process_start_time(pid) is not None and time.monotonic() < deadline:
        try:
            # Reap it when it is our child (run makes the runtime the subreaper).
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.005)


def _resources_with_default_devices(resources, devices):
    """Return linux.resources with the runtime's default device rules appended.

    The init joins the cgroup before it creates the nodes of linux.devices, so
    each of them gets an "m" (mknod) rule. Whether the container may read or
    write a node is left to linux.resources.devices, as with runc.
    """
    from navio_runtime.cgroups import default_device_rules

    resources = dict(resources or {})
    rules = list(resources.get("devices") or [{"allow": False, "access": "rwm"}])
    rules += default_device_rules()
    for device in devices:
        if device.type in ("c", "b", "u"):
            kind = "c" if device.type == "u" else device.type
            rules.append({"allow": True, "type": kind, "major": device.major, "minor": device.minor, "access": "m"})
    resources["devices"] = rules
    return resources
