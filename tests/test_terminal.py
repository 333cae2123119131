"""process.terminal with --console-socket: the protocol podman's conmon and containerd use."""

import array
import os
import socket
import subprocess
import time

import pytest


def _receive_master(server):
    connection, _ = server.accept()
    with connection:
        fds = array.array("i")
        message, ancillary, _, _ = connection.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
    if not ancillary:
        return message, None
    fds.frombytes(ancillary[0][2][: fds.itemsize])
    return message, fds[0]


def _read_until_closed(fd, timeout=10.0):
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    return output.decode()


@pytest.fixture
def console_server(tmp_path):
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    yield path, server
    server.close()


def test_terminal_is_sent_and_sized(runtime, make_bundle, console_server):
    path, server = console_server
    bundle = make_bundle(args=["sh", "-c", "tty; stty size; ls -l /dev/console"])
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 30, "width": 100}
    bundle.write()

    create = subprocess.Popen(runtime.command("create", "--console-socket", path, "-b", bundle.path, "term"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    name, master = _receive_master(server)
    assert create.wait(timeout=30) == 0, create.stderr.read()

    runtime("start", "term", check=True)
    lines = _read_until_closed(master).splitlines()
    os.close(master)

    assert name == b"/dev/ptmx"
    assert lines[0].strip() == "/dev/pts/0"
    assert lines[1].strip() == "30 100"
    assert lines[2].startswith("crw")
    assert "136," in lines[2]


def test_terminal_without_console_socket_fails(runtime, make_bundle):
    bundle = make_bundle(args=["true"])
    bundle.config["process"]["terminal"] = True
    bundle.write()

    result = runtime("create", "-b", bundle.path, "noconsole")

    assert result.returncode == 1
    assert "--console-socket is required" in result.stderr


def test_console_symlink_in_image_is_not_followed(runtime, make_bundle, console_server, tmp_path):
    path, server = console_server
    target = tmp_path / "host-file"
    target.write_text("host data\n")
    bundle = make_bundle(args=["true"], private_rootfs=True)
    bundle.config["process"]["terminal"] = True
    # No /dev tmpfs: the image's own /dev is used, with a hostile /dev/console.
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    bundle.write()
    os.symlink(str(target), os.path.join(bundle.path, "rootfs", "dev", "console"))

    create = subprocess.Popen(runtime.command("create", "--console-socket", path, "-b", bundle.path, "hostile"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server.settimeout(30)
    try:
        _, master = _receive_master(server)
    except socket.timeout:
        master = None
    status = create.wait(timeout=30)
    runtime("start", "hostile", check=True)
    if master is not None:
        _read_until_closed(master)
        os.close(master)

    assert status == 0
    assert master is not None
    assert target.read_text() == "host data\n"
    assert not os.path.ismount(str(target))
