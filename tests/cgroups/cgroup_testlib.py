"""Helpers of the cgroup tests: forked children, cleanup and small utilities.

Imported by tests/cgroups/conftest.py, whose directory pytest puts on sys.path,
and by tests/test_cgroup_commands.py, which adds that directory itself.
"""

import json
import os
import select
import signal
import subprocess
import time

from navio_runtime.cgroups import open_manager

BUSYBOX = "/usr/bin/busybox"

# A container device test opens each node with `<>` (read and write) in a subshell and prints the outcome.
DEVICE_SCRIPT = (
    "for name in allowed denied; do "
    "if (exec 3<>/dev/$name) 2>/dev/null; then echo $name-opened; else echo $name-failed; fi; done"
)

# c 10:200 (tun) and c 10:229 (fuse) open without capabilities and are not among the default devices.
DEVICE_NODES = [
    {"path": "/dev/allowed", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666},
    {"path": "/dev/denied", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
]
DEVICE_RULES = {
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    ]
}


class Child:
    """A forked copy of the test process that waits for `start()` before it runs its function.

    The test moves the child into a cgroup first, so everything the function
    does is charged to and limited by that cgroup. The function's return
    value comes back as JSON through a pipe.
    """

    def __init__(self, pid, go_fd, result_fd):
        self.pid = pid
        self._go_fd = go_fd
        self._result_fd = result_fd
        self.exit_code = None

    def start(self):
        os.write(self._go_fd, b"g")
        os.close(self._go_fd)
        self._go_fd = None

    def wait(self, timeout=60.0):
        """Wait for the child to end and return its exit code (negative: killed by that signal)."""
        if self.exit_code is not None:
            return self.exit_code
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                return self.exit_code
            if time.monotonic() > deadline:
                raise TimeoutError(f"child {self.pid} still running after {timeout} s")
            time.sleep(0.01)

    def result(self, timeout=60.0):
        """Wait for the child and return the value its function returned (None if it wrote none)."""
        self.wait(timeout)
        data = b""
        while select.select([self._result_fd], [], [], 0)[0]:
            chunk = os.read(self._result_fd, 65536)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\n", 1)[0]
        return json.loads(line) if line else None

    def kill(self):
        if self.exit_code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()

    def close(self):
        for fd in (self._go_fd, self._result_fd):
            if fd is not None:
                os.close(fd)
        self._go_fd = self._result_fd = None


class Children:
    """Starts test processes and kills and reaps whatever is left at teardown."""

    def __init__(self):
        self._forked = []
        self._spawned = []

    def fork(self, function):
        """Fork a Child that runs `function()` after start() and sends back its result."""
        go_read, go_write = os.pipe()
        result_read, result_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(go_write)
                os.close(result_read)
                os.read(go_read, 1)
                payload = function()
            except BaseException as err:  # report every failure, then leave without pytest's cleanup
                payload = {"error": repr(err)}
                code = 1
            try:
                os.write(result_write, json.dumps(payload).encode() + b"\n")
            finally:
                os._exit(code)
        os.close(go_read)
        os.close(result_write)
        child = Child(pid, go_write, result_read)
        self._forked.append(child)
        return child

    def spawn(self, *args, **kwargs):
        """Start a process with subprocess.Popen and track it for cleanup."""
        process = subprocess.Popen(*args, **kwargs)
        self._spawned.append(process)
        return process

    def sleepers(self, count, seconds=60, manager=None):
        """Start `count` busybox sleep processes, and move them into `manager`'s cgroup when it is given."""
        processes = [self.spawn([BUSYBOX, "sleep", str(seconds)]) for _ in range(count)]
        if manager is not None:
            for process in processes:
                manager.add_process(process.pid)
        return processes

    def start_in(self, add_process, function):
        """Fork a Child that runs `function()`, move it with `add_process(pid)`, start it and return it."""
        child = self.fork(function)
        add_process(child.pid)
        child.start()
        return child

    def cleanup(self):
        for child in self._forked:
            child.kill()
            child.close()
        for process in self._spawned:
            if process.poll() is None:
                process.kill()
            process.wait()


