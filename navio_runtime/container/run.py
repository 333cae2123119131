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
    before_fork = None
    if not detach:
        from navio_runtime.linux.syscalls import set_child_subreaper

        # The init is a grandchild; as subreaper this process inherits it and can wait for it.
        before_fork = set_child_subreaper

    state = create(container_id, bundle, root=root, pid_file=pid_file, no_pivot=no_pivot,
                   preserve_fds=preserve_fds, systemd_cgroup=systemd_cgroup, console_socket=console_socket,
                   before_fork=before_fork)
    try:
        start(container_id, root=root)
    except BaseException:
        delete(container_id, force=True, root=root)
        raise
    if detach:
        return 0

    status = _wait_forwarding_signals(state.pid)
    if not keep:
        delete(container_id, force=True, root=root)
    return status


def _wait_forwarding_signals(pid):
    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        while True:
            # Reap every child we inherit as subreaper; stop when the init is gone.
            try:
                child, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if child == pid:
                return exit_status(wait_status)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exit_status(wait_status):
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)
