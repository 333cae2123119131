"""`exec`: a second process in a running container, as podman exec and health checks use it."""

import json
import os
import time

import pytest


@pytest.fixture
def running(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "target", check=True)
    return runtime


def _cap_mask(status_text, name):
    for line in status_text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{name} missing from /proc/self/status")


def test_exec_exit_status(running):
    result = running("exec", "target", "sh", "-c", "exit 7")

    assert result.returncode == 7


def test_exec_joins_namespaces(running):
    result = running("exec", "target", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "navio"
    assert lines[1].strip() == "sleep 300"


def test_exec_env_cwd_user(running):
    result = running("exec", "--env", "GREETING=hello", "--cwd", "/tmp", "--user", "1000:1001", "target",
                     "sh", "-c", "echo $GREETING; pwd; id -u; id -g")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "/tmp", "1000", "1001"]


def test_exec_process_file(running, tmp_path):
    process = {"args": ["sh", "-c", "echo $A"], "env": ["A=from-file", "PATH=/bin"], "cwd": "/",
               "user": {"uid": 0, "gid": 0}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))

    result = running("exec", "--process", str(path), "target")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-file"


def test_exec_cap_never_inheritable(running):
    result = running("exec", "--cap", "CAP_NET_RAW", "target", "cat", "/proc/self/status")

    assert result.returncode == 0, result.stderr
    net_raw = 1 << 13
    assert _cap_mask(result.stdout, "CapBnd") & net_raw
    assert _cap_mask(result.stdout, "CapEff") & net_raw
    assert not _cap_mask(result.stdout, "CapInh") & net_raw


def test_exec_detached_joins_cgroup(running, tmp_path):
    pid_file = tmp_path / "exec.pid"

    running("exec", "-d", "--pid-file", str(pid_file), "target", "sleep", "30", check=True)

    pid = int(pid_file.read_text())
    with open(f"/proc/{pid}/cgroup") as cgroup_file:
        pids_line = [line for line in cgroup_file if ":pids:" in line or line.startswith("0::")][0]
    assert pids_line.rstrip().endswith("/navio/target")


def test_exec_missing_command_fails(running):
    result = running("exec", "target", "no-such-command")

    assert result.returncode == 1
    assert "executable file not found" in result.stderr


def test_exec_in_stopped_container_fails(runtime, make_bundle):
    bundle = make_bundle(args=["true"])
    runtime("run", "-d", "-b", bundle.path, "done", check=True)
    for _ in range(200):
        if runtime.state("done")["status"] == "stopped":
            break
        time.sleep(0.01)

    result = runtime("exec", "done", "true")

    assert result.returncode == 1
    assert "'stopped'" in result.stderr


def test_exec_unknown_container_fails(runtime):
    result = runtime("exec", "nope", "true")

    assert result.returncode == 1
    assert "not found" in result.stderr
