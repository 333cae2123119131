"""Mount operations of the container init: the rootfs, mounts[], /dev and the root switch.

Each function carries out one plan action. Destinations are resolved inside the
rootfs (navio_runtime.init.paths) and every mount targets the resolved fd.
"""

import errno
import os
import stat

from navio_runtime.errors import InitError, SyscallError
from navio_runtime.init.paths import exists_in_root, fd_path, make_path_in_root, open_in_root
from navio_runtime.linux import syscalls as sc
from navio_runtime.log import get_logger

log = get_logger(__name__)

# statvfs f_flag bits (ST_*) that a remount must keep when they are locked,
# mapped to the MS_* flag of the same meaning. In a user namespace the kernel
# refuses a remount that would clear a flag the outer namespace set.
_LOCKED_FLAGS = (
    (os.ST_RDONLY, sc.MS_RDONLY),
    (os.ST_NOSUID, sc.MS_NOSUID),
    (os.ST_NODEV, sc.MS_NODEV),
    (os.ST_NOEXEC, sc.MS_NOEXEC),
    (os.ST_NOATIME, sc.MS_NOATIME),
    (os.ST_NODIRATIME, sc.MS_NODIRATIME),
    (os.ST_RELATIME, sc.MS_RELATIME),
)


def set_propagation(ctx, op):
    sc.mount(None, op.args["path"], None, op.args["flags"])


def bind_rootfs(ctx, op):
    rootfs = op.args["rootfs"]
    try:
        is_directory = stat.S_ISDIR(os.stat(rootfs).st_mode)
    except OSError as error:
        # In a user namespace this is often EACCES on a parent directory that
        # the mapped root cannot search.
        raise InitError(f"root.path {rootfs}: {error.strerror}") from None
    if not is_directory:
        raise InitError(f"root.path {rootfs} is not a directory")

    # pivot_root rejects a new root whose parent mount is shared. Making the
    # parent private first also keeps the bind below out of a shared peer group.
    _make_parent_mount_private(rootfs)

    # pivot_root needs the new root to be a mount point.
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    ctx.rootfs = rootfs
    ctx.root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _source_path(ctx, source):
    if not source:
        return source
    if os.path.isabs(source):
        return source
    return os.path.join(ctx.bundle, source)


def mount_entry(ctx, op):
    args = op.args
    destination = args["destination"]
    source = _source_path(ctx, args["source"]) if args["bind"] else args["source"]

    if args["bind"]:
        try:
            source_is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as error:
            raise InitError(f"mounts[{args['index']}]: bind source {source}: {error.strerror}") from None
    else:
        source_is_dir = True

    # CVE-2019-19921: an image can make /proc or /sys a symlink, so that the
    # runtime's later writes under /proc go to a place the image chooses. As
    # runc does, procfs and sysfs are only mounted on a real directory.
    kernel_filesystem = args["type"] in ("proc", "sysfs")
    target_fd = make_path_in_root(ctx.root_fd, destination, is_directory=source_is_dir,
                                  follow_symlinks=not kernel_filesystem)
    if kernel_filesystem and not stat.S_ISDIR(os.fstat(target_fd).st_mode):
        os.close(target_fd)
        raise InitError(f"mounts[{args['index']}]: {args['type']} must be mounted on a directory, "
                        f"but {destination} in the rootfs is not one")
    try:
        flags = args["flags"]
        data = args["data"] or None
        if args["bind"]:
            flags &= sc.MS_BIND | sc.MS_REC
        sc.mount(source, fd_path(target_fd), args["type"] or None, flags, data, display_target=destination)
    finally:
        os.close(target_fd)

    if args["bind"] and args["remount_flags"]:
        remount(ctx, destination, sc.MS_BIND | args["remount_flags"])

    for propagation in args["propagation"]:
        with _opened(ctx, destination) as fd:
            sc.mount(None, fd_path(fd), None, propagation, display_target=destination)

    if args["recursive_attributes"]:
        attr_set, attr_clear = recursive_mount_attributes(args["recursive_attributes"])
        with _opened(ctx, destination) as fd:
            # mount_setattr needs a real fd of the mount root, not an O_PATH one through /proc.
            mount_fd = os.open(fd_path(fd), os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
            try:
                sc.mount_setattr(mount_fd, attr_set, attr_clear, recursive=True, target=destination)
            finally:
                os.close(mount_fd)


# Recursive mount options (runtime-spec 1.1+) -> (MOUNT_ATTR_* to set, MOUNT_ATTR_* to clear).
_RECURSIVE_ATTRIBUTES = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
    # The atime modes share one field: clearing MOUNT_ATTR__ATIME selects it.
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rnorelatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME),
    "ratime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME),
    "rnostrictatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
}


