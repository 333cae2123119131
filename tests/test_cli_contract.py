"""What callers such as containerd and podman rely on: output formats, exit codes, pid files and logs."""

import json
import os
import re

import pytest

from navio_runtime.container.create import load_spec
from navio_runtime.plan import build_plan

# runc's RFC 3339 form of `created`: UTC, a fraction of a second and "Z".
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")

PLAN_STAGES = ["runtime", "namespaces", "rootfs", "container", "process"]


@pytest.fixture
def created(runtime, make_bundle, new_id):
    """Create a container that would sleep for a minute, and return its id."""
    container_id = new_id("cli")
    bundle = make_bundle(args=["sleep", "60"])
    runtime("create", "--bundle", bundle.path, container_id, check=True)
    return container_id


def invalid_bundle(make_bundle, base_config):
    """Return a bundle whose second namespace has the type "netz"."""
    linux = base_config()["linux"]
    linux["namespaces"][1]["type"] = "netz"
    return make_bundle(args=["true"], linux=linux)


def logged_id(runtime, new_id):
    """Return a new id registered for cleanup, which the fixture does only for calls that start with the command."""
    container_id = new_id("log")
    runtime.ids.add(container_id)
    return container_id


def read_log_records(path):
    with open(path) as log_file:
        return [json.loads(line) for line in log_file if line.strip()]


# ---------------------------------------------------------------------------
# pid file
# ---------------------------------------------------------------------------


def test_pid_file_is_bare_number(runtime, make_bundle, new_id, tmp_path):
    container_id = new_id("pidfile")
    bundle = make_bundle(args=["sleep", "60"])
    pid_file = tmp_path / "container.pid"

    runtime("create", "--bundle", bundle.path, "--pid-file", str(pid_file), container_id, check=True)

    text = pid_file.read_text()
    assert text.isdigit(), repr(text)
    assert int(text) == runtime.state(container_id)["pid"]


def test_pid_file_relative_to_cwd(runtime, make_bundle, new_id, tmp_path):
    container_id = new_id("pidfile")
    bundle = make_bundle(args=["sleep", "60"])

    runtime("create", "--bundle", bundle.path, "--pid-file", "relative.pid", container_id, cwd=str(tmp_path),
            check=True)

    assert int((tmp_path / "relative.pid").read_text()) == runtime.state(container_id)["pid"]


def test_run_detach_pid_file(runtime, make_bundle, new_id, tmp_path):
    container_id = new_id("pidfile")
    bundle = make_bundle(args=["sleep", "60"])
    pid_file = tmp_path / "run.pid"

    runtime("run", "-d", "--bundle", bundle.path, "--pid-file", str(pid_file), container_id, check=True)

    assert int(pid_file.read_text()) == runtime.state(container_id)["pid"]


def test_failed_create_writes_no_pid_file(runtime, make_bundle, new_id, tmp_path):
    bundle = make_bundle(args=["no-such-program"])
    pid_file = tmp_path / "failed.pid"

    result = runtime("create", "--bundle", bundle.path, "--pid-file", str(pid_file), new_id("pidfile"))

    assert result.returncode == 1
    assert not pid_file.exists()


# ---------------------------------------------------------------------------
# state and list
# ---------------------------------------------------------------------------


def test_state_prints_only_json(runtime, created):
    result = runtime("state", created)

    assert result.returncode == 0
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["id"] == created


def test_state_created_is_rfc3339(runtime, created):
    assert RFC3339_UTC.match(runtime.state(created)["created"])


def test_state_shows_annotations(runtime, make_bundle, new_id):
    container_id = new_id("annotated")
    bundle = make_bundle(args=["sleep", "60"], annotations={"org.example.key": "value"})

    runtime("create", "--bundle", bundle.path, container_id, check=True)

    assert runtime.state(container_id)["annotations"] == {"org.example.key": "value"}


