"""podman driving navio-runtime through its --runtime flag, as an operator would run it.

The busybox rootfs is imported as a local image, so no registry is needed.
Every run uses --network none (no network backend is configured here) and
explicit ulimits, because podman's default RLIMIT_NOFILE of 1048576 is above
this sandbox's hard limit and fails under runc too.
"""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                                reason="podman and conmon are not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "localhost/navio-busybox:test"
RUN_OPTIONS = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tmp_path_factory.mktemp("podman")
    runtime = os.path.join(os.path.dirname(sys.executable), "navio-runtime")
    command = ["podman", "--root", str(base / "storage"), "--runroot", str(base / "run"),
               "--runtime", runtime, "--cgroup-manager", "cgroupfs"]

    def podman_run(*args, check=True, timeout=120):
        result = subprocess.run(command + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    archive = base / "rootfs.tar"
    subprocess.run(["tar", "-C", os.path.join(REPO, "bundles", "busybox", "rootfs"), "-cf", str(archive), "."],
                   check=True)
    podman_run("import", str(archive), IMAGE)
    yield podman_run
    podman_run("rm", "--all", "--force", "--time", "0", check=False)
    podman_run("system", "reset", "--force", check=False)


def test_podman_run_output(podman):
    result = podman("run", "--rm", *RUN_OPTIONS, IMAGE, "sh", "-c", "echo hello; echo $$")

    assert result.stdout.splitlines() == ["hello", "1"]


def test_podman_run_exit_code(podman):
    result = podman("run", "--rm", *RUN_OPTIONS, IMAGE, "sh", "-c", "exit 42", check=False)

    assert result.returncode == 42


def test_podman_detached_exec_stop(podman):
    podman("run", "-d", "--name", "detached", *RUN_OPTIONS, IMAGE, "sleep", "300")

    exec_result = podman("exec", "detached", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    running = podman("inspect", "--format", "{{.State.Status}}", "detached").stdout.strip()
    podman("stop", "--time", "1", "detached")
    stopped = podman("inspect", "--format", "{{.State.Status}}", "detached").stdout.strip()
    podman("rm", "detached")

    assert exec_result.stdout.strip() == "sleep 300"
    assert running == "running"
    assert stopped == "exited"


def test_podman_pause_unpause(podman):
    podman("run", "-d", "--name", "pausable", *RUN_OPTIONS, IMAGE, "sleep", "300")

    podman("pause", "pausable")
    paused = podman("inspect", "--format", "{{.State.Status}}", "pausable").stdout.strip()
    podman("unpause", "pausable")
    resumed = podman("inspect", "--format", "{{.State.Status}}", "pausable").stdout.strip()
    podman("rm", "--force", "--time", "0", "pausable")

    assert paused == "paused"
    assert resumed == "running"


def test_podman_terminal(podman):
    result = podman("run", "--rm", "-t", *RUN_OPTIONS, IMAGE, "sh", "-c", "tty", check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/dev/pts/0"


def test_podman_memory_limit(podman):
    result = podman("run", "--rm", "--memory", "64m", *RUN_OPTIONS, IMAGE,
                    "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null",
                    check=False)

    assert result.stdout.split()[0] == str(64 * 1024 * 1024)
