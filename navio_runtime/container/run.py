"""`run`: create and start a container; in the foreground, wait for it and return its exit status."""

import os
import signal

from navio_runtime.container.create import create
from navio_runtime.container.delete import delete
from navio_runtime.container.start import start
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Signals that `run` passes on to the container instead of acting on them itself.
FORWARDED_SIGNALS = (
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM,
)


def run(container_id, bundle, root=None, pid_file=None, detach=False, no_pivot=False,
        preserve_fds=0, systemd_cgroup=False, console_socket=None, keep=False):
    """Run the container. Detached, return 0 once it runs; else return its exit status.

    The exit status is the process's own, or 128+N when signal N killed it.
    Unless `keep` is set, a foreground container is deleted after it exits, as runc does.
    """
    forwarder = None
    before_fork = None
    proxy = None
    if not detach and console_socket is None and _wants_terminal(bundle):
        from navio_runtime.container.console_proxy import ConsoleProxy

        # Like runc without --console-socket: this process becomes the terminal's other end.
        proxy = ConsoleProxy()
        console_socket = proxy.path
    if not detach:
        from navio_runtime.linux.syscalls import set_child_subreaper

        # Handlers go in before create, so a signal that arrives during create,
        # start or a poststart hook is queued and passed on, not fatal to run.
        forwarder = SignalForwarder()
        forwarder.install()
        # The init is a grandchild; as subreaper this process inherits it and can wait for it.
        before_fork = set_child_subreaper

    try:
        state = create(container_id, bundle, root=root, pid_file=pid_file, no_pivot=no_pivot,
                       preserve_fds=preserve_fds, systemd_cgroup=systemd_cgroup, console_socket=console_socket,
                       before_fork=before_fork)
        try:
            if forwarder is not None:
                forwarder.set_target(state.pid)
            start(container_id, root=root)
        except BaseException:
            delete(container_id, force=True, root=root)
            raise
        if detach:
            return 0

        if proxy is not None:
            proxy.receive_master()
            status = proxy.copy_until_exit(state.pid, poll_exit)
        else:
            status = wait_for_exit(state.pid)
    finally:
        if forwarder is not None:
            forwarder.restore()
        if proxy is not None:
            proxy.close()

    if not keep:
        delete(container_id, force=True, root=root)
    return status


class SignalForwarder:
    """Pass the signals that `run` or `exec` receives on to the container process."""

    def __init__(self):
        self.target = 0
        self.pending = []
        self.previous = {}

    def install(self):
        for signum in FORWARDED_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)

    def set_target(self, pid):
        """Forward to `pid` from now on, starting with the signals queued so far."""
        self.target = pid
        pending, self.pending = self.pending, []
        for signum in pending:
            self._send(signum)

    def restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _handle(self, signum, frame):
        if self.target:
            self._send(signum)
        else:
            self.pending.append(signum)

    def _send(self, signum):
        try:
            os.kill(self.target, signum)
        except ProcessLookupError:
            pass


def _wants_terminal(bundle):
    """Return process.terminal of the bundle's config.json (create validates it later)."""
    import json

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as config_file:
            config = json.load(config_file)
    except (OSError, ValueError):
        return False
    process = config.get("process") if isinstance(config, dict) else None
    return isinstance(process, dict) and process.get("terminal") is True


def poll_exit(pid):
    """Reap the children that have exited; return the exit status of `pid` once it has, else None."""
    while True:
        try:
            child, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 255
        if child == 0:
            return None
        if child == pid:
            return exit_status(wait_status)


def wait_for_exit(pid):
    """Wait for `pid`, reaping every other child inherited as subreaper, and return its exit status."""
    while True:
        try:
            child, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if child == pid:
            return exit_status(wait_status)


def wait_forwarding_signals(pid):
    forwarder = SignalForwarder()
    forwarder.install()
    forwarder.set_target(pid)
    try:
        return wait_for_exit(pid)
    finally:
        forwarder.restore()


def exit_status(wait_status):
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)
