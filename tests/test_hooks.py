"""OCI hooks: each stage runs at its point of the lifecycle with the container state on stdin."""

import json
import os
import stat

import pytest


def _recording_hook(directory, name):
    """Write a host script that stores its stdin, argv and one env variable under `directory`."""
    path = directory / f"{name}.sh"
    path.write_text(
        "#!/bin/sh\n"
        f'cat > "{directory}/{name}.state"\n'
        f'echo "$@" > "{directory}/{name}.args"\n'
        f'echo "$HOOK_STAGE" > "{directory}/{name}.env"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {"path": str(path), "args": [name, "first", "second"], "env": [f"HOOK_STAGE={name}"]}


@pytest.fixture
def hooked_bundle(make_bundle, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    bundle = make_bundle(args=["sleep", "30"], private_rootfs=True)
    bundle.config["hooks"] = {
        stage: [_recording_hook(records, stage)]
        for stage in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    bundle.config["hooks"]["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer.state"]}
    ]
    bundle.config["root"]["readonly"] = False
    bundle.write()
    return bundle, records


def test_create_hooks_run_at_create(runtime, hooked_bundle):
    bundle, records = hooked_bundle

    runtime("create", "-b", bundle.path, "hooks1", check=True)

    for stage in ("prestart", "createRuntime", "createContainer"):
        state = json.loads((records / f"{stage}.state").read_text())
        assert state["id"] == "hooks1", stage
        assert state["status"] == "creating", stage
        assert state["pid"] > 0, stage
        assert (records / f"{stage}.args").read_text().split() == ["first", "second"], stage
        assert (records / f"{stage}.env").read_text().strip() == stage, stage
    assert not (records / "poststart.state").exists()


def test_start_hooks_run_at_start(runtime, hooked_bundle):
    bundle, records = hooked_bundle
    runtime("create", "-b", bundle.path, "hooks2", check=True)

    runtime("start", "hooks2", check=True)

    with open(os.path.join(bundle.path, "rootfs", "tmp", "startContainer.state")) as state_file:
        inside = json.load(state_file)
    assert inside["id"] == "hooks2"
    poststart = json.loads((records / "poststart.state").read_text())
    assert poststart["status"] == "running"
    assert not (records / "poststop.state").exists()


def test_poststop_runs_at_delete(runtime, hooked_bundle):
    bundle, records = hooked_bundle
    runtime("create", "-b", bundle.path, "hooks3", check=True)
    runtime("start", "hooks3", check=True)

    runtime("delete", "--force", "hooks3", check=True)

    poststop = json.loads((records / "poststop.state").read_text())
    assert poststop["id"] == "hooks3"
    assert poststop["status"] == "stopped"


def test_failing_prestart_hook_aborts_create(runtime, make_bundle, tmp_path):
    bundle = make_bundle(args=["true"])
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}]}
    bundle.write()

    result = runtime("create", "-b", bundle.path, "hooks4")

    assert result.returncode == 1
    assert "hooks.prestart[0]" in result.stderr
    assert "exited with status 3: broken" in result.stderr
    assert not os.path.exists(os.path.join(runtime.root, "hooks4"))


def test_hook_timeout_aborts_create(runtime, make_bundle):
    bundle = make_bundle(args=["true"])
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    bundle.write()

    result = runtime("create", "-b", bundle.path, "hooks5")

    assert result.returncode == 1
    assert "timed out after 1 s" in result.stderr
