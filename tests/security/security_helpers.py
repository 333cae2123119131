"""Run the security modules in forked children and observe the result from outside.

Each test forks a child that applies attributes to itself and then executes
the static busybox, so the parent observes what a user of the container would see.
Every child ends with os._exit or execve and is always reaped, and a child
that runs longer than its timeout is killed by its pid.
"""

import contextlib
import dataclasses
import logging
import os
import select
import signal
import tempfile
import time
import traceback

BUSYBOX = "/usr/bin/busybox"

# Exit code of a child whose `prepare` function raised; the traceback is on its stderr.
PREPARE_FAILED = 70

DEFAULT_TIMEOUT = 30


@dataclasses.dataclass
class ChildResult:
    exit_code: int  # the exit status, or minus the signal number that killed the child
    stdout: str
    stderr: str


def _configure_child_logging():
    # pytest's log capture handlers live in the parent's memory, so the child
    # sends the runtime's log records to its stderr file instead.
    stream = os.fdopen(os.dup(2), "w", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    runtime_logger = logging.getLogger("navio_runtime")
    runtime_logger.handlers[:] = [handler]
    runtime_logger.setLevel(logging.DEBUG)
    runtime_logger.propagate = False


def wait_for_exit(pid, timeout=DEFAULT_TIMEOUT):
    """Reap child `pid` and return its exit code (minus the signal number); kill it after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not exit within {timeout} s and was killed")
        time.sleep(0.01)


class StartedChild:
    """A forked child whose stdout and stderr go to temporary files until `finish` reaps it."""

    def __init__(self, pid, stdout, stderr):
        self.pid = pid
        self._stdout = stdout
        self._stderr = stderr
        self._result = None

    def finish(self, timeout=DEFAULT_TIMEOUT):
        """Reap the child (killing it after `timeout` seconds) and return its ChildResult."""
        if self._result is None:
            try:
                exit_code = wait_for_exit(self.pid, timeout)
                self._stdout.seek(0)
                self._stderr.seek(0)
                self._result = ChildResult(exit_code, self._stdout.read().decode(), self._stderr.read().decode())
            finally:
                self._stdout.close()
                self._stderr.close()
        return self._result


def start_child(prepare, argv=None):
    """Fork, call `prepare()` in the child, then exec busybox with `argv` (or exit 0 when argv is None).

    `prepare` may write its own findings to fd 1. The caller must call
    `finish()` on the returned StartedChild, also when its test fails.
    """
    stdout = tempfile.TemporaryFile()
    stderr = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        exit_code = PREPARE_FAILED
        try:
            os.dup2(stdout.fileno(), 1)
            os.dup2(stderr.fileno(), 2)
            _configure_child_logging()
            prepare()
            if argv is not None:
                os.execv(BUSYBOX, ["busybox", *argv])
            exit_code = 0
        except BaseException:
            os.write(2, traceback.format_exc().encode())
        finally:
            os._exit(exit_code)
    return StartedChild(pid, stdout, stderr)


def run_child(prepare, argv=None, timeout=DEFAULT_TIMEOUT):
    """Run `start_child(prepare, argv)` to the end and return its ChildResult."""
    return start_child(prepare, argv).finish(timeout)


def report(text):
    """Write `text` to the child's stdout (fd 1) for the parent to read."""
    os.write(1, text.encode())


@contextlib.contextmanager
def held_child(prepare, timeout=DEFAULT_TIMEOUT):
    """Yield the pid of a child that ran `prepare()` and now executes `busybox cat` with its stdin held open.

    The parent can inspect /proc/<pid> while the child is blocked, and the
    child exits when the context ends and its stdin closes.
    """
    stdin_read, stdin_write = os.pipe()
    # The child's copy of exec_write closes at execve, so EOF without data means the exec succeeded.
    exec_read, exec_write = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(stdin_write)
            os.close(exec_read)
            os.dup2(stdin_read, 0)
            null = os.open("/dev/null", os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            prepare()
            os.execv(BUSYBOX, ["busybox", "cat"])
        except BaseException:
            os.write(exec_write, traceback.format_exc().encode())
        finally:
            os._exit(PREPARE_FAILED)

    os.close(stdin_read)
    os.close(exec_write)
    try:
        failure = _read_until_eof(exec_read, timeout)
        if failure:
            raise AssertionError(f"child {pid} failed before exec:\n{failure}")
        yield pid
    finally:
        os.close(exec_read)
        os.close(stdin_write)
        wait_for_exit(pid, timeout)


def _read_until_eof(fd, timeout):
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("child did not reach exec in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


def status_fields(text):
    """Parse /proc/<pid>/status text into a {field: value} dict."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def capability_mask(*numbers):
    mask = 0
    for number in numbers:
        mask |= 1 << number
    return mask


def switch_user(uid, gid):
    """Switch the calling child to `uid`/`gid` with no supplementary groups, as the init does."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