def test_list_table(runtime, created):
    result = runtime("list")

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(rows) == 1
    fields = rows[0].split()
    assert fields[0] == created
    assert fields[1] == str(runtime.state(created)["pid"])
    assert fields[2] == "created"


def test_list_json(runtime, created):
    result = runtime("list", "--format", "json")

    assert result.returncode == 0, result.stderr
    containers = json.loads(result.stdout)
    assert [container["id"] for container in containers] == [created]
    assert containers[0]["status"] == "created"
    assert containers[0]["pid"] == runtime.state(created)["pid"]


def test_list_quiet(runtime, make_bundle, new_id):
    ids = sorted(new_id("quiet") for _ in range(2))
    for container_id in ids:
        bundle = make_bundle(args=["sleep", "60"])
        runtime("create", "--bundle", bundle.path, container_id, check=True)

    result = runtime("list", "-q")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ids


def test_list_empty_root(runtime):
    table = runtime("list")
    documents = runtime("list", "--format", "json")
    quiet = runtime("list", "-q")

    assert table.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert json.loads(documents.stdout) == []
    assert quiet.stdout == ""


def test_list_missing_root(runtime, tmp_path):
    result = runtime("--root", str(tmp_path / "never-created"), "list", "-q")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------------------
# Logs and errors
# ---------------------------------------------------------------------------


def test_json_log_lines(runtime, make_bundle, new_id, tmp_path):
    log_path = tmp_path / "runtime.log"
    bundle = make_bundle(args=["true"])

    container_id = logged_id(runtime, new_id)

    result = runtime("--log", str(log_path), "--log-format", "json", "run", "--bundle", bundle.path, container_id)

    assert result.returncode == 0, result.stderr
    records = read_log_records(log_path)
    assert records != []
    for record in records:
        assert set(record) >= {"level", "msg", "time"}, record
        assert RFC3339_UTC.match(record["time"]), record


def test_json_log_ends_with_error(runtime, make_bundle, new_id, tmp_path):
    log_path = tmp_path / "runtime.log"
    bundle = make_bundle(args=["no-such-program"])

    container_id = logged_id(runtime, new_id)

    result = runtime("--log", str(log_path), "--log-format", "json", "create", "--bundle", bundle.path,
                     container_id)

    assert result.returncode == 1
    last = read_log_records(log_path)[-1]
    assert last["level"] == "error"
    assert "no-such-program" in last["msg"]


def test_json_log_spec_error(runtime, make_bundle, base_config, new_id, tmp_path):
    log_path = tmp_path / "runtime.log"
    bundle = invalid_bundle(make_bundle, base_config)

    container_id = logged_id(runtime, new_id)

    result = runtime("--log", str(log_path), "--log-format", "json", "create", "--bundle", bundle.path,
                     container_id)

    assert result.returncode == 1
    last = read_log_records(log_path)[-1]
    assert last["level"] == "error"
    assert "linux.namespaces[1].type" in last["msg"]


def test_text_log_has_error(runtime, make_bundle, new_id, tmp_path):
    log_path = tmp_path / "runtime.log"
    bundle = make_bundle(args=["no-such-program"])

    container_id = logged_id(runtime, new_id)

    runtime("--log", str(log_path), "create", "--bundle", bundle.path, container_id)

    lines = log_path.read_text().splitlines()
    assert "ERROR" in lines[-1]
    assert "no-such-program" in lines[-1]


def test_error_on_stderr_only(runtime, new_id):
    container_id = new_id("missing")

    result = runtime("kill", container_id, "KILL")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("navio-runtime: ")
    assert container_id in result.stderr


def test_invalid_bundle_creates_nothing(runtime, make_bundle, base_config, new_id, leftovers):
    container_id = new_id("invalid")
    bundle = invalid_bundle(make_bundle, base_config)

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert "linux.namespaces[1].type" in result.stderr
    assert "netz" in result.stderr
    assert not os.path.exists(os.path.join(runtime.root, container_id))
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_missing_config_named(runtime, tmp_path, new_id):
    empty = tmp_path / "empty-bundle"
    empty.mkdir()

    result = runtime("create", "--bundle", str(empty), new_id("noconfig"))

    assert result.returncode == 1
    assert str(empty / "config.json") in result.stderr


def test_malformed_config_named(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["true"])
    with open(bundle.config_path, "w") as config_file:
        config_file.write('{"ociVersion": "1.3.0", ')

    result = runtime("create", "--bundle", bundle.path, new_id("badjson"))

    assert result.returncode == 1
    assert "config.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_rootfs_named(runtime, make_bundle, new_id, leftovers):
    container_id = new_id("norootfs")
    bundle = make_bundle(args=["true"], root={"path": "no-such-rootfs", "readonly": True})

    result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert "no-such-rootfs" in result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


def test_unknown_command_usage(runtime):
    result = runtime("frobnicate")

    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_version_lines(runtime):
    result = runtime("--version")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("navio-runtime ")
    assert lines[1] == "spec: 1.3.0"


# ---------------------------------------------------------------------------
# check, plan and spec
# ---------------------------------------------------------------------------


def test_check_lists_each_problem(runtime, make_bundle, base_config):
    config = base_config()
    config["linux"]["namespaces"][1]["type"] = "netz"
    config["process"]["cwd"] = "relative/dir"
    bundle = make_bundle(args=["true"], linux=config["linux"], process=config["process"])

    result = runtime("check", "--bundle", bundle.path)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("linux.namespaces[1].type: ") for line in lines), lines
    assert any(line.startswith("process.cwd: ") for line in lines), lines
    assert "problem" in result.stderr


def test_check_valid_bundle(runtime, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("check", "--bundle", bundle.path)

    assert result.returncode == 0, result.stdout
    assert "valid" in result.stdout


def test_plan_text_stages(runtime, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("plan", "--bundle", bundle.path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    stages = [line[:-1] for line in lines if not line.startswith(" ")]
    assert stages == PLAN_STAGES
    assert lines[-1].strip().startswith("exec args=true")


def test_plan_json_matches_library(runtime, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("plan", "--bundle", bundle.path, "--format", "json")

    assert result.returncode == 0, result.stderr
    operations = json.loads(result.stdout)
    expected = [operation.to_dict() for operation in build_plan(load_spec(bundle.path), bundle.path)]
    assert operations == json.loads(json.dumps(expected))


def test_plan_no_pivot(runtime, make_bundle):
    bundle = make_bundle(args=["true"])

    result = runtime("plan", "--bundle", bundle.path, "--no-pivot", "--format", "json")

    actions = [operation["action"] for operation in json.loads(result.stdout)]
    assert "chroot" in actions
    assert "pivot-root" not in actions


def test_plan_invalid_bundle(runtime, make_bundle, base_config):
    bundle = invalid_bundle(make_bundle, base_config)

    result = runtime("plan", "--bundle", bundle.path)

    assert result.returncode == 1
    assert "linux.namespaces[1].type" in result.stderr


def test_spec_then_run(runtime, tmp_path, new_id):
    bundle = tmp_path / "from-spec"
    bundle.mkdir()
    os.symlink(os.path.join(os.path.dirname(__file__), os.pardir, "bundles", "busybox", "rootfs"), bundle / "rootfs")

    spec = runtime("spec", "--bundle", str(bundle))
    # The default process is "sh", which ends at once on an empty stdin.
    result = runtime("run", "--bundle", str(bundle), new_id("spec"))

    assert spec.returncode == 0, spec.stderr
    assert result.returncode == 0, result.stderr


def test_spec_keeps_existing_config(runtime, make_bundle):
    bundle = make_bundle(args=["true"])
    with open(bundle.config_path) as config_file:
        before = config_file.read()

    result = runtime("spec", "--bundle", bundle.path)

    assert result.returncode != 0
    assert "already exists" in result.stderr
    with open(bundle.config_path) as config_file:
        assert config_file.read() == before
