"""Helpers of the container-level security tests: host canaries, host mount snapshots and observed runs.

The tests run real containers with the `runtime` and `make_bundle` fixtures of
tests/conftest.py. A hostile bundle must leave the host as it was, so each
test compares a canary directory it made on the host and the mount table of
the test process before and after the container ran.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

# Enough "../" to climb from any bundle under /tmp up to the host's "/".
CLIMB_TO_HOST_ROOT = "../" * 24


def host_mounts():
    """Return the sorted (mount point, filesystem type, source) of every mount in the test process's mount namespace."""
    mounts = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            mounts.append((fields[4], fields[separator + 1], fields[separator + 2]))
    return sorted(mounts)


class HostCanary:
    """A directory under /tmp with one file, which no container may change or mount over.

    The directory is directly under /tmp, so an absolute symlink to it in an
    image names a path that exists on the host.
    """

    FILE_NAME = "HOST-CANARY"
    CONTENT = "host canary, must stay unchanged\n"

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="navio-canary-", dir="/tmp")
        self.file = os.path.join(self.path, self.FILE_NAME)
        with open(self.file, "w") as canary_file:
            canary_file.write(self.CONTENT)

    @property
    def name(self):
        return os.path.basename(self.path)

    def relative_from_root(self):
        """Return a relative symlink target that climbs from anywhere to this directory on the host."""
        return CLIMB_TO_HOST_ROOT + self.path.lstrip("/")

    def listing(self):
        return sorted(os.listdir(self.path))

    def content(self):
        with open(self.file) as canary_file:
            return canary_file.read()

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.fixture
def canary():
    """Yield a HostCanary and check after the test that it is unchanged and not a mount point."""
    host_canary = HostCanary()
    try:
        yield host_canary
        assert host_canary.listing() == [HostCanary.FILE_NAME]
        assert host_canary.content() == HostCanary.CONTENT
        assert not os.path.ismount(host_canary.path)
    finally:
        host_canary.remove()


@pytest.fixture
def host_mounts_unchanged():
    """Fail the test when the mount table of the test process (the host's) changed while it ran."""
    before = host_mounts()
    yield
    after = host_mounts()
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    assert added == [], f"mounts added on the host: {added}"
    assert removed == [], f"mounts removed from the host: {removed}"


def rootfs_path(bundle, path):
    """Return the host path of `path` (absolute inside the container) in a bundle's private rootfs."""
    return os.path.join(bundle.path, "rootfs", path.lstrip("/"))


def without_dev_tmpfs(config):
    """Drop the /dev tmpfs from `config`, so the image's own /dev directory is used."""
    config["mounts"] = [mount for mount in config["mounts"] if mount["destination"] != "/dev"]
    return config


class ObservedRun:
    """The output of a container run with create and start, and what the host saw in between."""

    def __init__(self, create, stdout, stderr, observation):
        self.create = create
        self.stdout = stdout
        self.stderr = stderr
        self.observation = observation


def create_observe_start(runtime, bundle, container_id, observe=None, timeout=30):
    """Create the container, call observe(init_pid) while it is created, start it and wait until it stops.

    The container's stdout and stderr go to files of this function, because
    the process keeps them after create returns. Returns an ObservedRun whose
    stdout and stderr are those of the container and whose `create` is the
    CompletedProcess of create. The container is deleted before returning.
    """
    out_path = os.path.join(bundle.path, f"{container_id}.out")
    err_path = os.path.join(bundle.path, f"{container_id}.err")
    pid_file = os.path.join(bundle.path, f"{container_id}.pid")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        create = subprocess.run(runtime.command("create", "--bundle", bundle.path, "--pid-file", pid_file, container_id),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
    if create.returncode != 0:
        with open(err_path) as err:
            create.stderr = err.read()
        return ObservedRun(create, "", create.stderr, None)

    with open(pid_file) as pid_input:
        init_pid = int(pid_input.read())
    try:
        observation = observe(init_pid) if observe is not None else None
        runtime("start", container_id, check=True)
        wait_until_stopped(runtime, container_id, timeout)
    finally:
        runtime("delete", "--force", container_id)

    with open(out_path) as out, open(err_path) as err:
        return ObservedRun(create, out.read(), err.read(), observation)


def wait_until_stopped(runtime, container_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = runtime("state", container_id)
        if result.returncode != 0 or json.loads(result.stdout)["status"] == "stopped":
            return
        time.sleep(0.02)
    raise AssertionError(f"container {container_id} did not stop within {timeout} s")


def status_fields(pid):
    """Return /proc/<pid>/status as a {field: value} dict."""
    fields = {}
    with open(f"/proc/{pid}/status") as status_file:
        for line in status_file:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields
