"""The container lifecycle through the CLI: create, start, state, kill, delete and run.

Every test drives real containers and checks what `state` reports, what the
commands exit with and what they print, and that nothing is left on the host
(state directory, cgroups under /sys/fs/cgroup/*/navio/<id>, processes).
"""

import os
import signal
import subprocess
import time

import pytest

# Seconds to wait for a container process to react to a signal or a file.
REACTION_TIMEOUT = 10.0

# The shell waits in `wait`, which a trapped signal interrupts at once.
TRAP_TERM_SCRIPT = "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 60 & wait"


def wait_for_status(runtime, container_id, expected, timeout=REACTION_TIMEOUT):
    """Poll `state` until the status is `expected` and return the state document. Fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        document = runtime.state(container_id)
        if document["status"] == expected or time.monotonic() > deadline:
            assert document["status"] == expected, f"status is still {document['status']!r} after {timeout} s"
            return document
        time.sleep(0.02)


def wait_for_text(path, text, timeout=REACTION_TIMEOUT):
    """Poll the file at `path` until it contains `text`, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as output:
                if text in output.read():
                    return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"{path} did not show {text!r} within {timeout} s"
        time.sleep(0.01)


def process_alive(pid):
    """Return True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def gate_bundle(make_bundle, base_config, tmp_path):
    """Return (bundle, gate directory): the container waits until a file named "go" appears in the gate."""
    gate = tmp_path / "gate"
    gate.mkdir()
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "type": "bind", "source": str(gate), "options": ["rbind"]},
    ]
    script = "while [ ! -e /tmp/go ]; do sleep 0.02; done; echo done > /tmp/finished"
    return make_bundle(args=["sh", "-c", script], mounts=mounts), gate


@pytest.fixture
def created(runtime, make_bundle, new_id):
    """Create a container that would sleep for a minute, and return its id."""
    container_id = new_id("created")
    bundle = make_bundle(args=["sh", "-c", TRAP_TERM_SCRIPT])
    runtime("create", "--bundle", bundle.path, container_id, check=True)
    return container_id


@pytest.fixture
def running(runtime, created):
    """Start the `created` container and return its id."""
    runtime("start", created, check=True)
    return created


# ---------------------------------------------------------------------------
# Status transitions
# ---------------------------------------------------------------------------


def test_created_running_stopped(runtime, make_bundle, base_config, new_id, tmp_path):
    bundle, gate = gate_bundle(make_bundle, base_config, tmp_path)
    container_id = new_id("cycle")

    runtime("create", "--bundle", bundle.path, container_id, check=True)
    created = runtime.state(container_id)

    runtime("start", container_id, check=True)
    running = runtime.state(container_id)

    (gate / "go").touch()
    wait_for_text(gate / "finished", "done")
    stopped = wait_for_status(runtime, container_id, "stopped")

    assert created["status"] == "created"
    assert running["status"] == "running"
    assert created["pid"] == running["pid"]
    assert created["pid"] > 0
    assert stopped["status"] == "stopped"


def test_state_document_fields(runtime, created):
    document = runtime.state(created)

    assert document["id"] == created
    assert document["ociVersion"] == "1.3.0"
    assert os.path.isabs(document["bundle"])
    assert os.path.isdir(document["rootfs"])
    assert process_alive(document["pid"])


def test_stopped_without_monitor(runtime, make_bundle, new_id):
    # `run -d` leaves no runtime process behind to watch the container.
    container_id = new_id("nomonitor")
    bundle = make_bundle(args=["true"])

    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)

    assert wait_for_status(runtime, container_id, "stopped")["pid"] == 0


def test_start_running_fails(runtime, running):
    before = runtime.state(running)

    result = runtime("start", running)

    assert result.returncode == 1
    assert running in result.stderr
    assert "running" in result.stderr
    assert runtime.state(running) == before


def test_start_stopped_fails(runtime, running):
    runtime("kill", running, "KILL", check=True)
    wait_for_status(runtime, running, "stopped")

    result = runtime("start", running)

    assert result.returncode == 1
    assert "stopped" in result.stderr
    assert runtime.state(running)["status"] == "stopped"


def test_kill_stopped_fails(runtime, running):
    runtime("kill", running, "KILL", check=True)
    wait_for_status(runtime, running, "stopped")

    result = runtime("kill", running, "KILL")

    assert result.returncode == 1
    assert running in result.stderr
    assert "stopped" in result.stderr


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_unknown_id_fails(runtime, new_id, command):
    container_id = new_id("unknown")

    result = runtime(command, container_id)

    assert result.returncode == 1
    assert container_id in result.stderr
    assert "not found" in result.stderr
    assert result.stdout == ""


def test_force_delete_unknown_succeeds(runtime, new_id):
    result = runtime("delete", "--force", new_id("unknown"))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_invalid_id_rejected(runtime, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("create", "--bundle", bundle.path, "../escape")

    assert result.returncode == 1
    assert "../escape" in result.stderr
    assert not os.path.exists(os.path.join(os.path.dirname(runtime.root), "escape"))


# ---------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------


def test_delete_created_needs_force(runtime, created):
    result = runtime("delete", created)

    assert result.returncode == 1
    assert "created" in result.stderr
    assert "--force" in result.stderr
    assert runtime.state(created)["status"] == "created"
    # Untouched: it can still be started.
    runtime("start", created, check=True)
    assert runtime.state(created)["status"] == "running"


def test_delete_running_needs_force(runtime, running):
    pid = runtime.state(running)["pid"]

    result = runtime("delete", running)

    assert result.returncode == 1
    assert "running" in result.stderr
    assert runtime.state(running)["status"] == "running"
    assert process_alive(pid)


def test_force_delete_running(runtime, running, leftovers):
    pid = runtime.state(running)["pid"]

    result = runtime("delete", "--force", running)

    assert result.returncode == 0, result.stderr
    assert not process_alive(pid)
    assert runtime("state", running).returncode == 1
    assert leftovers(running) == {"cgroups": [], "processes": []}


def test_force_delete_created(runtime, created, leftovers):
    pid = runtime.state(created)["pid"]

    result = runtime("delete", "--force", created)

    assert result.returncode == 0, result.stderr
    assert not process_alive(pid)
    assert leftovers(created) == {"cgroups": [], "processes": []}


def test_delete_stopped(runtime, running, leftovers):
    runtime("kill", running, "KILL", check=True)
    wait_for_status(runtime, running, "stopped")

    result = runtime("delete", running)

    assert result.returncode == 0, result.stderr
    assert runtime("state", running).returncode == 1
    assert leftovers(running) == {"cgroups": [], "processes": []}


def test_delete_kills_child_processes(runtime, make_bundle, new_id, leftovers):
    # The shell is PID 1, and its background sleeps live in the same cgroup.
    container_id = new_id("children")
    bundle = make_bundle(args=["sh", "-c", "sleep 60 & sleep 60 & echo ready; wait"])
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    wait_for_status(runtime, container_id, "running")

    result = runtime("delete", "--force", container_id)

    assert result.returncode == 0, result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_delete_stopped_kills_orphans(runtime, make_bundle, base_config, new_id, leftovers):
    # Without a pid namespace the background sleep outlives the shell that started it.
    linux = base_config()["linux"]
    linux["namespaces"] = [entry for entry in linux["namespaces"] if entry["type"] != "pid"]
    container_id = new_id("orphans")
    bundle = make_bundle(args=["sh", "-c", "sleep 60 & exit 0"], linux=linux)
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    wait_for_status(runtime, container_id, "stopped")

    result = runtime("delete", container_id)

    assert result.returncode == 0, result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


# ---------------------------------------------------------------------------
# create
# ---------------------------------------------------------------------------


def test_create_existing_id_fails(runtime, created, make_bundle):
    before = runtime.state(created)
    other = make_bundle(args=["true"])

    result = runtime("create", "--bundle", other.path, created)

    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert created in result.stderr
    assert runtime.state(created) == before
    assert process_alive(before["pid"])
    runtime("start", created, check=True)
    assert runtime.state(created)["status"] == "running"


def test_concurrent_create_one_wins(runtime, make_bundle, new_id, tmp_path, leftovers):
    container_id = new_id("race")
    runtime.ids.add(container_id)
    bundles = [make_bundle(args=["sleep", "60"]) for _ in range(6)]
    outputs = [open(tmp_path / f"create-{index}.err", "w+") for index in range(len(bundles))]

    processes = [
        subprocess.Popen(runtime.command("create", "--bundle", bundle.path, container_id),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=output)
        for bundle, output in zip(bundles, outputs)
    ]
    codes = [process.wait(timeout=60) for process in processes]
    messages = []
    for output in outputs:
        output.seek(0)
        messages.append(output.read())
        output.close()

    winners = [index for index, code in enumerate(codes) if code == 0]
    assert len(winners) == 1, (codes, messages)
    for index, code in enumerate(codes):
        if index != winners[0]:
            assert code == 1, messages[index]
            assert "already exists" in messages[index], messages[index]
    document = runtime.state(container_id)
    assert document["status"] == "created"
    assert document["bundle"] == bundles[winners[0]].path
    assert len(leftovers(container_id)["processes"]) == 1


def test_create_64_character_id(runtime, make_bundle, leftovers):
    # containerd names containers with 64 hex digits.
    container_id = "0123456789abcdef" * 4
    bundle = make_bundle(args=["sleep", "60"])
    assert len(os.path.join(runtime.root, container_id, "exec.sock")) > 108, "the state root is too short to test this"

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 0, result.stderr
    assert runtime.state(container_id)["status"] == "created"


def test_missing_executable_fails_create(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("noexec")
    bundle = make_bundle(args=["no-such-program", "--flag"])

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert "no-such-program" in result.stderr
    assert "not found" in result.stderr
    assert runtime("state", container_id).returncode == 1
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_missing_absolute_executable(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("noexec")
    bundle = make_bundle(args=["/bin/no-such-program"])

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert "/bin/no-such-program" in result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_non_executable_file_fails_create(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("noperm")
    bundle = make_bundle(args=["/etc/passwd"])

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert "/etc/passwd" in result.stderr
    assert "permission denied" in result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_create_leaves_cgroup_until_delete(runtime, created, leftovers):
    found = leftovers(created)

    assert found["cgroups"] != []
    assert found["processes"] == [runtime.state(created)["pid"]]


# ---------------------------------------------------------------------------
# kill
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("signal_name", ["TERM", "SIGTERM", "15", "sigterm"])
def test_kill_term_spellings(runtime, running, signal_name):
    result = runtime("kill", running, signal_name)

    assert result.returncode == 0, result.stderr
    wait_for_status(runtime, running, "stopped")


def test_kill_default_is_term(runtime, running):
    result = runtime("kill", running)

    assert result.returncode == 0, result.stderr
    wait_for_status(runtime, running, "stopped")


def test_kill_with_kill(runtime, make_bundle, new_id):
    # sleep as PID 1 has no handlers, so only SIGKILL ends it.
    container_id = new_id("sigkill")
    bundle = make_bundle(args=["sleep", "60"])
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)

    result = runtime("kill", container_id, "KILL")

    assert result.returncode == 0, result.stderr
    wait_for_status(runtime, container_id, "stopped")


@pytest.mark.parametrize("signal_name", ["NOSUCHSIG", "SIGFOO", "0", "65", "-9", ""])
def test_kill_invalid_signal(runtime, running, signal_name):
    result = runtime("kill", running, signal_name)

    assert result.returncode == 1
    assert "signal" in result.stderr
    assert runtime.state(running)["status"] == "running"


@pytest.mark.parametrize("signal_name", ["TERM", "KILL"])
def test_kill_created_container(runtime, created, signal_name):
    result = runtime("kill", created, signal_name)

    assert result.returncode == 0, result.stderr
    wait_for_status(runtime, created, "stopped")


def test_start_after_kill_fails(runtime, created):
    runtime("kill", created, "KILL", check=True)
    wait_for_status(runtime, created, "stopped")

    result = runtime("start", created)

    assert result.returncode == 1
    assert "stopped" in result.stderr


def test_kill_all_processes(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("killall")
    bundle = make_bundle(args=["sh", "-c", "sleep 60 & sleep 60 & wait"])
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    wait_for_status(runtime, container_id, "running")

    result = runtime("kill", "--all", container_id, "KILL")

    assert result.returncode == 0, result.stderr
    wait_for_status(runtime, container_id, "stopped")
    deadline = time.monotonic() + REACTION_TIMEOUT
    while leftovers(container_id)["processes"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert leftovers(container_id)["processes"] == []


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------


def test_run_exit_status(run_container):
    result = run_container(["sh", "-c", "exit 7"])

    assert result.returncode == 7


def test_run_killed_by_signal(run_container, base_config):
    # As PID 1 of a pid namespace the shell would ignore its own SIGKILL, so this
    # container shares the host's pid namespace.
    namespaces = [entry for entry in base_config()["linux"]["namespaces"] if entry["type"] != "pid"]
    linux = base_config()["linux"]
    linux["namespaces"] = namespaces

    result = run_container(["sh", "-c", "kill -9 $$"], linux=linux)

    assert result.returncode == 137


def test_run_killed_from_host(runtime, make_bundle, new_id, tmp_path):
    container_id = new_id("hostkill")
    bundle = make_bundle(args=["sleep", "60"])
    pid_file = tmp_path / "pid"
    runtime.ids.add(container_id)
    process = subprocess.Popen(runtime.command("run", "--bundle", bundle.path, "--pid-file", str(pid_file),
                                               container_id),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The pid file appears at the end of create, before `state` reports "running".
        wait_for_text(pid_file, "")
        wait_for_status(runtime, container_id, "running")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

        code = process.wait(timeout=REACTION_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert code == 128 + signal.SIGKILL


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_run_forwards_signal(runtime, make_bundle, new_id, tmp_path, signum):
    name = signal.Signals(signum).name[3:]
    script = f"trap 'echo got {name}; exit 3' {name}; echo ready; sleep 60 & wait"
    bundle = make_bundle(args=["sh", "-c", script])
    container_id = new_id("forward")
    runtime.ids.add(container_id)
    output_path = tmp_path / "run.out"
    with open(output_path, "w") as output:
        process = subprocess.Popen(runtime.command("run", "--bundle", bundle.path, container_id),
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_text(output_path, "ready")
        # Give `run` time to install its handlers after start returns.
        time.sleep(0.3)
        process.send_signal(signum)

        code = process.wait(timeout=REACTION_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert code == 3, output_path.read_text()
    assert f"got {name}" in output_path.read_text()


def test_signal_during_poststart_forwarded(runtime, make_bundle, new_id, tmp_path):
    bundle = make_bundle(args=["sh", "-c", TRAP_TERM_SCRIPT],
                         hooks={"poststart": [{"path": "/bin/sleep", "args": ["sleep", "1"]}]})
    container_id = new_id("earlysig")
    runtime.ids.add(container_id)
    output_path = tmp_path / "run.out"
    with open(output_path, "w") as output:
        process = subprocess.Popen(runtime.command("run", "--bundle", bundle.path, container_id),
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        # The container runs while `run` still waits for the poststart hook.
        wait_for_text(output_path, "ready")
        process.send_signal(signal.SIGTERM)

        code = process.wait(timeout=REACTION_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert code == 3, output_path.read_text()


def test_run_detach_returns(runtime, make_bundle, new_id):
    container_id = new_id("detach")
    bundle = make_bundle(args=["sleep", "60"])
    started = time.monotonic()

    result = runtime("run", "-d", "--bundle", bundle.path, container_id, timeout=20)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert runtime.state(container_id)["status"] == "running"


def test_run_deletes_container(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("rundel")
    bundle = make_bundle(args=["true"])

    result = runtime("run", "--bundle", bundle.path, container_id)

    assert result.returncode == 0, result.stderr
    assert runtime("state", container_id).returncode == 1
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_run_keep_leaves_stopped(runtime, make_bundle, new_id):
    container_id = new_id("keep")
    bundle = make_bundle(args=["true"])

    result = runtime("run", "--keep", "--bundle", bundle.path, container_id)

    assert result.returncode == 0, result.stderr
    assert runtime.state(container_id)["status"] == "stopped"


def test_run_separates_stdout_stderr(run_container):
    result = run_container(["sh", "-c", "echo out; echo err >&2; exit 0"])

    assert result.returncode == 0
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_run_passes_stdin(runtime, make_bundle, new_id, tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("line one\nline two\n")
    bundle = make_bundle(args=["sh", "-c", "wc -l"])

    with open(source) as stdin:
        result = runtime("run", "--bundle", bundle.path, new_id("stdin"), stdin=stdin)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_run_existing_id_fails(runtime, created, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("run", "--bundle", bundle.path, created)

    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert runtime.state(created)["status"] == "created"


def test_force_delete_corrupt_state(runtime):
    # A state directory as a crash during a write on an unsafe filesystem could leave it.
    os.mkdir(f"{runtime.root}/corrupt")
    with open(f"{runtime.root}/corrupt/state.json", "w") as state_file:
        state_file.write("{not json")

    plain = runtime("delete", "corrupt")
    forced = runtime("delete", "--force", "corrupt")

    assert plain.returncode == 1
    assert "corrupt" in plain.stderr
    assert forced.returncode == 0
    assert not os.path.exists(f"{runtime.root}/corrupt")
