"""Apply the per-process attributes of config.json inside the container's init.

The init calls these functions after pivot_root and before execve: resource
limits (before the user switch), OOM score, I/O priority, scheduler,
personality, the AppArmor profile and SELinux label for the next execve, CPU
affinity and no_new_privs. Each `apply_*` function does nothing when its
config value is None, so the init can pass `process.get(...)` directly.

Every write under /proc goes through `write_proc_file`. A container image can
mount a file over /proc/self/attr/exec or /proc/self/oom_score_adj, or point
the path at another procfs file such as /proc/sysrq-trigger, to redirect the
runtime's write. The runc security releases 1.2.8 and 1.3.3 (November 2025)
describe such attacks. `write_proc_file` therefore resolves the path from a
verified procfs root without crossing a mount, and it checks the opened
file's filesystem type before it writes.
"""

import errno
import os

from navio_runtime.errors import ProcessAttributeError, SpecError
from navio_runtime.init import capabilities
from navio_runtime.linux import syscalls
from navio_runtime.log import get_logger

logger = get_logger(__name__)

# f_type of procfs (<linux/magic.h>) and the inode number of its root directory.
PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INODE = 1

RLIM_INFINITY = 2**64 - 1

# RLIMIT_* numbers from <asm-generic/resource.h>, which x86_64 and aarch64 use.
# Python's resource module lacks RLIMIT_LOCKS, so the table is written out.
RLIMIT_NUMBERS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# I/O scheduling classes from <linux/ioprio.h>. The class is stored above 13 bits of priority data.
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13

# Scheduling policies and sched_setattr flags from <linux/sched.h>. SCHED_ISO
# is reserved there but not implemented by mainline kernels, which reject it
# with EINVAL.
SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

# Execution domains from <linux/personality.h> that the runtime spec allows.
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

# Size of the "all CPUs" mask, as in runc. The kernel clamps the mask to the CPUs that exist.
_MAX_CPUS = 8192


# ---------------------------------------------------------------------------
# Checked writes to procfs
# ---------------------------------------------------------------------------


def write_proc_file(relative_path, data):
    """Write `data` to /proc/<relative_path> after proving that the file is the real procfs file.

    /proc must be the root of a procfs mount (f_type PROC_SUPER_MAGIC, inode
    1). The path is resolved from there with openat2 RESOLVE_NO_XDEV, so a
    mount over any component fails with EXDEV, and the opened file must be on
    procfs too. Raises ProcessAttributeError when a check fails and OSError
    when the write itself fails.
    """
    path = f"/proc/{relative_path}"
    root_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        root_magic = syscalls.filesystem_magic(root_fd, "/proc")
        root_inode = os.fstat(root_fd).st_ino
        if root_magic != PROC_SUPER_MAGIC or root_inode != PROC_ROOT_INODE:
            raise ProcessAttributeError(
                f"refusing to write {path}: /proc is not the root of a procfs mount "
                f"(filesystem type {root_magic:#x}, inode {root_inode})"
            )
        fd = _open_beneath_proc(root_fd, relative_path, path)
    finally:
        os.close(root_fd)

    try:
        magic = syscalls.filesystem_magic(fd, path)
        if magic != PROC_SUPER_MAGIC:
            raise ProcessAttributeError(
                f"refusing to write {path}: the file is not on procfs (filesystem type {magic:#x})"
            )
        payload = data.encode()
        written = os.write(fd, payload)
        if written != len(payload):
            raise ProcessAttributeError(f"short write to {path}: {written} of {len(payload)} bytes of {data!r}")
    finally:
        os.close(fd)


def _open_beneath_proc(root_fd, relative_path, path):
    flags = os.O_WRONLY | os.O_NOCTTY
    resolve = syscalls.RESOLVE_NO_XDEV | syscalls.RESOLVE_NO_MAGICLINKS
    try:
        return syscalls.openat2(root_fd, relative_path, flags, resolve=resolve)
    except OSError as err:
        if err.errno == errno.EXDEV:
            raise ProcessAttributeError(
                f"refusing to write {path}: another mount covers part of the path (EXDEV)"
            ) from err
        if err.errno != errno.ENOSYS:
            raise
    # openat2 needs Linux 5.6. Older kernels get only the filesystem type check.
    logger.debug("openat2 is not available; opening %s without the mount crossing check", path)
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def _errno_name(err):
    return errno.errorcode.get(err.errno, str(err.errno))


# ---------------------------------------------------------------------------
# Resource limits
# ---------------------------------------------------------------------------


def _format_limit(value):
    return "unlimited" if value == RLIM_INFINITY else str(value)


