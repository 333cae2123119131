"""The final steps of the init: the container user, cwd, environment and execve."""

import errno
import os
import signal
import stat

from navio_runtime.errors import InitError
from navio_runtime.linux import syscalls as sc

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_user(ctx, op):
    args = op.args
    uid, gid = args["uid"], args["gid"]

    # setgroups is denied in a user namespace whose /proc/<pid>/setgroups contains "deny".
    if _setgroups_allowed():
        os.setgroups(args["additional_gids"])
    elif args["additional_gids"]:
        raise InitError("process.user.additionalGids: setgroups is denied in this user namespace")

    try:
        os.setresgid(gid, gid, gid)
    except OSError as error:
        raise InitError(f"process.user.gid {gid}: setresgid failed: {error.strerror}") from None
    try:
        os.setresuid(uid, uid, uid)
    except OSError as error:
        raise InitError(f"process.user.uid {uid}: setresuid failed: {error.strerror}") from None


def _setgroups_allowed():
    try:
        with open("/proc/self/setgroups", "rb") as setgroups_file:
            return setgroups_file.read().strip() != b"deny"
    except OSError:
        return True


def set_umask(ctx, op):
    os.umask(int(op.args["umask"], 8))


def change_directory(ctx, op):
    path = op.args["path"]
    try:
        os.chdir(path)
    except OSError as error:
        raise InitError(f"process.cwd {path}: chdir failed: {error.strerror}") from None

    # A cwd such as /proc/self/fd/N could reach a runtime fd outside the root (CVE-2024-21626).
    try:
        current_directory = os.getcwd()
    except OSError:
        current_directory = "(unreachable)"
    if not current_directory.startswith("/"):
        raise InitError(f"process.cwd {path} resolves outside the container root")


def container_environment(ctx):
    """Return process.env as a dict, with HOME from /etc/passwd when unset, as runc does."""
    env = {}
    for item in ctx.spec.process.env:
        name, _, value = item.partition("=")
        env[name] = value
    if "HOME" not in env:
        env["HOME"] = _home_of(ctx.spec.process.user.uid)
    return env


def _home_of(uid):
    try:
        with open("/etc/passwd", "r", errors="replace") as passwd:
            for line in passwd:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def resolve_executable(ctx, op=None):
    """Find args[0] in the container's PATH, as execvp would; raise InitError when missing."""
    program = ctx.spec.process.args[0]
    env = ctx.environment

    if "/" in program:
        candidates = [program]
    else:
        search_path = env.get("PATH", DEFAULT_PATH)
        candidates = [os.path.join(directory or ".", program) for directory in search_path.split(":")]

    denied = None
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        if os.access(candidate, os.X_OK):
            ctx.executable = candidate
            return
        denied = candidate

    if denied:
        raise InitError(f"exec: {program!r}: permission denied ({denied} is not executable)")
    if "/" in program:
        raise InitError(f"exec: {program!r}: no such file or directory in the container")
    raise InitError(f"exec: {program!r}: executable file not found in $PATH")


def reset_signals():
    """Give the container process default signal dispositions and an empty signal mask.

    Python ignores SIGPIPE and handles SIGINT; an ignored disposition survives
    execve, so without this the container would inherit it.
    """
    for signum in range(1, signal.NSIG):
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def close_inherited_fds(keep_below):
    """Close every fd >= keep_below that would survive execve (those without O_CLOEXEC)."""
    import fcntl

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < keep_below:
            continue
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue
        if not flags & fcntl.FD_CLOEXEC:
            os.close(fd)


def close_fds_except(keep, keep_below):
    """Close every fd >= keep_below that is not in `keep`.

    A forked child inherits all of the runtime's fds, close-on-exec or not,
    including the flock of the container's directory, which must not outlive
    the `create` call.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= keep_below and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def execute(ctx, op):
    """Replace the init with the container process. Returns only by raising."""
    reset_signals()
    env = [f"{key}={value}" for key, value in ctx.environment.items()]
    try:
        os.execve(ctx.executable, list(ctx.spec.process.args), dict(item.split("=", 1) for item in env))
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise InitError(f"exec {ctx.executable}: no such file or directory") from None
        raise InitError(f"exec {ctx.executable}: {error.strerror}") from None


def set_parent_death_signal(signum):
    sc.set_parent_death_signal(signum)
