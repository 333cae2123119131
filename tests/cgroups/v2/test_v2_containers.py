"""Real containers on a cgroup v2 host: limits, the eBPF device filter, pause, events and update.

scripts/run-v2-tests runs this file in a VM whose /sys/fs/cgroup is cgroup v2
only. pytest starts there with --confcutdir=tests/cgroups, so tests/conftest.py
is not loaded and this file has its own small runtime fixture. Every container
uses the runtime's default cgroup /navio/<id> and a unique id.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

import cgroup_testlib
from navio_runtime.cgroups import detect_mode

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUSYBOX_CONFIG = os.path.join(REPO, "bundles", "busybox", "config.json")
BUSYBOX_ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
CGROUP_ROOT = "/sys/fs/cgroup"

# Waits for a process inside a container; generous because the VM may emulate the CPU.
STEP_TIMEOUT = 60.0

THREE_PROCESSES = ["sh", "-c", "sleep 100 & sleep 100 & wait"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create containers"),
    pytest.mark.skipif(
        not os.path.isfile(os.path.join(CGROUP_ROOT, "cgroup.controllers")) or detect_mode() != "unified",
        reason="cgroup v2 container tests need a host with only the unified hierarchy (run scripts/run-v2-tests)",
    ),
    pytest.mark.skipif(not os.path.exists(os.path.join(BUSYBOX_ROOTFS, "bin", "busybox")),
                       reason="bundles/busybox/rootfs is missing; build it with scripts/build-busybox-rootfs"),
]


def wait_until(condition, timeout=STEP_TIMEOUT, interval=0.05):
    """Poll `condition()` until it returns a true value or `timeout` seconds pass; return its last value."""
    return cgroup_testlib.wait_until(condition, timeout, interval)


read_text = cgroup_testlib.read_text
read_lines = cgroup_testlib.read_lines
file_size = cgroup_testlib.file_size


def cgroup_file(container_id, name):
    return os.path.join(CGROUP_ROOT, "navio", container_id, name)


class Runtime:
    """Runs `python -m navio_runtime --root <root>` and force-deletes every container it created."""

    def __init__(self, root):
        self.root = str(root)
        self.ids = []

    def command(self, *args):
        if args and args[0] in ("create", "run"):
            self.ids.append(args[-1])
        return [sys.executable, "-m", "navio_runtime", "--root", self.root, *args]

    def __call__(self, *args, check=False, input=None):
        """Run the CLI. Output goes through files, because a detached container keeps its stdout open."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            completed = subprocess.run(self.command(*args), input=input, stdin=None if input else subprocess.DEVNULL,
                                       stdout=out, stderr=err, text=True, timeout=120)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(completed.args, completed.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def state(self, container_id):
        return json.loads(self("state", container_id, check=True).stdout)

    def resources(self, container_id):
        with open(os.path.join(self.root, container_id, "state.json")) as state_file:
            return json.load(state_file)["config"]["linux"]["resources"]

    def run_detached(self, bundle_path, container_id):
        self("run", "--detach", "--bundle", bundle_path, container_id, check=True)

    def cleanup(self):
        for container_id in self.ids:
            subprocess.run(self.command("delete", "--force", container_id), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def runtime(tmp_path):
    root = tmp_path / "state"
    root.mkdir()
    runner = Runtime(root)
    yield runner
    runner.cleanup()
    assert os.listdir(root) == []


@pytest.fixture
def shared(tmp_path):
    """A host directory that containers see as /tmp."""
    path = tmp_path / "shared"
    path.mkdir()
    return path


@pytest.fixture
def make_bundle(tmp_path, shared):
    """Return a factory: make_bundle(args, resources=None, devices=None) -> bundle directory."""

    def factory(args, resources=None, devices=None):
        with open(BUSYBOX_CONFIG) as config_file:
            config = json.load(config_file)
        config["process"]["args"] = list(args)
        config["root"]["path"] = BUSYBOX_ROOTFS
        config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(shared), "options": ["rbind", "rw"]})
        config["linux"]["resources"].update(resources or {})
        if devices is not None:
            config["linux"]["devices"] = devices
        path = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        with open(path / "config.json", "w") as config_file:
            json.dump(config, config_file)
        return str(path)

    return factory


def unique_id(name):
    return f"cgv2-{name}-{uuid.uuid4().hex[:6]}"


def test_pause_freezes_cgroup(runtime, make_bundle, shared):
    ticks = shared / "ticks"
    container_id = unique_id("pause")
    runtime.run_detached(make_bundle(["sh", "-c", "while true; do echo . >> /tmp/ticks; sleep 0.05; done"]), container_id)
    assert wait_until(lambda: file_size(ticks) > 2)

    runtime("pause", container_id, check=True)
    paused_size = file_size(ticks)
    time.sleep(1.0)

    assert runtime.state(container_id)["status"] == "paused"
    assert read_text(cgroup_file(container_id, "cgroup.freeze")).strip() == "1"
    assert file_size(ticks) == paused_size

    runtime("resume", container_id, check=True)

    assert runtime.state(container_id)["status"] == "running"
    assert read_text(cgroup_file(container_id, "cgroup.freeze")).strip() == "0"
    assert wait_until(lambda: file_size(ticks) > paused_size)


def test_events_stats(runtime, make_bundle):
    container_id = unique_id("stats")
    runtime.run_detached(make_bundle(THREE_PROCESSES), container_id)
    assert wait_until(lambda: read_text(cgroup_file(container_id, "pids.current")).strip() == "3")

    event = json.loads(runtime("events", "--stats", container_id, check=True).stdout)
    data = event["data"]

    assert event["type"] == "stats"
    assert event["id"] == container_id
    assert data["pids"]["current"] == 3
    assert 0 < data["memory"]["usage"]["usage"] < 64 << 20
    assert data["cpu"]["usage"]["total"] > 0


