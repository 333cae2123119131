"""The first thing a user does: run the busybox bundle."""

import json


def test_run_shows_hostname_and_pid1(runtime, make_bundle):
    bundle = make_bundle(args=["sh", "-c", "hostname; echo $$"])

    result = runtime("run", "smoke", cwd=bundle.path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["navio", "1"]


def test_create_start_state_delete(runtime, make_bundle):
    bundle = make_bundle(args=["sleep", "30"])

    runtime("create", "--bundle", bundle.path, "cycle", check=True)
    assert runtime.state("cycle")["status"] == "created"
    runtime("start", "cycle", check=True)
    assert runtime.state("cycle")["status"] == "running"
    runtime("kill", "cycle", "KILL", check=True)
    runtime("delete", "--force", "cycle", check=True)
    assert runtime("state", "cycle").returncode == 1
