"""The container's terminal: a pty from the container's devpts, its master sent over --console-socket.

This is runc's protocol, which podman (conmon) and containerd expect. The
runtime connects to the unix socket given with --console-socket and sends the
pty master as SCM_RIGHTS with the name "/dev/ptmx". The process gets the slave
as stdin, stdout, stderr and controlling terminal, and /dev/console is bound
to it.
"""

import array
import errno
import fcntl
import os
import socket
import stat
import struct

from navio_runtime.errors import InitError, SyscallError
from navio_runtime.init.paths import fd_path, make_path_in_root, open_in_root
from navio_runtime.linux import syscalls as sc

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414


def connect_console_socket(path):
    """Connect to the console socket in the runtime process, before any fork."""
    console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        console.connect(path)
    except OSError as error:
        console.close()
        raise InitError(f"--console-socket {path}: connect failed: {error.strerror}") from None
    return console


def setup_console(ctx, op):
    """Create the pty, bind its slave on /dev/console, send the master and keep the slave for stdio."""
    if ctx.console_socket is None:
        raise InitError("process.terminal is true but no --console-socket was given")

    def open_in_container(path, flags):
        return open_in_root(ctx.root_fd, path, flags)

    ptmx_fd, slave_fd = _open_pty(open_in_container, ctx.spec.process.console_size)
    try:
        _bind_console(ctx, slave_fd)
        _send_master(ctx.console_socket, ptmx_fd)
    finally:
        os.close(ptmx_fd)
        ctx.console_socket.close()
        ctx.console_socket = None
    ctx.terminal_fd = slave_fd


def setup_exec_console(ctx):
    """Create the pty of an `exec` process, already inside the container, and send its master."""
    def open_directly(path, flags):
        return os.open(path, flags | os.O_CLOEXEC)

    ptmx_fd, slave_fd = _open_pty(open_directly, ctx.spec.process.console_size)
    try:
        _send_master(ctx.console_socket, ptmx_fd)
    finally:
        os.close(ptmx_fd)
        ctx.console_socket.close()
        ctx.console_socket = None
    ctx.terminal_fd = slave_fd


def _open_pty(open_file, console_size):
    """Open /dev/ptmx and its slave with `open_file(path, flags)`; return (master fd, slave fd)."""
    ptmx_fd = open_file("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.ioctl(ptmx_fd, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(ptmx_fd, TIOCGPTN, b"\0" * 4))[0]
        slave_fd = open_file(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
        if console_size:
            size = struct.pack("HHHH", console_size.get("height", 0), console_size.get("width", 0), 0, 0)
            fcntl.ioctl(slave_fd, TIOCSWINSZ, size)
    except BaseException:
        os.close(ptmx_fd)
        raise
    return ptmx_fd, slave_fd


def _bind_console(ctx, slave_fd):
    """Bind the pty slave on /dev/console without following what the image put there (CVE-2025-52565)."""
    dev_fd = make_path_in_root(ctx.root_fd, "/dev")
    try:
        try:
            existing = os.stat("console", dir_fd=dev_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            if stat.S_ISDIR(existing.st_mode):
                raise InitError("/dev/console in the container is a directory")
            os.unlink("console", dir_fd=dev_fd)
            existing = None
        if existing is None:
            os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=dev_fd))
        resolve = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_SYMLINKS
        try:
            console_fd = open_in_root(ctx.root_fd, "/dev/console", os.O_PATH, resolve)
        except SyscallError as error:
            if error.errno == errno.ELOOP:
                raise InitError("/dev/console in the container was replaced by a symlink during setup") from None
            raise
        try:
            sc.mount(fd_path(slave_fd), fd_path(console_fd), None, sc.MS_BIND, display_target="/dev/console")
        finally:
            os.close(console_fd)
    finally:
        os.close(dev_fd)


def _send_master(console_socket, master_fd):
    fds = array.array("i", [master_fd])
    try:
        console_socket.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    except OSError as error:
        raise InitError(f"sending the terminal to --console-socket failed: {error.strerror}") from None


def attach_terminal(ctx):
    """Make the pty slave the controlling terminal and stdio of the process (just before exec)."""
    fd = ctx.terminal_fd
    fcntl.ioctl(fd, TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)
