"""Cases an operator runs into that runc handles: paused containers, broken state, bad flags."""

import os
import time


def _wait_for_status(runtime, container_id, expected_status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = runtime("state", container_id)
        if result.returncode != 0 or '"status": "%s"' % expected_status in result.stdout:
            return result
        time.sleep(0.02)
    raise AssertionError(f"{container_id} did not reach {expected_status}")


def test_kill_paused_container(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "paused-kill", check=True)
    runtime("pause", "paused-kill", check=True)

    killed = runtime("kill", "paused-kill", "KILL")
    _wait_for_status(runtime, "paused-kill", "stopped")

    assert killed.returncode == 0, killed.stderr
    assert runtime.state("paused-kill")["status"] == "stopped"


def test_force_delete_paused_container(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "paused-delete", check=True)
    runtime("pause", "paused-delete", check=True)

    started = time.monotonic()
    deleted = runtime("delete", "--force", "paused-delete")

    assert deleted.returncode == 0, deleted.stderr
    assert time.monotonic() - started < 5
    assert not os.path.exists(os.path.join(runtime.root, "paused-delete"))


def test_exec_paused_rejected(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "paused-exec", check=True)
    runtime("pause", "paused-exec", check=True)

    rejected = runtime("exec", "paused-exec", "true")
    ignoring = runtime("exec", "-d", "--ignore-paused", "paused-exec", "true", timeout=20)

    assert rejected.returncode == 1
    assert "resume it first" in rejected.stderr
    assert ignoring.returncode == 1
    assert "--ignore-paused is not supported" in ignoring.stderr


def test_list_skips_corrupt_state(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "healthy", check=True)
    os.mkdir(os.path.join(runtime.root, "broken"))
    with open(os.path.join(runtime.root, "broken", "state.json"), "w") as state_file:
        state_file.write("garbage")

    listed = runtime("list", "-q")
    runtime("delete", "--force", "broken", check=True)

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["healthy"]
    assert "skipping container broken" in listed.stderr


def test_log_file_unwritable(runtime, tmp_path):
    result = runtime("--log", str(tmp_path / "missing" / "x.log"), "list")

    assert result.returncode == 1
    assert "cannot open the log file" in result.stderr
    assert "Traceback" not in result.stderr


def test_exec_env_needs_equals(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "300"])
    runtime("run", "-d", "-b", bundle.path, "env-check", check=True)

    result = runtime("exec", "-e", "NOEQUALS", "env-check", "true")

    assert result.returncode == 1
    assert "use NAME=VALUE" in result.stderr


def test_dot_dot_id_message(runtime):
    result = runtime("state", "..")

    assert result.returncode == 1
    assert "'.' and '..' are not allowed" in result.stderr


def test_pid_file_in_missing_directory(runtime, make_bundle, tmp_path):
    bundle = make_bundle(args=["true"])
    pid_file = tmp_path / "missing" / "init.pid"

    result = runtime("create", "--pid-file", str(pid_file), "-b", bundle.path, "pidfile-error")

    assert result.returncode == 1
    assert f"--pid-file {pid_file}: cannot write it" in result.stderr
    assert not os.path.exists(os.path.join(runtime.root, "pidfile-error"))
