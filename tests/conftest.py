"""Shared fixtures: a busybox bundle factory and a runner for the navio-runtime CLI.

Tests run real containers and need root. Each test gets its own state root
(`--root`) and its own bundle directory, and the `runtime` fixture deletes every
container the test left behind and checks that no init process survives.
"""

import copy
import json
import os
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX_ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
BUSYBOX_CONFIG = os.path.join(REPO, "bundles", "busybox", "config.json")

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create containers")


def _ensure_rootfs():
    if not os.path.exists(os.path.join(BUSYBOX_ROOTFS, "bin", "busybox")):
        subprocess.run([os.path.join(REPO, "scripts", "build-busybox-rootfs")], check=True, stdout=subprocess.DEVNULL)


class Bundle:
    """A bundle directory and its config; write() saves the config as config.json."""

    def __init__(self, path, config):
        self.path = str(path)
        self.config = config

    @property
    def config_path(self):
        return os.path.join(self.path, "config.json")

    def write(self):
        with open(self.config_path, "w") as config_file:
            json.dump(self.config, config_file, indent=2)
        return self


@pytest.fixture
def make_bundle(tmp_path):
    """Return a factory: make_bundle(args=[...], **changes) -> Bundle with config.json written.

    root.path is the absolute path of the shared busybox rootfs, which tests must
    not change. With `private_rootfs=True` the bundle gets its own copy in
    `rootfs`, for tests that write into the rootfs or need a missing path.
    """
    _ensure_rootfs()
    with open(BUSYBOX_CONFIG) as config_file:
        base = json.load(config_file)

    def factory(args=None, private_rootfs=False, name=None, **changes):
        path = tmp_path / (name or f"bundle-{uuid.uuid4().hex[:8]}")
        path.mkdir()
        config = copy.deepcopy(base)
        if args is not None:
            config["process"]["args"] = list(args)
        config["process"]["terminal"] = False
        if private_rootfs:
            subprocess.run(["cp", "-a", BUSYBOX_ROOTFS, str(path / "rootfs")], check=True)
            config["root"]["path"] = "rootfs"
        else:
            config["root"]["path"] = BUSYBOX_ROOTFS
        for key, value in changes.items():
            config[key] = value
        return Bundle(path, config).write()

    return factory


class Runtime:
    """Runs `navio-runtime --root <root> ...` and remembers container ids to clean up."""

    def __init__(self, root):
        self.root = str(root)
        self.ids = set()

    def command(self, *args):
        """Return the argv of a CLI call; ids passed to create or run are deleted at teardown."""
        if "create" in args or "run" in args:
            self.ids.add(args[-1])
        return [sys.executable, "-m", "navio_runtime", "--root", self.root, *args]

    def __call__(self, *args, cwd=None, check=False, timeout=60, stdin=subprocess.DEVNULL, **kwargs):
        """Run the CLI; stdout and stderr are captured through files (the container may keep them open)."""
        with open(os.path.join(self.root, f".out-{uuid.uuid4().hex}"), "w+") as out, \
                open(os.path.join(self.root, f".err-{uuid.uuid4().hex}"), "w+") as err:
            result = subprocess.run(self.command(*args), cwd=cwd, stdin=stdin, stdout=out, stderr=err,
                                    timeout=timeout, **kwargs)
            out.seek(0)
            err.seek(0)
            completed = subprocess.CompletedProcess(result.args, result.returncode, out.read(), err.read())
        os.unlink(out.name)
        os.unlink(err.name)
        if check and completed.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {completed.returncode}: {completed.stderr}")
        return completed

    def state(self, container_id):
        result = self(
            "state", container_id, check=True)
        return json.loads(result.stdout)

    def cleanup(self):
        for container_id in self.ids:
            subprocess.run(self.command("delete", "--force", container_id),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def runtime(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to create containers")
    root = tmp_path / "state"
    root.mkdir()
    runner = Runtime(root)
    yield runner
    runner.cleanup()
    leftovers = [name for name in os.listdir(root) if not name.startswith(".")]
    assert leftovers == [], f"state directories left behind: {leftovers}"


# ---------------------------------------------------------------------------
# Fixtures of the core integration tests: unique ids, one-shot containers and
# checks for what a container may leave on the host.
# ---------------------------------------------------------------------------

CGROUP_ROOT = "/sys/fs/cgroup"

# Parent of the container cgroups when linux.cgroupsPath is unset (navio_runtime.cgroups.paths).
RUNTIME_CGROUP_PARENT = "navio"


@pytest.fixture
def new_id():
    """Return a factory: new_id("prefix") -> a container id that no other test or helper uses."""

    def factory(prefix="core"):
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return factory


def _cgroup_directories(container_id):
    import glob

    patterns = (
        os.path.join(CGROUP_ROOT, "*", RUNTIME_CGROUP_PARENT, container_id),
        os.path.join(CGROUP_ROOT, RUNTIME_CGROUP_PARENT, container_id),
    )
    return sorted(path for pattern in patterns for path in glob.glob(pattern) if os.path.isdir(path))


def _processes_in_cgroup(container_id):
    suffix = f"/{RUNTIME_CGROUP_PARENT}/{container_id}"
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cgroup") as cgroup_file:
                lines = cgroup_file.read().splitlines()
        except OSError:
            continue
        if any(line.endswith(suffix) or f"{suffix}/" in line for line in lines):
            pids.append(int(name))
    return pids


@pytest.fixture
def leftovers():
    """Return a function: leftovers(container_id) -> what the container left on the host.

    The result maps "cgroups" to the container's cgroup directories under
    /sys/fs/cgroup/*/navio/<id> (the default cgroupsPath) and "processes" to
    the PIDs that are still in such a cgroup. Both lists are empty once a
    container is deleted or its create failed.
    """

    def find(container_id):
        return {
            "cgroups": _cgroup_directories(container_id),
            "processes": _processes_in_cgroup(container_id),
        }

    return find


def _host_mount_points():
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        return {line.split()[4].decode() for line in mountinfo}


@pytest.fixture
def no_host_mounts(tmp_path):
    """Fail the test when a mount appears on the host below tmp_path or the busybox rootfs."""
    watched = (str(tmp_path), os.path.realpath(BUSYBOX_ROOTFS))
    before = _host_mount_points()
    yield
    added = sorted(point for point in _host_mount_points() - before if point.startswith(watched))
    assert added == [], f"mounts left on the host: {added}"


@pytest.fixture
def run_container(runtime, make_bundle, new_id):
    """Return a function: run_container(args, **bundle_changes) -> CompletedProcess of `run`.

    Each call makes a bundle with make_bundle(args=args, **bundle_changes) and
    runs it in the foreground under a new id. Pass `runtime_kwargs` (a dict)
    to forward keyword arguments such as `umask` to the runtime fixture.
    """

    def launch(args, runtime_kwargs=None, **bundle_changes):
        bundle = make_bundle(args=args, **bundle_changes)
        return runtime("run", "--bundle", bundle.path, new_id("run"), **(runtime_kwargs or {}))

    return launch


@pytest.fixture
def base_config():
    """Return a function: base_config() -> a deep copy of the busybox config.json, to edit and pass to make_bundle."""
    with open(BUSYBOX_CONFIG) as config_file:
        config = json.load(config_file)

    def fresh_copy():
        return copy.deepcopy(config)

    return fresh_copy
