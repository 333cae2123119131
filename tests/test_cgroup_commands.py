"""pause, resume, ps, events, update, features and kill --all on real containers (cgroup v1 or hybrid host).

Each container gets a unique id, because its cgroup /navio/<id> is shared by
every test run on the host. Processes inside write to /tmp, which is a bind
mount of a host directory, so a test can watch them from outside.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from navio_runtime.cgroups import detect_mode

# pytest puts tests/cgroups on sys.path only when it loads tests/cgroups/conftest.py,
# which a run of this file alone does not.
_CGROUP_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cgroups")
if _CGROUP_TESTS not in sys.path:
    sys.path.insert(0, _CGROUP_TESTS)
import cgroup_testlib  # noqa: E402

CGROUP_ROOT = "/sys/fs/cgroup"

pytestmark = pytest.mark.skipif(
    os.path.isfile(os.path.join(CGROUP_ROOT, "cgroup.controllers")),
    reason="these tests read cgroup v1 files; tests/cgroups/v2/test_v2_containers.py covers cgroup v2",
)

# Waits for a process inside a container to reach its next step.
STEP_TIMEOUT = 20.0

# A container whose init starts two `sleep 100` children and waits for them: three processes.
THREE_PROCESSES = ["sh", "-c", "sleep 100 & sleep 100 & wait"]


def unique_id(name):
    return f"cgcmd-{name}-{uuid.uuid4().hex[:6]}"


def wait_until(condition, timeout=STEP_TIMEOUT, interval=0.02):
    """Poll `condition()` until it returns a true value or `timeout` seconds pass; return its last value."""
    return cgroup_testlib.wait_until(condition, timeout, interval)


read_text = cgroup_testlib.read_text
read_lines = cgroup_testlib.read_lines
file_size = cgroup_testlib.file_size


def cgroup_file(controller, container_id, name):
    return os.path.join(CGROUP_ROOT, controller, "navio", container_id, name)


def children_of(pid):
    """Return the PIDs whose parent is `pid`, from /proc/<pid>/task/*/children."""
    result = set()
    task_dir = f"/proc/{pid}/task"
    for task in os.listdir(task_dir):
        result.update(int(child) for child in read_text(os.path.join(task_dir, task, "children")).split())
    return result


def stored_resources(runtime, container_id):
    with open(os.path.join(runtime.root, container_id, "state.json")) as state_file:
        return json.load(state_file)["config"]["linux"]["resources"]


@pytest.fixture
def shared(tmp_path):
    """A host directory that containers see as /tmp."""
    path = tmp_path / "shared"
    path.mkdir()
    return path


@pytest.fixture
def container_bundle(make_bundle, shared):
    """Return a factory of bundles that run `args` with /tmp bound to `shared` and extra linux settings."""

    def factory(args, resources=None, devices=None):
        bundle = make_bundle(args=args)
        bundle.config["mounts"].append(
            {"destination": "/tmp", "type": "bind", "source": str(shared), "options": ["rbind", "rw"]}
        )
        bundle.config["linux"]["resources"].update(resources or {})
        if devices is not None:
            bundle.config["linux"]["devices"] = devices
        return bundle.write()

    return factory


def run_detached(runtime, bundle, container_id):
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    return runtime.state(container_id)["pid"]


def run_sleeping(runtime, container_bundle, name):
    """Run a detached `sleep 100` container with a new id made from `name`, and return the id."""
    container_id = unique_id(name)
    run_detached(runtime, container_bundle(["sleep", "100"]), container_id)
    return container_id


# --- pause and resume -------------------------------------------------------------------------


def test_pause_stops_progress(runtime, container_bundle, shared):
    ticks = shared / "ticks"
    bundle = container_bundle(["sh", "-c", "while true; do echo . >> /tmp/ticks; sleep 0.02; done"])
    container_id = unique_id("pause")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: file_size(ticks) > 2)

    runtime("pause", container_id, check=True)
    paused_size = file_size(ticks)
    time.sleep(0.5)

    assert runtime.state(container_id)["status"] == "paused"
    assert file_size(ticks) == paused_size
    assert read_text(cgroup_file("freezer", container_id, "freezer.state")).strip() == "FROZEN"

    runtime("resume", container_id, check=True)

    assert runtime.state(container_id)["status"] == "running"
    assert wait_until(lambda: file_size(ticks) > paused_size)


def test_pause_created_rejected(runtime, container_bundle):
    bundle = container_bundle(["sleep", "100"])
    container_id = unique_id("pausecreated")
    runtime("create", "--bundle", bundle.path, container_id, check=True)

    result = runtime("pause", container_id)

    assert result.returncode == 1
    assert "its status is 'created'" in result.stderr
    assert runtime.state(container_id)["status"] == "created"


def test_pause_stopped_rejected(runtime, container_bundle):
    bundle = container_bundle(["true"])
    container_id = unique_id("pausestopped")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: runtime.state(container_id)["status"] == "stopped")

    result = runtime("pause", container_id)

    assert result.returncode == 1
    assert "its status is 'stopped'" in result.stderr


def test_resume_running_rejected(runtime, container_bundle):
    container_id = run_sleeping(runtime, container_bundle, "resume")

    result = runtime("resume", container_id)

    assert result.returncode == 1
    assert "its status is 'running', not 'paused'" in result.stderr


# --- ps ---------------------------------------------------------------------------------------


def test_ps_json_lists_container_pids(runtime, container_bundle):
    bundle = container_bundle(THREE_PROCESSES)
    container_id = unique_id("psjson")
    init_pid = run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(children_of(init_pid)) == 2)
    expected = {init_pid} | children_of(init_pid)

    result = runtime("ps", "--format", "json", container_id, check=True)

    assert set(json.loads(result.stdout)) == expected
    assert len(json.loads(result.stdout)) == 3


def test_ps_table_lists_processes(runtime, container_bundle):
    bundle = container_bundle(THREE_PROCESSES)
    container_id = unique_id("pstable")
    init_pid = run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(children_of(init_pid)) == 2)
    expected = {init_pid} | children_of(init_pid)

    lines = runtime("ps", container_id, check=True).stdout.splitlines()
    pid_column = lines[0].split().index("PID")

    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert {int(line.split()[pid_column]) for line in lines[1:]} == expected
    assert sum(line.endswith(" sleep 100") for line in lines[1:]) == 2


def test_ps_passes_ps_args(runtime, container_bundle):
    bundle = container_bundle(["sleep", "100"])
    container_id = unique_id("psargs")
    init_pid = run_detached(runtime, bundle, container_id)

    lines = runtime("ps", container_id, "-o", "pid,comm", check=True).stdout.splitlines()

    assert lines[0].split() == ["PID", "COMMAND"]
    assert [line.split() for line in lines[1:]] == [[str(init_pid), "sleep"]]


# --- kill --all -------------------------------------------------------------------------------

# The init and two child shells each record the TERM they receive in /tmp/got.
# The init waits for its children in the trap, so they can write before the
# PID namespace ends with it.
TRAPPING_SHELLS = [
    "sh",
    "-c",
    "trap 'echo 0 >> /tmp/got; wait; exit 0' TERM; "
    "for i in 1 2; do "
    "sh -c \"trap 'echo $i >> /tmp/got; exit 0' TERM; echo $i >> /tmp/ready; while true; do sleep 1; done\" & "
    "done; "
    "echo 0 >> /tmp/ready; while true; do sleep 1; done",
]


def test_kill_all_signals_every_process(runtime, container_bundle, shared):
    bundle = container_bundle(TRAPPING_SHELLS)
    container_id = unique_id("killall")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(read_lines(shared / "ready")) == 3)

    runtime("kill", "--all", container_id, "TERM", check=True)

    assert wait_until(lambda: runtime.state(container_id)["status"] == "stopped")
    assert sorted(read_lines(shared / "got")) == ["0", "1", "2"]


def test_kill_all_sigkill_empties_cgroup(runtime, container_bundle):
    bundle = container_bundle(THREE_PROCESSES)
    container_id = unique_id("killallkill")
    init_pid = run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(children_of(init_pid)) == 2)

    runtime("kill", "--all", container_id, "KILL", check=True)

    assert wait_until(lambda: runtime.state(container_id)["status"] == "stopped")
    assert wait_until(lambda: runtime("ps", "--format", "json", container_id, check=True).stdout.strip() == "[]")


def test_kill_signals_init_only(runtime, container_bundle, shared):
    bundle = container_bundle(TRAPPING_SHELLS)
    container_id = unique_id("killinit")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(read_lines(shared / "ready")) == 3)

    runtime("kill", container_id, "TERM", check=True)
    assert wait_until(lambda: read_lines(shared / "got"))
    time.sleep(0.5)

    assert read_lines(shared / "got") == ["0"]
    assert runtime.state(container_id)["status"] == "running"


# --- events -----------------------------------------------------------------------------------


def test_events_stats_keys(runtime, container_bundle):
    bundle = container_bundle(THREE_PROCESSES)
    container_id = unique_id("stats")
    init_pid = run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: len(children_of(init_pid)) == 2)

    lines = runtime("events", "--stats", container_id, check=True).stdout.splitlines()
    event = json.loads(lines[0])
    data = event["data"]

    assert len(lines) == 1
    assert event["type"] == "stats"
    assert event["id"] == container_id
    assert {"cpu", "memory", "pids", "blkio", "hugetlb"} <= set(data)
    assert data["pids"]["current"] == 3
    assert data["pids"]["limit"] == 0
    assert 0 < data["memory"]["usage"]["usage"] < 64 << 20
    assert data["cpu"]["usage"]["total"] > 0


def test_events_stats_stopped_rejected(runtime, container_bundle):
    bundle = container_bundle(["true"])
    container_id = unique_id("statsstopped")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: runtime.state(container_id)["status"] == "stopped")

    result = runtime("events", "--stats", container_id)

    assert result.returncode == 1
    assert "'stopped'" in result.stderr


def test_events_stream_ends_with_container(runtime, container_bundle, shared):
    bundle = container_bundle(["sh", "-c", "while [ ! -e /tmp/stop ]; do sleep 0.05; done"])
    container_id = unique_id("stream")
    run_detached(runtime, bundle, container_id)

    watcher = subprocess.Popen(runtime.command("events", "--interval", "200ms", container_id),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(watcher.stdout.readline())
        time.sleep(1.0)
        (shared / "stop").touch()
        remaining, errors = watcher.communicate(timeout=STEP_TIMEOUT)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    events = [first] + [json.loads(line) for line in remaining.splitlines()]

    assert watcher.returncode == 0, errors
    assert len(events) >= 4
    assert {event["type"] for event in events} == {"stats"}
    assert all(event["id"] == container_id for event in events)


def test_events_interval_invalid(runtime, container_bundle):
    container_id = run_sleeping(runtime, container_bundle, "interval")

    result = runtime("events", "--interval", "5x", container_id)

    assert result.returncode == 1
    assert "--interval '5x'" in result.stderr


# --- update -----------------------------------------------------------------------------------


def test_update_pids_limit_stops_fork(runtime, container_bundle, shared):
    script = (
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec 2>>/tmp/err; "
        "for i in 1 2 3 4 5 6; do sleep 100 & echo $i >> /tmp/forked; done; wait"
    )
    bundle = container_bundle(["sh", "-c", script])
    container_id = unique_id("updpids")
    run_detached(runtime, bundle, container_id)

    runtime("update", "--pids-limit", "5", container_id, check=True)
    (shared / "go").touch()

    assert read_text(cgroup_file("pids", container_id, "pids.max")).strip() == "5"
    assert wait_until(lambda: "fork" in read_text(shared / "err"))
    assert read_lines(shared / "forked") == ["1", "2", "3", "4"]
    assert stored_resources(runtime, container_id)["pids"] == {"limit": 5}


def test_update_memory_limit_file(runtime, container_bundle):
    container_id = run_sleeping(runtime, container_bundle, "updmem")

    runtime("update", "--memory", "64M", container_id, check=True)

    assert read_text(cgroup_file("memory", container_id, "memory.limit_in_bytes")).strip() == str(64 << 20)
    assert stored_resources(runtime, container_id)["memory"] == {"limit": 64 << 20}


def test_update_resources_stdin(runtime, container_bundle):
    bundle = container_bundle(["sleep", "100"], resources={"memory": {"limit": 128 << 20}})
    container_id = unique_id("updjson")
    run_detached(runtime, bundle, container_id)
    changes = {"pids": {"limit": 7}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "memory": {"limit": 0}}

    runtime("update", "--resources", "-", container_id, check=True, stdin=None, input=json.dumps(changes), text=True)
    resources = stored_resources(runtime, container_id)

    assert read_text(cgroup_file("pids", container_id, "pids.max")).strip() == "7"
    assert read_text(cgroup_file("cpu", container_id, "cpu.shares")).strip() == "512"
    assert read_text(cgroup_file("cpu", container_id, "cpu.cfs_quota_us")).strip() == "50000"
    assert read_text(cgroup_file("memory", container_id, "memory.limit_in_bytes")).strip() == str(128 << 20)
    assert resources["pids"] == {"limit": 7}
    assert resources["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert resources["memory"] == {"limit": 128 << 20}
    assert resources["devices"] == bundle.config["linux"]["resources"]["devices"]


def test_update_period_keeps_quota(runtime, container_bundle):
    bundle = container_bundle(["sleep", "100"], resources={"cpu": {"quota": 30000, "period": 100000}})
    container_id = unique_id("updperiod")
    run_detached(runtime, bundle, container_id)

    runtime("update", "--cpu-period", "200000", container_id, check=True)

    assert read_text(cgroup_file("cpu", container_id, "cpu.cfs_period_us")).strip() == "200000"
    assert read_text(cgroup_file("cpu", container_id, "cpu.cfs_quota_us")).strip() == "30000"
    assert stored_resources(runtime, container_id)["cpu"] == {"quota": 30000, "period": 200000}


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--memory", "12x"),
        ("--memory-swap", "-2"),
        ("--pids-limit", "many"),
        ("--cpu-shares", "-5"),
    ],
)
def test_update_invalid_value_named(runtime, container_bundle, flag, value):
    container_id = run_sleeping(runtime, container_bundle, "updbad")

    result = runtime("update", flag, value, container_id)

    assert result.returncode == 1
    assert f"{flag} '{value}'" in result.stderr


def test_update_kernel_value_rejected(runtime, container_bundle):
    """A cgroup write the kernel rejects fails the update and leaves state.json unchanged."""
    container_id = run_sleeping(runtime, container_bundle, "updrejected")

    result = runtime("update", "--cpuset-cpus", "4096", container_id)

    assert result.returncode == 1
    assert "cpuset.cpus" in result.stderr
    assert "cpu" not in stored_resources(runtime, container_id)


def test_update_stopped_rejected(runtime, container_bundle):
    bundle = container_bundle(["true"])
    container_id = unique_id("updstopped")
    run_detached(runtime, bundle, container_id)
    assert wait_until(lambda: runtime.state(container_id)["status"] == "stopped")

    result = runtime("update", "--pids-limit", "5", container_id)

    assert result.returncode == 1
    assert "its status is 'stopped'" in result.stderr


# --- limits from config.json, enforced in real containers --------------------------------------


def test_memory_limit_oom_kills(runtime, container_bundle, shared, tmp_path):
    script = (
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
        "x=$(dd if=/dev/zero bs=1M count=200 2>/dev/null | tr '\\0' a); echo survived"
    )
    bundle = container_bundle(["sh", "-c", script], resources={"memory": {"limit": 64 << 20}})
    container_id = unique_id("oom")
    output_path = tmp_path / "run.out"
    with open(output_path, "w") as output:
        foreground = subprocess.Popen(runtime.command("run", "--keep", "--bundle", bundle.path, container_id),
                                      stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    watcher = None
    try:
        assert wait_until(lambda: runtime("state", container_id).returncode == 0
                          and runtime.state(container_id)["status"] == "running")
        watcher = subprocess.Popen(runtime.command("events", "--interval", "1s", container_id),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = json.loads(watcher.stdout.readline())
        (shared / "go").touch()

        exit_status = foreground.wait(timeout=60)
        remaining, errors = watcher.communicate(timeout=STEP_TIMEOUT)
    finally:
        for process in (foreground, watcher):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    types = [first["type"]] + [json.loads(line)["type"] for line in remaining.splitlines()]

    assert exit_status == 137, output_path.read_text()
    assert "survived" not in output_path.read_text()
    assert types.count("oom") == 1, errors
    assert watcher.returncode == 0


def test_pids_limit_config_stops_fork(runtime, container_bundle, shared):
    script = "for i in 1 2 3 4; do sleep 100 & echo $i >> /tmp/forked; done; wait"
    bundle = container_bundle(["sh", "-c", script], resources={"pids": {"limit": 3}})
    container_id = unique_id("pidscfg")

    result = runtime("run", "--bundle", bundle.path, container_id)

    assert "can't fork" in result.stderr
    assert read_lines(shared / "forked") == ["1", "2"]


def test_cpu_quota_limits_usage(runtime, container_bundle):
    bundle = container_bundle(["sh", "-c", "while true; do :; done"],
                              resources={"cpu": {"quota": 20000, "period": 100000}})
    container_id = unique_id("quota")
    run_detached(runtime, bundle, container_id)
    usage_file = cgroup_file("cpuacct", container_id, "cpuacct.usage")
    time.sleep(0.3)

    start_usage, start_time = int(read_text(usage_file)), time.monotonic()
    time.sleep(1.0)
    used = (int(read_text(usage_file)) - start_usage) / 1e9 / (time.monotonic() - start_time)

    assert used < 0.3
    assert used > 0.02


# Container devices and rules of the device tests, shared with the other container test file.
DEVICE_SCRIPT = cgroup_testlib.DEVICE_SCRIPT
DEVICE_NODES = cgroup_testlib.DEVICE_NODES
DEVICE_RULES = cgroup_testlib.DEVICE_RULES


def test_device_allowed_opens(runtime, container_bundle):
    bundle = container_bundle(["sh", "-c", DEVICE_SCRIPT], resources=DEVICE_RULES, devices=DEVICE_NODES)

    result = runtime("run", "--bundle", bundle.path, unique_id("devallow"))

    assert result.returncode == 0, result.stderr
    assert "allowed-opened" in result.stdout.split()


def test_device_denied_cannot_open(runtime, container_bundle):
    bundle = container_bundle(["sh", "-c", DEVICE_SCRIPT], resources=DEVICE_RULES, devices=DEVICE_NODES)

    result = runtime("run", "--bundle", bundle.path, unique_id("devdeny"))

    assert result.returncode == 0, result.stderr
    assert "denied-failed" in result.stdout.split()


# --- features ---------------------------------------------------------------------------------


def test_features_document(runtime):
    from navio_runtime.spec.validate import validate_features

    features = json.loads(runtime("features", check=True).stdout)
    linux = features["linux"]

    assert validate_features(features) == []
    assert features["ociVersionMin"] == "1.0.0"
    assert features["ociVersionMax"] == "1.3.0"
    assert {"pid", "network", "mount", "ipc", "uts", "cgroup", "user"} <= set(linux["namespaces"])
    assert set(linux["cgroup"]) == {"v1", "v2", "systemd", "systemdUser", "rdma"}
    assert linux["cgroup"]["v1"] is True
    assert "CAP_SYS_ADMIN" in linux["capabilities"]
    assert "SCMP_ACT_ERRNO" in linux["seccomp"]["actions"]
    assert set(linux["seccomp"]["supportedFlags"]) <= set(linux["seccomp"]["knownFlags"])
    assert {"ro", "nosuid", "rbind", "rprivate", "rro"} <= set(features["mountOptions"])
    assert "idmap" not in features["mountOptions"]
    assert features["annotations"]["org.navio-runtime.cgroup.mode"] == detect_mode()
    assert "memory" in features["annotations"]["org.navio-runtime.cgroup.v1.controllers"].split(",")


def test_features_matches_schema_file(runtime):
    schema_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas",
                               "features-schema.json")
    if not os.path.exists(schema_path):
        pytest.skip(f"{schema_path} does not exist")
    import jsonschema
    import referencing

    schema_dir = os.path.dirname(schema_path)
    registry = referencing.Registry()
    for name in os.listdir(schema_dir):
        if name.endswith(".json"):
            with open(os.path.join(schema_dir, name)) as schema_file:
                resource = referencing.Resource.from_contents(json.load(schema_file))
            registry = registry.with_resource(name, resource)
    with open(schema_path) as schema_file:
        schema = json.load(schema_file)

    features = json.loads(runtime("features", check=True).stdout)
    validator = jsonschema.Draft7Validator(schema, registry=registry)

    assert [error.message for error in validator.iter_errors(features)] == []