def test_update_pids_limit_stops_fork(runtime, make_bundle, shared):
    script = (
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec 2>>/tmp/err; "
        "for i in 1 2 3 4 5 6; do sleep 100 & echo $i >> /tmp/forked; done; wait"
    )
    container_id = unique_id("pids")
    runtime.run_detached(make_bundle(["sh", "-c", script]), container_id)

    runtime("update", "--pids-limit", "5", container_id, check=True)
    (shared / "go").touch()

    assert read_text(cgroup_file(container_id, "pids.max")).strip() == "5"
    assert wait_until(lambda: "fork" in read_text(shared / "err"))
    assert read_lines(shared / "forked") == ["1", "2", "3", "4"]


def test_update_memory_and_cpu_files(runtime, make_bundle):
    container_id = unique_id("update")
    runtime.run_detached(make_bundle(["sleep", "100"]), container_id)

    runtime("update", "--memory", "64M", container_id, check=True)
    runtime("update", "--resources", "-", container_id, check=True,
            input=json.dumps({"cpu": {"quota": 50000, "period": 100000}}))
    runtime("update", "--cpu-period", "200000", container_id, check=True)

    assert read_text(cgroup_file(container_id, "memory.max")).strip() == str(64 << 20)
    assert read_text(cgroup_file(container_id, "cpu.max")).strip() == "50000 200000"
    assert runtime.resources(container_id)["memory"] == {"limit": 64 << 20}
    assert runtime.resources(container_id)["cpu"] == {"quota": 50000, "period": 200000}


def test_memory_max_oom_kills(runtime, make_bundle, shared, tmp_path):
    script = (
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
        "x=$(dd if=/dev/zero bs=1M count=200 2>/dev/null | tr '\\0' a); echo survived"
    )
    container_id = unique_id("oom")
    bundle = make_bundle(["sh", "-c", script], resources={"memory": {"limit": 64 << 20}})
    output_path = tmp_path / "run.out"
    with open(output_path, "w") as output:
        foreground = subprocess.Popen(runtime.command("run", "--keep", "--bundle", bundle, container_id),
                                      stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    watcher = None
    try:
        assert wait_until(lambda: runtime("state", container_id).returncode == 0
                          and runtime.state(container_id)["status"] == "running")
        watcher = subprocess.Popen(runtime.command("events", "--interval", "2s", container_id),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = json.loads(watcher.stdout.readline())
        (shared / "go").touch()

        exit_status = foreground.wait(timeout=STEP_TIMEOUT)
        remaining, errors = watcher.communicate(timeout=STEP_TIMEOUT)
    finally:
        for process in (foreground, watcher):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    types = [first["type"]] + [json.loads(line)["type"] for line in remaining.splitlines()]

    assert read_text(cgroup_file(container_id, "memory.max")).strip() == str(64 << 20)
    assert exit_status == 137, output_path.read_text()
    assert types.count("oom") == 1, errors


def test_cpu_max_limits_usage(runtime, make_bundle):
    container_id = unique_id("quota")
    bundle = make_bundle(["sh", "-c", "while true; do :; done"], resources={"cpu": {"quota": 20000, "period": 100000}})
    runtime.run_detached(bundle, container_id)

    def usage_seconds():
        for line in read_text(cgroup_file(container_id, "cpu.stat")).splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
        return 0.0

    time.sleep(0.5)
    start_usage, start_time = usage_seconds(), time.monotonic()
    time.sleep(1.0)
    used = (usage_seconds() - start_usage) / (time.monotonic() - start_time)

    assert read_text(cgroup_file(container_id, "cpu.max")).strip() == "20000 100000"
    assert used < 0.3
    assert used > 0.02


# Container devices and rules of the device tests, shared with the other container test file.
DEVICE_SCRIPT = cgroup_testlib.DEVICE_SCRIPT
DEVICE_NODES = cgroup_testlib.DEVICE_NODES
DEVICE_RULES = cgroup_testlib.DEVICE_RULES


@pytest.fixture
def device_drivers(tmp_path):
    """Skip unless the tun and fuse drivers open outside any container (the VM may lack their modules)."""
    for node in DEVICE_NODES:
        path = str(tmp_path / os.path.basename(node["path"]))
        os.mknod(path, 0o600 | 0o020000, os.makedev(node["major"], node["minor"]))
        try:
            os.close(os.open(path, os.O_RDWR))
        except OSError as error:
            pytest.skip(f"c {node['major']}:{node['minor']} does not open on this host: {error.strerror}")


def test_device_filter_allows(runtime, make_bundle, device_drivers):
    bundle = make_bundle(["sh", "-c", DEVICE_SCRIPT], resources=DEVICE_RULES, devices=DEVICE_NODES)

    result = runtime("run", "--bundle", bundle, unique_id("devallow"))

    assert result.returncode == 0, result.stderr
    assert "allowed-opened" in result.stdout.split()


def test_device_filter_denies(runtime, make_bundle, device_drivers):
    bundle = make_bundle(["sh", "-c", DEVICE_SCRIPT], resources=DEVICE_RULES, devices=DEVICE_NODES)

    result = runtime("run", "--bundle", bundle, unique_id("devdeny"))

    assert result.returncode == 0, result.stderr
    assert "denied-failed" in result.stdout.split()
