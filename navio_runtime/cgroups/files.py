"""Reading and writing cgroup control files.

Every failure raises `CgroupFileError`, whose message names the operation,
the file, the value written and the errno, for example
`write "100M" to /sys/fs/cgroup/navio/x/memory.max: Invalid argument (EINVAL)`.
"""

import errno as _errno
import os

from navio_runtime.errors import CgroupError

# Value that cgroup v1 reports for "no limit" in *.limit_in_bytes files
# (PAGE_COUNTER_MAX pages rounded down to the page size on x86_64).
# cgroup v2 writes "max" instead. Stats report both as UNLIMITED.
UNLIMITED = 2**64 - 1


class CgroupFileError(CgroupError):
    """A cgroup control file could not be read or written.

    `path` is the file, `value` the string written (None for reads) and
    `errno` the error number from the kernel.
    """

    def __init__(self, operation, path, errnum, value=None):
        name = _errno.errorcode.get(errnum, str(errnum))
        target = f'{operation} "{value}" to {path}' if value is not None else f"{operation} {path}"
        super().__init__(f"{target}: {os.strerror(errnum)} ({name})")
        self.path = path
        self.value = value
        self.errno = errnum


def write(path, value):
    """Write `value` (converted with str) to the control file `path` in one write(2).

    The file is opened without O_CREAT, because cgroupfs never creates files
    and a missing file must be reported as ENOENT.
    """
    data = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupFileError("write", path, err.errno, data) from None
    try:
        os.write(fd, data.encode())
    except OSError as err:
        raise CgroupFileError("write", path, err.errno, data) from None
    finally:
        os.close(fd)


def write_lines(path, value):
    """Write each non-empty line of `value` with its own write(2).

    Keyed files such as io.max or rdma.max parse one entry per write, so a
    multi-line value written at once would be rejected with EINVAL.
    """
    for line in str(value).split("\n"):
        if line.strip():
            write(path, line)


def read(path):
    """Return the content of the control file `path` without the trailing newline."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode().rstrip("\n")
    except OSError as err:
        raise CgroupFileError("read", path, err.errno) from None


def read_optional(path, default=None):
    """Return the content of `path`, or `default` when the file does not exist."""
    try:
        return read(path)
    except CgroupFileError as err:
        if err.errno == _errno.ENOENT:
            return default
        raise


def parse_uint(text, path=""):
    """Parse a counter or limit, where "max" and the v1 unlimited value become UNLIMITED."""
    text = text.strip()
    if text == "max":
        return UNLIMITED
    try:
        value = int(text)
    except ValueError:
        raise CgroupError(f"parse {path}: expected an integer or \"max\", got {text!r}") from None
    # cgroup v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE (9223372036854771712 on x86_64).
    if value >= 2**63 - 4096:
        return UNLIMITED
    return max(value, 0)


def read_uint(path, default=0):
    """Read a single-value file as an integer, or return `default` when the file is missing."""
    text = read_optional(path)
    if text is None or text == "":
        return default
    return parse_uint(text, path)


def _split_lines(path):
    """Return the whitespace-separated fields of each line of `path` ([] when the file is missing or empty)."""
    text = read_optional(path)
    if not text:
        return []
    return [line.split() for line in text.splitlines()]


def read_flat_keyed(path):
    """Parse a "key value" per line file (memory.stat, cpu.stat, memory.events).

    A missing file returns an empty dict.
    """
    result = {}
    for parts in _split_lines(path):
        if len(parts) == 2:
            result[parts[0]] = parse_uint(parts[1], path)
    return result


def read_nested_keyed(path):
    """Parse a "key sub=value sub=value" per line file (io.stat, rdma.current).

    Returns {key: {sub: value}}, or an empty dict when the file is missing.
    """
    result = {}
    for parts in _split_lines(path):
        if not parts:
            continue
        entry = result.setdefault(parts[0], {})
        for field in parts[1:]:
            name, _, value = field.partition("=")
            entry[name] = parse_uint(value, path) if value else 0
    return result


def read_pids(path):
    """Return the PIDs listed in the cgroup.procs file `path` (missing file: empty list)."""
    text = read_optional(path, "")
    return [int(line) for line in text.split()]


def list_child_cgroups(directory):
    """Return the paths of the child cgroups (subdirectories) of `directory`."""
    try:
        with os.scandir(directory) as entries:
            return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except OSError as err:
        raise CgroupFileError("list", directory, err.errno) from None


def walk_cgroups(directory):
    """Yield `directory` and every cgroup below it, parents before children."""
    pending = [directory]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(list_child_cgroups(current))