def wait_until(condition, timeout=10.0, interval=0.01):
    """Poll `condition()` until it returns a true value or `timeout` seconds pass, and return its last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = condition()
    return value


def read(path):
    with open(path) as handle:
        return handle.read().strip()


def read_text(path):
    """Return the content of `path`, or "" when it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def read_lines(path):
    return read_text(path).split()


def file_size(path):
    """Return the size of `path` in bytes, or 0 when it does not exist."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def join_cgroup(directory):
    """Return a function that moves a PID into the cgroup `directory` by writing its cgroup.procs."""

    def add_process(pid):
        with open(os.path.join(directory, "cgroup.procs"), "w") as handle:
            handle.write(str(pid))

    return add_process


def destroy_quietly(manager):
    """Kill what is left in a test cgroup and remove the cgroup (for teardowns)."""
    if not any(os.path.isdir(directory) for directory in manager.directories()):
        return
    try:
        if manager.is_frozen():
            manager.thaw()
    except Exception:  # the freezer may be unavailable, and the kill below still works
        pass
    if manager.pids():
        manager.kill_all(signal.SIGKILL)
        wait_until(lambda: not manager.pids(), timeout=30)
    manager.destroy()


def make_session_parent():
    """Create the session parent cgroup /navio-test-<pid> and return its manager."""
    parent = open_manager(f"navio-test-{os.getpid()}", f"/navio-test-{os.getpid()}")
    parent.create()
    return parent


def open_test_manager(parent, name, create=True):
    """Open (and by default create) the manager of the test cgroup <parent>/<name>."""
    manager = open_manager(name, f"{parent.cgroup_path}/{name}")
    if create:
        manager.create()
    return manager


def whole_disk_numbers(path="/"):
    """Return (major, minor) of the whole disk that holds `path`, for block I/O limits."""
    device = os.stat(path).st_dev
    sys_path = f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"
    if os.path.exists(os.path.join(sys_path, "partition")):
        sys_path = os.path.join(sys_path, "..")
    major, minor = read(os.path.join(sys_path, "dev")).split(":")
    return int(major), int(minor)


def make_device_node(directory, name, source):
    """mknod a copy of the character device `source` in `directory` and return its path."""
    numbers = os.stat(source).st_rdev
    target = os.path.join(directory, name)
    os.mknod(target, 0o666 | 0o020000, os.makedev(os.major(numbers), os.minor(numbers)))
    return target


def open_errno(path, flags=os.O_RDONLY):
    """Open and close `path`, and return 0 on success or the errno of the failure."""
    try:
        os.close(os.open(path, flags))
        return 0
    except OSError as err:
        return err.errno


def open_errno_in(children, add_process, path, flags=os.O_RDONLY):
    """Return the errno of opening `path` from a child moved with `add_process(pid)` (0 when it opens)."""
    return children.start_in(add_process, lambda: open_errno(path, flags)).result()


def mknod_errno(path):
    """Make a character device node 1:3 at `path`, and return 0 on success or the errno of the failure."""
    try:
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 3))
        return 0
    except OSError as err:
        return err.errno


def busy_loop():
    """Spin on the CPU until killed."""
    while True:
        pass


def allocate_and_touch(size):
    """Allocate `size` bytes, write every page and return the size."""
    block = bytearray(size)
    for offset in range(0, size, 4096):
        block[offset] = 1
    return len(block)


def allocate_and_sleep(size, seconds=60):
    """Allocate and touch `size` bytes, then keep them while sleeping `seconds`."""
    block = bytearray(size)
    for offset in range(0, size, 4096):
        block[offset] = 1
    time.sleep(seconds)
    return len(block)


def count_into(path):
    """Write an increasing counter to `path` about every 10 ms until killed."""
    counter = 0
    while True:
        counter += 1
        with open(path, "w") as handle:
            handle.write(str(counter))
        time.sleep(0.01)


def try_fork():
    """Fork once and return 0 when fork succeeded, or the errno of the failure."""
    try:
        pid = os.fork()
    except OSError as err:
        return err.errno
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return 0
