"""Every Linux system call that the runtime needs and Python's `os` lacks.

Each wrapper calls libc through ctypes once, checks the result and raises
`SyscallError` naming the call, its target (path, namespace type or value) and
the errno. Callers never touch ctypes themselves. Importing this module costs
a few milliseconds, so only the commands that build a container import it.

Numbers that libc does not wrap (pivot_root, openat2, ...) are per
architecture; x86_64 and aarch64 are supported.
"""

import ctypes
import os

from navio_runtime.errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

_MACHINE = os.uname().machine

# System call numbers from the kernel's unistd tables (arch/x86/entry/syscalls
# and include/uapi/asm-generic/unistd.h for aarch64).
_SYSCALL_NUMBERS = {
    "x86_64": {
        "pivot_root": 155,
        "openat2": 437,
        "bpf": 321,
        "capget": 125,
        "capset": 126,
        "ioprio_set": 251,
        "ioprio_get": 252,
        "sched_setattr": 314,
        "pidfd_send_signal": 424,
        "seccomp": 317,
        "mount_setattr": 442,
        "set_mempolicy": 238,
    },
    "aarch64": {
        "pivot_root": 41,
        "openat2": 437,
        "bpf": 280,
        "capget": 90,
        "capset": 91,
        "ioprio_set": 30,
        "ioprio_get": 31,
        "sched_setattr": 274,
        "pidfd_send_signal": 424,
        "seccomp": 277,
        "mount_setattr": 442,
        "set_mempolicy": 237,
    },
}


def syscall_number(name):
    """Return the number of system call `name` on this machine's architecture."""
    try:
        return _SYSCALL_NUMBERS[_MACHINE][name]
    except KeyError:
        raise SyscallError(name, 38, f"(no syscall number for architecture {_MACHINE})") from None


def _check(result, call, target=""):
    if result == -1:
        raise SyscallError(call, ctypes.get_errno(), target)
    return result


def _path(value):
    return os.fsencode(value) if value is not None else None


_libc.syscall.restype = ctypes.c_long

# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------

from navio_runtime.linux.namespaces import (  # noqa: E402,F401  (re-exported)
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    NAMESPACE_FLAGS,
    NAMESPACE_PROC_NAMES,
)


def unshare(flags, target=""):
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare", target or hex(flags))


def setns(fd, nstype=0, target=""):
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", target)


# ioctl request that returns the CLONE_NEW* type of a namespace file descriptor.
NS_GET_NSTYPE = 0xB703


def namespace_type_of(fd, path=""):
    """Return the CLONE_NEW* flag of the namespace that `fd` refers to."""
    return _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(NS_GET_NSTYPE)), "ioctl(NS_GET_NSTYPE)", path)


# ---------------------------------------------------------------------------
# Mounts
# ---------------------------------------------------------------------------

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def mount(source, target, fstype, flags=0, data=None, display_target=None):
    """mount(2). `display_target` names the target in errors when `target` is a /proc/self/fd path."""
    result = _libc.mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), _path(data))
    _check(result, "mount", f"{source!r} on {display_target or target} (type {fstype}, flags {flags:#x}, data {data!r})")


def umount2(target, flags=0):
    _check(_libc.umount2(_path(target), ctypes.c_int(flags)), "umount2", str(target))


def pivot_root(new_root, put_old):
    result = _libc.syscall(ctypes.c_long(syscall_number("pivot_root")), _path(new_root), _path(put_old))
    _check(result, "pivot_root", f"{new_root} {put_old}")


