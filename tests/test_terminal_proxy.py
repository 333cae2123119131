"""A foreground run or exec -t without --console-socket uses the caller's terminal, as with runc."""

import os
import pty
import select
import sys
import time


def _run_in_pty(argv, input_bytes=b"", timeout=30.0):
    """Run argv with a pty as its stdin and stdout; return (output, exit status)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    output = b""
    if input_bytes:
        time.sleep(0.5)
        os.write(master, input_bytes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_run_terminal_without_socket(runtime, make_bundle):
    bundle = make_bundle(args=["sh", "-c", "tty; exit 5"])
    bundle.config["process"]["terminal"] = True
    bundle.write()

    output, status = _run_in_pty([sys.executable, "-m", "navio_runtime", "--root", runtime.root,
                                  "run", "-b", bundle.path, "tty-run"])

    assert status == 5, output
    assert "/dev/pts/0" in output


def test_exec_tty_without_socket(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "tty-exec", check=True)

    output, status = _run_in_pty([sys.executable, "-m", "navio_runtime", "--root", runtime.root,
                                  "exec", "-t", "tty-exec", "sh", "-c", "read line; echo got:$line; tty"],
                                 input_bytes=b"hello\r")

    assert status == 0, output
    assert "got:hello" in output
    assert "/dev/pts/" in output