def recursive_mount_attributes(options):
    """Return the (set, clear) MOUNT_ATTR_* masks for recursive mount options, later options winning."""
    attr_set = 0
    attr_clear = 0
    for option in options:
        add, remove = _RECURSIVE_ATTRIBUTES[option]
        attr_set = (attr_set & ~remove) | add
        attr_clear = (attr_clear & ~add) | remove
    return attr_set, attr_clear


class _opened:
    """Open an O_PATH fd of a container path for the duration of a with block."""

    def __init__(self, ctx, path):
        self.fd = open_in_root(ctx.root_fd, path)

    def __enter__(self):
        return self.fd

    def __exit__(self, *exc_info):
        os.close(self.fd)
        return False


def remount(ctx, destination, flags):
    """Remount the mount at `destination` with `flags`, keeping flags that are locked."""
    with _opened(ctx, destination) as fd:
        target = fd_path(fd)
        try:
            sc.mount(None, target, None, sc.MS_REMOUNT | flags, display_target=destination)
        except SyscallError as error:
            if error.errno != errno.EPERM:
                raise
            current = os.statvfs(target).f_flag
            for st_flag, ms_flag in _LOCKED_FLAGS:
                if current & st_flag:
                    flags |= ms_flag
            sc.mount(None, target, None, sc.MS_REMOUNT | flags, display_target=destination)


def mount_cgroup(ctx, op):
    """Mount the container's view of the cgroup filesystem at the destination.

    On a unified host this is cgroup2 itself. On hybrid and legacy hosts a
    tmpfs contains one read-only bind mount per v1 hierarchy, each showing the
    container's own cgroup as runc does, and "unified" shows the cgroup2 tree.
    """
    destination = op.args["destination"]
    readonly = op.args["flags"] & sc.MS_RDONLY
    base_flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RELATIME

    target_fd = make_path_in_root(ctx.root_fd, destination)
    try:
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            # A cgroup namespace makes the container's cgroup the root of this mount.
            if ctx.cgroup_namespace:
                sc.mount("cgroup2", fd_path(target_fd), "cgroup2", base_flags | readonly, display_target=destination)
            else:
                source = ctx.cgroup_paths.get("", "/sys/fs/cgroup")
                sc.mount(source, fd_path(target_fd), None, sc.MS_BIND | sc.MS_REC,
                         display_target=destination)
                if readonly:
                    remount(ctx, destination, sc.MS_BIND | base_flags | sc.MS_RDONLY)
            return

        sc.mount("tmpfs", fd_path(target_fd), "tmpfs", base_flags, "mode=755", display_target=destination)
    finally:
        os.close(target_fd)

    for name, host_path in sorted(ctx.cgroup_paths.items()):
        if not os.path.isdir(host_path):
            continue
        subdir = f"{destination.rstrip('/')}/{name}"
        fd = make_path_in_root(ctx.root_fd, subdir)
        try:
            sc.mount(host_path, fd_path(fd), None, sc.MS_BIND | sc.MS_REC, display_target=subdir)
        finally:
            os.close(fd)
        remount(ctx, subdir, sc.MS_BIND | base_flags | (readonly or 0))

    if readonly:
        remount(ctx, destination, base_flags | sc.MS_RDONLY)