# ---------------------------------------------------------------------------
# Path resolution inside a root: openat2(2)
# ---------------------------------------------------------------------------

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0, resolve=0):
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    result = _libc.syscall(
        ctypes.c_long(syscall_number("openat2")),
        ctypes.c_int(dirfd),
        _path(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    return _check(int(result), "openat2", str(path))


# ---------------------------------------------------------------------------
# Host and domain names
# ---------------------------------------------------------------------------


def sethostname(name):
    data = name.encode()
    _check(_libc.sethostname(data, ctypes.c_size_t(len(data))), "sethostname", repr(name))


def setdomainname(name):
    data = name.encode()
    _check(_libc.setdomainname(data, ctypes.c_size_t(len(data))), "setdomainname", repr(name))


# ---------------------------------------------------------------------------
# prctl(2)
# ---------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0, target=""):
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl", target or f"option {option}")


def set_child_subreaper():
    prctl(PR_SET_CHILD_SUBREAPER, 1, target="PR_SET_CHILD_SUBREAPER")


def set_parent_death_signal(signum):
    prctl(PR_SET_PDEATHSIG, signum, target="PR_SET_PDEATHSIG")


def set_dumpable(value):
    prctl(PR_SET_DUMPABLE, 1 if value else 0, target="PR_SET_DUMPABLE")


def set_no_new_privileges():
    prctl(PR_SET_NO_NEW_PRIVS, 1, target="PR_SET_NO_NEW_PRIVS")


def set_process_name(name):
    prctl(PR_SET_NAME, ctypes.cast(ctypes.c_char_p(name.encode()[:15]), ctypes.c_void_p).value, target="PR_SET_NAME")


# ---------------------------------------------------------------------------
# Filesystem magic numbers (f_type of fstatfs(2), see filesystem_magic below)
# ---------------------------------------------------------------------------

PROC_SUPER_MAGIC = 0x9FA0
TMPFS_MAGIC = 0x01021994
DEVPTS_SUPER_MAGIC = 0x1CD1


# ---------------------------------------------------------------------------
# Mount attributes: mount_setattr(2)
# ---------------------------------------------------------------------------

AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(fd, attr_set, attr_clr, recursive=True, target=""):
    """Change the attributes of the mount that `fd` is the root of (and, recursively, of its submounts)."""
    attributes = _MountAttr(attr_set, attr_clr, 0, 0)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    result = _libc.syscall(
        ctypes.c_long(syscall_number("mount_setattr")),
        ctypes.c_int(fd),
        b"",
        ctypes.c_uint(flags),
        ctypes.byref(attributes),
        ctypes.c_size_t(ctypes.sizeof(attributes)),
    )
    _check(int(result), "mount_setattr", target or f"fd {fd}")


# ---------------------------------------------------------------------------
# Raw syscall entry point for the modules that need a call not wrapped above
# (capset, bpf, seccomp, ioprio_set, sched_setattr). Each such module keeps
# its structures next to its logic and calls through here.
# ---------------------------------------------------------------------------


def raw_syscall(name, *args, target=""):
    """Call system call `name` with ctypes-typed `args`; raise SyscallError on -1."""
    result = _libc.syscall(ctypes.c_long(syscall_number(name)), *args)
    return _check(int(result), name, target)


# ---------------------------------------------------------------------------
# Process security attributes: capabilities, I/O priority, scheduler,
# personality, resource limits and the filesystem type of an open file.
# Structure layouts come from <linux/capability.h>, <linux/sched/types.h>,
# <sys/resource.h> and <sys/statfs.h>; they are the same on x86_64 and aarch64.
# ---------------------------------------------------------------------------

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapUserHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapUserData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid=0):
    """Return the (effective, permitted, inheritable) 64-bit capability masks of thread `pid` (0: the caller)."""
    header = _CapUserHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapUserData * 2)()
    raw_syscall("capget", ctypes.byref(header), data, target=f"pid {pid}")
    effective = data[0].effective | (data[1].effective << 32)
    permitted = data[0].permitted | (data[1].permitted << 32)
    inheritable = data[0].inheritable | (data[1].inheritable << 32)
    return effective, permitted, inheritable


def capset(effective, permitted, inheritable):
    """Set the effective, permitted and inheritable capability masks of the calling thread (capset v3)."""
    header = _CapUserHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapUserData * 2)()
    for index, shift in enumerate((0, 32)):
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    target = f"effective {effective:#x} permitted {permitted:#x} inheritable {inheritable:#x}"
    raw_syscall("capset", ctypes.byref(header), data, target=target)


