"""A terminal for a foreground `run` or `exec -t` without --console-socket.

The runtime listens on a private console socket, receives the pty master the
init sends there, and copies between it and its own stdin and stdout until the
container process exits, as runc does when no console socket is given. When
stdin is a terminal it is switched to raw mode and its window size follows.
"""

import array
import errno
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import tempfile

from navio_runtime.errors import InitError

TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


class ConsoleProxy:
    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="navio-console-")
        self.path = os.path.join(self.directory, "console.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.master = -1
        self.saved_tty = None

    def receive_master(self, timeout=30):
        """Accept the init's connection and return the pty master it sent."""
        self.server.settimeout(timeout)
        try:
            connection, _ = self.server.accept()
        except socket.timeout:
            raise InitError(f"the container did not send its terminal within {timeout} s") from None
        with connection:
            fds = array.array("i")
            _, ancillary, _, _ = connection.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        if not ancillary:
            raise InitError("the container's console connection carried no terminal")
        fds.frombytes(ancillary[0][2][: fds.itemsize])
        self.master = fds[0]
        self._copy_window_size()
        return self.master

    def copy_until_exit(self, pid, wait_status):
        """Copy data both ways until `pid` exits; return what `wait_status(pid)` returns then.

        `wait_status(pid)` must return None while the process runs and its exit status after.
        """
        stdin = 0 if os.isatty(0) or _is_readable(0) else -1
        if stdin == 0 and os.isatty(0):
            import termios
            import tty

            self.saved_tty = termios.tcgetattr(0)
            tty.setraw(0)
        previous_winch = signal.signal(signal.SIGWINCH, lambda signum, frame: self._copy_window_size())
        try:
            return self._loop(pid, stdin, wait_status)
        finally:
            signal.signal(signal.SIGWINCH, previous_winch)
            self.close()

    def _loop(self, pid, stdin, wait_status):
        readers = [self.master] + ([stdin] if stdin >= 0 else [])
        while True:
            status = wait_status(pid)
            if status is not None:
                self._drain()
                return status
            try:
                ready, _, _ = select.select(readers, [], [], 0.05)
            except InterruptedError:
                continue
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError as error:
                    if error.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    _write_all(1, data)
                else:
                    readers.remove(self.master)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    _write_all(self.master, data)
                else:
                    readers.remove(stdin)

    def _drain(self):
        """Copy what the process wrote just before it exited."""
        while True:
            ready, _, _ = select.select([self.master], [], [], 0)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            _write_all(1, data)

    def _copy_window_size(self):
        if self.master < 0 or not os.isatty(0):
            return
        size = fcntl.ioctl(0, TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(self.master, TIOCSWINSZ, size)

    def close(self):
        if self.saved_tty is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
            self.saved_tty = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self.server.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _is_readable(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _write_all(fd, data):
    while data:
        written = os.write(fd, data)
        data = data[written:]