def cgroup_directories(pid):
    """Map each cgroup mount's name under /sys/fs/cgroup to the cgroup directory of `pid` in it.

    Call it in the host's cgroup namespace: inside a new one, /proc/<pid>/cgroup
    shows paths relative to the namespace root.

    The name is the mount point's base name ("memory", "cpu", "systemd",
    "unified"), or "" for a cgroup2 mount at /sys/fs/cgroup itself.
    """
    v1_mounts = []
    unified_mount = None
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        for line in mountinfo:
            fields = line.decode().split()
            separator = fields.index("-")
            fstype, super_options = fields[separator + 1], fields[separator + 3]
            if fstype == "cgroup2" and unified_mount is None:
                unified_mount = fields[4]
            elif fstype == "cgroup":
                v1_mounts.append((set(super_options.split(",")), fields[4]))

    directories = {}
    with open(f"/proc/{pid}/cgroup") as cgroup_file:
        for line in cgroup_file:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers:
                controller_set = set(controllers.split(","))
                mount_point = next((point for options, point in v1_mounts if controller_set <= options), None)
            else:
                mount_point = unified_mount
            if mount_point is None:
                continue
            name = "" if mount_point == "/sys/fs/cgroup" else os.path.basename(mount_point)
            directories[name] = os.path.join(mount_point, path.lstrip("/"))
    return directories


def _device_number(kind, major, minor):
    file_type = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(kind)
    if file_type is None:
        raise InitError(f"device type {kind!r} is not one of c, b, u, p")
    return file_type, os.makedev(major, minor) if kind != "p" else 0


def make_device(ctx, op):
    args = op.args
    path = args["path"]
    file_type, device = _device_number(args["type"], args["major"], args["minor"])
    parent, name = os.path.split(path.rstrip("/"))

    parent_fd = make_path_in_root(ctx.root_fd, parent)
    try:
        try:
            existing = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None

        if existing is not None:
            if stat.S_IFMT(existing.st_mode) == file_type and existing.st_rdev == device:
                return
            if stat.S_ISDIR(existing.st_mode):
                raise InitError(f"device {path}: a directory exists at that path in the rootfs")
            # Never write through what the image put there (it may be a symlink to a host file).
            os.unlink(name, dir_fd=parent_fd)

        old_umask = os.umask(0)
        try:
            os.mknod(name, file_type | (args["mode"] & 0o7777), device, dir_fd=parent_fd)
        except PermissionError:
            # In a user namespace mknod is not allowed: bind the host's node instead.
            _bind_host_device(ctx, path, parent_fd, name)
            return
        finally:
            os.umask(old_umask)
        os.chown(name, args["uid"], args["gid"], dir_fd=parent_fd, follow_symlinks=False)
    finally:
        os.close(parent_fd)


def _bind_host_device(ctx, path, parent_fd, name):
    if not os.path.exists(path):
        raise InitError(f"device {path}: mknod is not permitted and the host has no such device to bind")
    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=parent_fd)
    os.close(fd)
    with _opened(ctx, path) as target_fd:
        sc.mount(path, fd_path(target_fd), None, sc.MS_BIND, display_target=path)


def make_symlink(ctx, op):
    path = op.args["path"]
    parent, name = os.path.split(path)
    parent_fd = make_path_in_root(ctx.root_fd, parent)
    try:
        try:
            os.symlink(op.args["target"], name, dir_fd=parent_fd)
        except FileExistsError:
            pass
    finally:
        os.close(parent_fd)


