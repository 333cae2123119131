"""Resolve and create paths inside the container's root without leaving it.

A rootfs is untrusted: any component of a mount destination, device path,
masked path or cwd may be a symlink that climbs out of it, and the image may
swap a directory for a symlink while setup runs (CVE-2021-30465). Every path
is therefore resolved with openat2(2) and RESOLVE_IN_ROOT, which treats the
root fd as "/" for "..", absolute symlinks and every component, and with
RESOLVE_NO_MAGICLINKS so /proc/<pid>/fd links cannot be followed. The runtime
then mounts onto "/proc/self/fd/<fd>" of the resolved file, so the kernel uses
exactly the inode that was checked and a later swap has no effect.
"""

import errno
import os
import stat

from navio_runtime.errors import InitError, SyscallError
from navio_runtime.linux import syscalls

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS


def fd_path(fd):
    """Return the magic link that names `fd` for mount(2), chmod(2) and friends."""
    return f"/proc/self/fd/{fd}"


def _components(path):
    return [part for part in path.split("/") if part not in ("", ".")]


def open_in_root(root_fd, path, flags=os.O_PATH, resolve=_RESOLVE):
    """Open `path` (absolute or relative, as seen inside the root) beneath `root_fd`."""
    relative = "/".join(_components(path)) or "."
    return syscalls.openat2(root_fd, relative, flags, 0, resolve)


def exists_in_root(root_fd, path):
    try:
        fd = open_in_root(root_fd, path)
    except SyscallError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise
    os.close(fd)
    return True


def make_path_in_root(root_fd, path, is_directory=True, mode=0o755, follow_symlinks=True):
    """Create `path` and its missing parents inside the root; return an O_PATH fd of it.

    Missing parents are directories. The last component is a directory when
    `is_directory` is true and an empty regular file otherwise. An existing
    component is kept as it is, whatever its type. Each prefix is resolved from
    the root fd, so a symlink such as /var/run -> /run works as inside the
    container and cannot lead out of it. With `follow_symlinks` false, a
    symlink in any component raises InitError instead.
    """
    parts = _components(path)
    if not parts:
        return os.dup(root_fd)

    resolve = _RESOLVE if follow_symlinks else _RESOLVE | syscalls.RESOLVE_NO_SYMLINKS
    for position in range(len(parts)):
        prefix = "/".join(parts[: position + 1])
        is_last = position == len(parts) - 1
        try:
            fd = syscalls.openat2(root_fd, prefix, os.O_PATH, 0, resolve)
        except SyscallError as error:
            if error.errno == errno.ELOOP:
                # CVE-2024-21626: a /proc/<pid>/fd or /proc/<pid>/cwd link could
                # lead to a runtime fd outside the root, so magic links are rejected.
                reason = "is a symlink" if not follow_symlinks else "is a symlink loop or a /proc magic link"
                raise InitError(f"cannot create {path} in the container: {prefix!r} {reason}, "
                                "which the runtime does not follow (ELOOP)") from None
            if error.errno != errno.ENOENT:
                raise
            parent = "/".join(parts[:position]) or "."
            try:
                parent_fd = syscalls.openat2(root_fd, parent, os.O_PATH, 0, resolve)
            except SyscallError as parent_error:
                raise InitError(f"cannot create {path} in the container: {parent!r} was removed or replaced "
                                f"during setup ({parent_error})") from None
            try:
                fd = _create_component(parent_fd, parts[position], path, is_last and not is_directory, mode)
            finally:
                os.close(parent_fd)

        if is_last:
            return fd
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        os.close(fd)
        if not is_dir:
            raise InitError(f"cannot create {path} in the container: {prefix!r} is not a directory")
    raise AssertionError("unreachable")


def _create_component(parent_fd, name, full_path, as_file, mode):
    try:
        if as_file:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=parent_fd)
            os.close(fd)
        else:
            os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        # A dangling symlink (or a concurrent creator): never create through it.
        raise InitError(f"cannot create {full_path} in the container: {name!r} is a dangling symlink or appeared "
                        "during setup, and the runtime does not create files through a symlink") from None
    except OSError as error:
        # For example mkdir in /proc/self/fd, which fails with ENOENT.
        action = "create file" if as_file else "mkdir"
        raise InitError(f"cannot create {full_path} in the container: {action} {name!r} failed: {error.strerror}") from None
    try:
        return syscalls.openat2(parent_fd, name, os.O_PATH | os.O_NOFOLLOW, 0, _RESOLVE)
    except SyscallError as error:
        raise InitError(f"cannot create {full_path} in the container: {name!r} was removed or replaced "
                        f"during setup ({error})") from None