IOPRIO_WHO_PROCESS = 1
IOPRIO_WHO_PGRP = 2
IOPRIO_WHO_USER = 3


def ioprio_set(which, who, ioprio):
    target = f"which {which} who {who} ioprio {ioprio:#x}"
    raw_syscall("ioprio_set", ctypes.c_int(which), ctypes.c_int(who), ctypes.c_int(ioprio), target=target)


def ioprio_get(which, who):
    """Return the I/O priority value (class << 13 | data) of the process, group or user `who`."""
    return raw_syscall("ioprio_get", ctypes.c_int(which), ctypes.c_int(who), target=f"which {which} who {who}")


class _SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    """sched_setattr(2) with the 56-byte struct (SCHED_ATTR_SIZE_VER1); utilization clamps stay 0."""
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period, 0, 0)
    target = (
        f"pid {pid} policy {policy} flags {flags:#x} nice {nice} priority {priority} "
        f"runtime {runtime} deadline {deadline} period {period}"
    )
    raw_syscall("sched_setattr", ctypes.c_int(pid), ctypes.byref(attr), ctypes.c_uint(0), target=target)


# personality(2) with this value only returns the current persona.
PERSONALITY_QUERY = 0xFFFFFFFF

_libc.personality.argtypes = [ctypes.c_ulong]
_libc.personality.restype = ctypes.c_int


def personality(persona):
    """Set the execution domain of the calling process and return the previous one."""
    return _check(_libc.personality(persona), "personality", f"{persona:#x}")


class _Rlimit(ctypes.Structure):
    _fields_ = [("rlim_cur", ctypes.c_uint64), ("rlim_max", ctypes.c_uint64)]


_libc.prlimit.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Rlimit), ctypes.POINTER(_Rlimit)]


def prlimit(pid, resource, soft=None, hard=None, name=""):
    """Return the old (soft, hard) limit of `resource` for `pid` (0: the caller) and set new ones if given.

    Limits are unsigned 64-bit values, so RLIM_INFINITY is 2**64 - 1 and needs no special case.
    """
    old = _Rlimit()
    new = None
    target = name or f"resource {resource}"
    if soft is not None or hard is not None:
        new = _Rlimit(soft, hard)
        target = f"{target} soft {soft} hard {hard}"
    _check(_libc.prlimit(pid, resource, new, ctypes.byref(old)), "prlimit", target)
    return old.rlim_cur, old.rlim_max


# Large enough for struct statfs on every 64-bit Linux architecture (120 bytes).
_STATFS_BUFFER_SIZE = 256


def filesystem_magic(fd, path=""):
    """Return the f_type magic number of the filesystem that contains open file `fd` (fstatfs(2))."""
    buffer = ctypes.create_string_buffer(_STATFS_BUFFER_SIZE)
    _check(_libc.fstatfs(ctypes.c_int(fd), buffer), "fstatfs", path or f"fd {fd}")
    # f_type is the first member, a long (__fsword_t) on 64-bit architectures.
    return ctypes.c_long.from_buffer(buffer, 0).value & 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------
# Renaming with flags: renameat2(2), wrapped by glibc 2.28 and later
# ---------------------------------------------------------------------------

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(old_path, new_path, flags=0):
    """Rename `old_path` to `new_path` with renameat2(2) `flags`.

    With RENAME_EXCHANGE both paths must exist, and the kernel swaps them in one
    atomic step, so every other process finds either the old or the new entry at each name.
    """
    at_fdcwd = -100
    result = _libc.renameat2(
        ctypes.c_int(at_fdcwd), _path(old_path), ctypes.c_int(at_fdcwd), _path(new_path), ctypes.c_uint(flags)
    )
    _check(result, "renameat2", f"{old_path} {new_path}")