def _is_uint64(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= RLIM_INFINITY


def validate_rlimits(rlimits):
    """Check `process.rlimits` and return (type, resource number, soft, hard) tuples in config order.

    Raises SpecError listing every entry with an unknown RLIMIT_* type, a
    missing or out-of-range soft or hard value, a soft value above the hard
    value, or a type that appears twice (the runtime spec requires an error
    for duplicates).
    """
    problems = []
    checked = []
    seen = set()
    for index, entry in enumerate(rlimits or ()):
        where = f"process.rlimits[{index}]"
        if not isinstance(entry, dict):
            problems.append((where, f"expected an object, got {entry!r}"))
            continue
        name = entry.get("type")
        soft = entry.get("soft")
        hard = entry.get("hard")
        entry_problems = []
        if name not in RLIMIT_NUMBERS:
            known = ", ".join(RLIMIT_NUMBERS)
            entry_problems.append((f"{where}.type", f"unknown rlimit type {name!r}; known types: {known}"))
        elif name in seen:
            entry_problems.append((f"{where}.type", f"duplicate rlimit type {name}"))
        for field, value in (("soft", soft), ("hard", hard)):
            if not _is_uint64(value):
                entry_problems.append((f"{where}.{field}", f"expected an integer from 0 to 2**64-1, got {value!r}"))
        if not entry_problems and soft > hard:
            entry_problems.append((where, f"{name} soft limit {soft} is above its hard limit {hard}"))
        if entry_problems:
            problems.extend(entry_problems)
            continue
        seen.add(name)
        checked.append((name, RLIMIT_NUMBERS[name], soft, hard))

    if problems:
        details = "; ".join(f"{path}: {message}" for path, message in problems)
        raise SpecError(f"invalid process.rlimits: {details}", problems)
    return checked


def apply_rlimits(rlimits):
    """Set every limit of `process.rlimits` on the calling process with prlimit(2).

    Call this before the user switch. Only a process with CAP_SYS_RESOURCE can
    raise a hard limit above its current value, so a host whose bounding set
    lacks CAP_SYS_RESOURCE rejects such a config. runc behaves the same, and
    the error names the limit that failed and the reason.
    """
    for name, resource, soft, hard in validate_rlimits(rlimits):
        try:
            syscalls.prlimit(0, resource, soft, hard, name=name)
        except OSError as err:
            raise ProcessAttributeError(_explain_rlimit_failure(name, resource, soft, hard, err)) from err
        logger.debug("set %s to soft %s hard %s", name, _format_limit(soft), _format_limit(hard))


def _explain_rlimit_failure(name, resource, soft, hard, err):
    request = f"cannot set {name} to soft {_format_limit(soft)} hard {_format_limit(hard)}"
    reason = os.strerror(err.errno)
    if err.errno == errno.EPERM:
        _, current_hard = syscalls.prlimit(0, resource)
        nr_open = _read_nr_open() if name == "RLIMIT_NOFILE" else None
        if nr_open is not None and hard > nr_open:
            reason = f"the hard limit is above fs.nr_open ({nr_open}), the kernel's maximum for RLIMIT_NOFILE"
        elif hard > current_hard:
            reason = (
                f"raising the hard limit above the current hard limit {_format_limit(current_hard)} "
                f"requires CAP_SYS_RESOURCE, and {capabilities.describe_missing('CAP_SYS_RESOURCE')}, "
                f"so request a hard limit of at most {_format_limit(current_hard)}"
            )
    return f"{request}: {reason} ({_errno_name(err)})"


def _read_nr_open():
    try:
        with open("/proc/sys/fs/nr_open") as file:
            return int(file.read())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# OOM score, I/O priority, scheduler, personality
# ---------------------------------------------------------------------------


def apply_oom_score_adj(value):
    """Write `process.oomScoreAdj` to /proc/self/oom_score_adj, or leave the file untouched when it is None."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        raise SpecError(f"process.oomScoreAdj: expected an integer from -1000 to 1000, got {value!r}")

    try:
        write_proc_file("self/oom_score_adj", str(value))
    except ProcessAttributeError:
        raise
    except OSError as err:
        message = f"cannot set /proc/self/oom_score_adj to {value}: {os.strerror(err.errno)} ({_errno_name(err)})"
        if err.errno == errno.EACCES:
            message += (
                "; lowering it below the minimum inherited from the parent requires CAP_SYS_RESOURCE, "
                f"and {capabilities.describe_missing('CAP_SYS_RESOURCE')}"
            )
        raise ProcessAttributeError(message) from err


def apply_io_priority(io_priority):
    """Set `process.ioPriority` ({"class": "IOPRIO_CLASS_*", "priority": 0-7}) with ioprio_set(2)."""
    if io_priority is None:
        return
    io_class = io_priority.get("class")
    priority = io_priority.get("priority")
    if io_class not in IOPRIO_CLASSES:
        known = ", ".join(IOPRIO_CLASSES)
        raise SpecError(f"process.ioPriority.class: unknown class {io_class!r}; known classes: {known}")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 7:
        raise SpecError(f"process.ioPriority.priority: expected an integer from 0 to 7, got {priority!r}")

    value = IOPRIO_CLASSES[io_class] << IOPRIO_CLASS_SHIFT | priority
    try:
        syscalls.ioprio_set(syscalls.IOPRIO_WHO_PROCESS, 0, value)
    except OSError as err:
        message = f"cannot set the I/O priority to {io_class} {priority}: {os.strerror(err.errno)} ({_errno_name(err)})"
        if err.errno == errno.EPERM and io_class == "IOPRIO_CLASS_RT":
            message += "; the real-time class requires CAP_SYS_NICE or CAP_SYS_ADMIN"
        raise ProcessAttributeError(message) from err


def apply_scheduler(scheduler):
    """Set `process.scheduler` (policy, nice, priority, flags, runtime, deadline, period) with sched_setattr(2)."""
    if scheduler is None:
        return
    policy_name = scheduler.get("policy")
    if policy_name not in SCHED_POLICIES:
        known = ", ".join(SCHED_POLICIES)
        raise SpecError(f"process.scheduler.policy: unknown policy {policy_name!r}; known policies: {known}")
    flags = 0
    for flag in scheduler.get("flags") or ():
        if flag not in SCHED_FLAGS:
            known = ", ".join(SCHED_FLAGS)
            raise SpecError(f"process.scheduler.flags: unknown flag {flag!r}; known flags: {known}")
        flags |= SCHED_FLAGS[flag]
    nice = _scheduler_integer(scheduler, "nice", -20, 19)
    priority = _scheduler_integer(scheduler, "priority", 0, 2**31 - 1)
    runtime = _scheduler_integer(scheduler, "runtime", 0, 2**64 - 1)
    deadline = _scheduler_integer(scheduler, "deadline", 0, 2**64 - 1)
    period = _scheduler_integer(scheduler, "period", 0, 2**64 - 1)

    # NOTE: the spec has no utilization clamp values, so with
    # SCHED_FLAG_UTIL_CLAMP_MIN/MAX the kernel gets 0 for both, as runc sends.
    try:
        syscalls.sched_setattr(0, SCHED_POLICIES[policy_name], flags, nice, priority, runtime, deadline, period)
    except OSError as err:
        message = (
            f"cannot set the scheduler to {policy_name} (nice {nice}, priority {priority}, flags {flags:#x}, "
            f"runtime {runtime}, deadline {deadline}, period {period}): {os.strerror(err.errno)} ({_errno_name(err)})"
        )
        raise ProcessAttributeError(message) from err


def _scheduler_integer(scheduler, field, minimum, maximum):
    value = scheduler.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise SpecError(f"process.scheduler.{field}: expected an integer from {minimum} to {maximum}, got {value!r}")
    return value


def apply_personality(personality):
    """Set the execution domain of `linux.personality` (LINUX or LINUX32) with personality(2).

    The runtime spec defines no flag values yet, so flags are logged as a
    warning and ignored, as runc does.
    """
    if personality is None:
        return
    domain = personality.get("domain")
    if domain not in PERSONALITY_DOMAINS:
        known = ", ".join(PERSONALITY_DOMAINS)
        raise SpecError(f"linux.personality.domain: unknown domain {domain!r}; known domains: {known}")
    flags = personality.get("flags") or []
    if flags:
        logger.warning("ignoring linux.personality.flags %s: the runtime spec defines no flag values", flags)

    try:
        syscalls.personality(PERSONALITY_DOMAINS[domain])
    except OSError as err:
        raise ProcessAttributeError(
            f"cannot set the personality to {domain}: {os.strerror(err.errno)} ({_errno_name(err)})"
        ) from err


# ---------------------------------------------------------------------------
# Linux security modules: AppArmor profile and SELinux label for the next execve
# ---------------------------------------------------------------------------

_lsm_state = {}


def detect_security_modules():
    """Return {"apparmor": bool, "selinux": bool}, the LSMs that this host enables.

    The result comes from sysfs and is cached when this module is imported.
    """
    if not _lsm_state:
        _lsm_state["apparmor"] = _read_flag("/sys/module/apparmor/parameters/enabled") == "Y"
        _lsm_state["selinux"] = os.path.exists("/sys/fs/selinux/enforce")
    return dict(_lsm_state)


def _read_flag(path):
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return ""


# The init imports this module before pivot_root, so the result comes from the host's sysfs
# even when the container mounts no /sys. Without it, a missing /sys would silently drop an
# SELinux label.
detect_security_modules()


def apply_apparmor_profile(profile):
    """Make the next execve switch to AppArmor `profile` ("exec <profile>" to attr/apparmor/exec).

    When the host has AppArmor disabled, an empty profile or "unconfined" is a
    no-op and any other profile raises ProcessAttributeError, as with runc.
    """
    if not profile:
        return
    if not detect_security_modules()["apparmor"]:
        if profile == "unconfined":
            return
        raise ProcessAttributeError(
            f"cannot apply AppArmor profile {profile!r}: AppArmor is not enabled on this host "
            "(/sys/module/apparmor/parameters/enabled is not Y); remove process.apparmorProfile "
            "or set it to \"unconfined\""
        )

    # NOTE: this branch is not tested here, because the test host has AppArmor disabled.
    command = f"exec {profile}"
    try:
        write_proc_file("thread-self/attr/apparmor/exec", command)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise ProcessAttributeError(
                f"cannot apply AppArmor profile {profile!r}: {os.strerror(err.errno)} ({_errno_name(err)})"
            ) from err
        # Kernels before 5.1 have only the shared attribute file.
        _write_lsm_attribute("thread-self/attr/exec", command, f"AppArmor profile {profile!r}")


def apply_selinux_label(label):
    """Make the next execve run with SELinux `label` (written to attr/exec).

    When SELinux is not enabled (no /sys/fs/selinux/enforce), the label is
    logged at debug level and ignored. runc does the same, and podman only
    generates labels on hosts that enable SELinux.
    """
    if not label:
        return
    if not detect_security_modules()["selinux"]:
        logger.debug("ignoring SELinux label %r: SELinux is not enabled on this host", label)
        return

    # NOTE: this branch is not tested here, because the test host has no SELinux.
    _write_lsm_attribute("thread-self/attr/exec", label, f"SELinux label {label!r}")


def _write_lsm_attribute(relative_path, data, attribute_name):
    try:
        write_proc_file(relative_path, data)
    except ProcessAttributeError:
        raise
    except OSError as err:
        raise ProcessAttributeError(
            f"cannot apply {attribute_name} through /proc/{relative_path}: {os.strerror(err.errno)} ({_errno_name(err)})"
        ) from err


# ---------------------------------------------------------------------------
# CPU affinity and no_new_privs
# ---------------------------------------------------------------------------


def parse_cpu_list(text, where="process.execCPUAffinity"):
    """Return the set of CPU numbers in a list such as "0-3,7", or raise SpecError if it is malformed."""
    cpus = set()
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise SpecError(f"{where}: invalid CPU list {text!r}; expected a list such as \"0-3,7\"")
        start = int(first)
        end = int(last) if dash else start
        if end < start:
            raise SpecError(f"{where}: invalid CPU range {part!r} in {text!r}; the range is reversed")
        cpus.update(range(start, end + 1))
    return cpus


def apply_exec_cpu_affinity(value, final):
    """Set the CPU affinity of `process.execCPUAffinity` for the calling process.

    The runtime spec defines `initial` for the time before the process joins
    the container's cgroup (final=False) and `final` for the time after it
    (final=True). When `final` is omitted or empty, final=True resets the
    affinity to every CPU and the kernel limits it to the cgroup's cpuset,
    which is the container's default affinity. Nothing changes when `value`
    is None. The spec says the setting does not apply to the container's init
    process, so callers pass it for `exec` processes.
    """
    if not value:
        return
    key = "final" if final else "initial"
    where = f"process.execCPUAffinity.{key}"
    text = value.get(key)
    if text:
        cpus = parse_cpu_list(text, where)
    elif final:
        cpus = set(range(_MAX_CPUS))
        text = "all CPUs of the cgroup's cpuset"
    else:
        return

    try:
        os.sched_setaffinity(0, cpus)
    except OSError as err:
        raise ProcessAttributeError(
            f"cannot set the CPU affinity from {where} to {text}: {os.strerror(err.errno)} ({_errno_name(err)})"
        ) from err


def set_no_new_privileges():
    """Set no_new_privs (PR_SET_NO_NEW_PRIVS), so execve can never grant privileges again."""
    syscalls.set_no_new_privileges()