def make_ptmx_symlink(ctx, op):
    """Point /dev/ptmx at the container's devpts instance when /dev/pts is mounted."""
    if not exists_in_root(ctx.root_fd, "/dev/pts/ptmx"):
        return
    parent_fd = make_path_in_root(ctx.root_fd, "/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def make_directory(ctx, op):
    mode = op.args.get("mode", 0o755)
    fd = make_path_in_root(ctx.root_fd, op.args["path"], mode=mode)
    try:
        # mkdir(2) applies the umask, and /dev/shm needs exactly 1777.
        os.chmod(fd_path(fd), mode)
    finally:
        os.close(fd)


def make_cwd(ctx, op):
    fd = make_path_in_root(ctx.root_fd, op.args["path"])
    os.close(fd)


def pivot_root(ctx, op):
    rootfs = ctx.rootfs
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        # pivot_root(".", ".") stacks the old root on top of the new one, so no
        # put_old directory is needed inside the image.
        os.fchdir(new_root)
        sc.pivot_root(".", ".")
        os.fchdir(old_root)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)
    _after_root_switch(ctx)


def chroot(ctx, op):
    rootfs = ctx.rootfs
    os.chdir(rootfs)
    if ctx.mount_namespace:
        sc.mount(rootfs, "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    _after_root_switch(ctx)


def _after_root_switch(ctx):
    os.close(ctx.root_fd)
    ctx.root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    ctx.rootfs = "/"
    propagation = ctx.spec.linux.rootfs_propagation
    if propagation:
        from navio_runtime.plan import PROPAGATION_OPTIONS

        sc.mount(None, "/", None, PROPAGATION_OPTIONS[propagation])


def _make_parent_mount_private(path):
    """Make the mount that contains `path`'s parent private; pivot_root rejects a shared parent."""
    parent = os.path.dirname(path.rstrip("/")) or "/"
    best = "/"
    shared = False
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            mount_point = fields[4].decode().replace("\\040", " ")
            if (parent == mount_point or parent.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
                best = mount_point
                shared = any(field.startswith(b"shared:") for field in fields[6 : fields.index(b"-")])
    if shared:
        sc.mount(None, best, None, sc.MS_PRIVATE)


def mask_path(ctx, op):
    path = op.args["path"]
    try:
        fd = open_in_root(ctx.root_fd, path)
    except SyscallError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            sc.mount("tmpfs", fd_path(fd), "tmpfs", sc.MS_RDONLY, "size=0k", display_target=path)
            return
        null_fd = _open_real_dev_null(ctx)
        try:
            sc.mount(fd_path(null_fd), fd_path(fd), None, sc.MS_BIND, display_target=path)
        finally:
            os.close(null_fd)
    finally:
        os.close(fd)


def _open_real_dev_null(ctx):
    """Open /dev/null of the container and check that it is the null device (CVE-2025-31133)."""
    resolve = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_SYMLINKS
    try:
        fd = open_in_root(ctx.root_fd, "/dev/null", os.O_PATH, resolve)
    except SyscallError as error:
        raise InitError(f"cannot mask paths: /dev/null in the container: {error}") from None
    info = os.fstat(fd)
    if not stat.S_ISCHR(info.st_mode) or info.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise InitError("cannot mask paths: /dev/null in the container is not the null device (1:3)")
    return fd


def readonly_path(ctx, op):
    path = op.args["path"]
    try:
        fd = open_in_root(ctx.root_fd, path)
    except SyscallError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise
    try:
        sc.mount(fd_path(fd), fd_path(fd), None, sc.MS_BIND | sc.MS_REC, display_target=path)
    finally:
        os.close(fd)
    remount(ctx, path, sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def remount_root_readonly(ctx, op):
    remount(ctx, "/", sc.MS_BIND | sc.MS_RDONLY)


def set_hostname(ctx, op):
    sc.sethostname(op.args["name"])


def set_domainname(ctx, op):
    sc.setdomainname(op.args["name"])


def write_sysctl(ctx, op):
    from navio_runtime.init.process_attrs import write_proc_file

    key = op.args["key"]
    relative = "sys/" + key.replace(".", "/")
    try:
        # write_proc_file checks that the target is really procfs, so an image
        # cannot redirect the write with a mount over /proc/sys.
        write_proc_file(relative, str(op.args["value"]))
    except OSError as error:
        raise InitError(f"linux.sysctl {key}={op.args['value']!r}: write to /proc/{relative} failed: {error.strerror}") from None
