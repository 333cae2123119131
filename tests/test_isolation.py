"""What a process inside a container can observe: namespaces, mounts, /dev and its own process attributes.

Every test runs a real busybox container with `navio-runtime run` and checks
the output of ordinary commands inside it, as a user would.
"""

import contextlib
import os
import signal
import subprocess

import pytest

from navio_runtime.linux import syscalls

# Name of each namespace type in /proc/<pid>/ns.
NAMESPACE_LINKS = ("uts", "ipc", "net", "mnt", "pid", "cgroup")

# Per-mount flags that a config can request and /proc/self/mountinfo shows in field 6.
CHECKED_FLAGS = ("ro", "nosuid", "nodev", "noexec")

DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


def parse_mountinfo(text):
    """Map each mount point of a /proc/self/mountinfo text to (fstype, mount options, super options).

    When mounts are stacked on one point, the last (visible) one wins.
    """
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        separator = fields.index("-")
        mount_point = fields[4].replace("\\040", " ")
        mounts[mount_point] = (fields[separator + 1], set(fields[5].split(",")), set(fields[separator + 3].split(",")))
    return mounts


def parse_stat_lines(text):
    """Map each path printed by `stat -c '%n|%F|%t:%T|%a|%u:%g'` to its fields. The device numbers become ints."""
    result = {}
    for line in text.splitlines():
        name, kind, numbers, mode, owner = line.split("|")
        major, minor = (int(number, 16) for number in numbers.split(":"))
        result[name] = {"type": kind, "major": major, "minor": minor, "mode": mode, "owner": owner}
    return result


STAT_FORMAT = "%n|%F|%t:%T|%a|%u:%g"


@contextlib.contextmanager
def namespace_holder(hostname):
    """Fork a child that enters a new uts namespace, sets `hostname` in it and sleeps, and yield its PID.

    The child is killed by its PID and reaped when the block ends.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            syscalls.unshare(syscalls.CLONE_NEWUTS)
            syscalls.sethostname(hostname)
            os.write(write_fd, b"ready")
            signal.pause()
        finally:
            os._exit(0)

    os.close(write_fd)
    try:
        ready = os.read(read_fd, 5)
        assert ready == b"ready", "the namespace holder failed to set up its uts namespace"
        yield pid
    finally:
        os.close(read_fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def linux_with(base_config, **changes):
    """Return the busybox config's linux section with the top-level keys in `changes` replaced."""
    linux = base_config()["linux"]
    linux.update(changes)
    return linux


def process_with(base_config, args, **changes):
    """Return the busybox config's process section with `args` and the keys in `changes` replaced."""
    process = base_config()["process"]
    process["args"] = list(args)
    process["terminal"] = False
    process.update(changes)
    return process


# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------


def test_hostname_inside(run_container):
    result = run_container(["hostname"], hostname="box-one")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "box-one"


def test_domainname_inside(run_container):
    result = run_container(["cat", "/proc/sys/kernel/domainname"], domainname="example.test")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "example.test"


def test_host_hostname_unchanged(run_container):
    before = os.uname().nodename

    result = run_container(["hostname"], hostname="not-the-host")

    assert result.returncode == 0, result.stderr
    assert os.uname().nodename == before


def test_ps_shows_only_container(run_container):
    # The trailing "true" keeps sh from replacing itself with ps.
    result = run_container(["sh", "-c", "ps -o pid,comm; true"])

    assert result.returncode == 0, result.stderr
    rows = {int(line.split()[0]): line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert len(rows) == 2, result.stdout
    assert rows.get(1) == "sh", result.stdout
    assert sorted(rows.values()) == ["ps", "sh"], result.stdout


def test_process_is_pid_1(run_container):
    result = run_container(["sh", "-c", "echo $$"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize("namespace", NAMESPACE_LINKS)
def test_new_namespace(run_container, namespace):
    host_link = os.readlink(f"/proc/self/ns/{namespace}")

    result = run_container(["readlink", f"/proc/self/ns/{namespace}"])

    assert result.returncode == 0, result.stderr
    container_link = result.stdout.strip()
    assert container_link.startswith(f"{namespace}:["), container_link
    assert container_link != host_link


def test_missing_namespace_shares_host(run_container, base_config):
    namespaces = [entry for entry in base_config()["linux"]["namespaces"] if entry["type"] != "network"]
    host_link = os.readlink("/proc/self/ns/net")

    result = run_container(["readlink", "/proc/self/ns/net"], linux=linux_with(base_config, namespaces=namespaces))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == host_link


def test_join_uts_namespace_by_path(runtime, make_bundle, base_config, new_id):
    with namespace_holder("joined-uts") as holder:
        path = f"/proc/{holder}/ns/uts"
        namespaces = [entry for entry in base_config()["linux"]["namespaces"] if entry["type"] != "uts"]
        namespaces.append({"type": "uts", "path": path})
        bundle = make_bundle(args=["sh", "-c", "hostname; readlink /proc/self/ns/uts"],
                             linux=linux_with(base_config, namespaces=namespaces))
        # A hostname would be set in the joined namespace, which belongs to the holder.
        del bundle.config["hostname"]
        bundle.write()

        result = runtime("run", "--bundle", bundle.path, new_id("joinuts"))

        assert result.returncode == 0, result.stderr
        hostname, link = result.stdout.split()
        assert hostname == "joined-uts"
        assert link == os.readlink(path)


def test_join_wrong_namespace_type(runtime, make_bundle, base_config, new_id, leftovers):
    container_id = new_id("wrongns")
    with namespace_holder("wrong-type") as holder:
        path = f"/proc/{holder}/ns/net"
        namespaces = [entry for entry in base_config()["linux"]["namespaces"] if entry["type"] != "uts"]
        namespaces.append({"type": "uts", "path": path})
        bundle = make_bundle(args=["true"], linux=linux_with(base_config, namespaces=namespaces))
        del bundle.config["hostname"]
        bundle.write()

        result = runtime("create", "--bundle", bundle.path, container_id)

    assert result.returncode == 1
    assert path in result.stderr
    assert "uts" in result.stderr
    assert result.stderr.startswith("navio-runtime: "), result.stderr
    assert leftovers(container_id) == {"cgroups": [], "processes": []}


# ---------------------------------------------------------------------------
# Mounts
# ---------------------------------------------------------------------------


def _config_mounts(base_config):
    return [mount for mount in base_config()["mounts"] if mount["type"] not in ("cgroup", "cgroup2")]


@pytest.mark.parametrize("index", range(6))
def test_config_mount_in_mountinfo(run_container, base_config, index):
    mount = _config_mounts(base_config)[index]

    result = run_container(["cat", "/proc/self/mountinfo"])

    assert result.returncode == 0, result.stderr
    mounts = parse_mountinfo(result.stdout)
    destination = mount["destination"]
    assert destination in mounts, f"{destination} is not mounted:\n{result.stdout}"
    fstype, options, _ = mounts[destination]
    assert fstype == mount["type"]
    for flag in CHECKED_FLAGS:
        requested = flag in mount.get("options", ())
        assert (flag in options) == requested, f"{destination}: {flag} requested={requested}, options {options}"


def test_cgroup_mount_readonly(run_container):
    result = run_container(["cat", "/proc/self/mountinfo"])

    assert result.returncode == 0, result.stderr
    mounts = parse_mountinfo(result.stdout)
    assert "/sys/fs/cgroup" in mounts
    assert "ro" in mounts["/sys/fs/cgroup"][1]


def test_tmpfs_size_and_mode(run_container, base_config):
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=2m", "mode=750"]},
    ]

    result = run_container(["sh", "-c", "stat -c %a /tmp; cat /proc/self/mountinfo"], mounts=mounts)

    assert result.returncode == 0, result.stderr
    mode, _, mountinfo = result.stdout.partition("\n")
    fstype, options, super_options = parse_mountinfo(mountinfo)["/tmp"]
    assert mode == "750"
    assert fstype == "tmpfs"
    assert "size=2048k" in super_options
    assert "nosuid" in options


def test_bind_mount_shows_host_file(run_container, base_config, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "greeting").write_text("hello from the host\n")
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "type": "bind", "source": str(host_dir), "options": ["rbind"]},
    ]

    result = run_container(["cat", "/tmp/greeting"], mounts=mounts)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the host\n"


def test_bind_mount_writes_reach_host(run_container, base_config, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "source": str(host_dir), "options": ["bind", "rw"]},
    ]

    result = run_container(["sh", "-c", "echo written > /tmp/from-container"], mounts=mounts)

    assert result.returncode == 0, result.stderr
    assert (host_dir / "from-container").read_text() == "written\n"


def test_readonly_bind_rejects_writes(run_container, base_config, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "type": "bind", "source": str(host_dir), "options": ["rbind", "ro"]},
    ]

    result = run_container(["sh", "-c", "echo x > /tmp/new-file"], mounts=mounts)

    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not (host_dir / "new-file").exists()


def test_missing_destination_created(run_container, base_config, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "greeting").write_text("deep\n")
    mounts = base_config()["mounts"] + [
        {"destination": "/mnt/host/deep", "type": "bind", "source": str(host_dir), "options": ["rbind"]},
    ]

    result = run_container(["cat", "/mnt/host/deep/greeting"], mounts=mounts, private_rootfs=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "deep\n"


def test_file_bind_to_missing_destination(run_container, base_config, tmp_path):
    host_file = tmp_path / "settings.conf"
    host_file.write_text("key=value\n")
    mounts = base_config()["mounts"] + [
        {"destination": "/etc/app/settings.conf", "type": "bind", "source": str(host_file), "options": ["bind", "ro"]},
    ]

    result = run_container(["sh", "-c", "cat /etc/app/settings.conf; stat -c %F /etc/app/settings.conf"],
                           mounts=mounts, private_rootfs=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["key=value", "regular file"]


def test_readonly_root_rejects_writes(run_container):
    result = run_container(["touch", "/x"], private_rootfs=True, root={"path": "rootfs", "readonly": True})

    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_writable_root_accepts_writes(run_container, make_bundle, runtime, new_id):
    bundle = make_bundle(args=["touch", "/x"], private_rootfs=True, root={"path": "rootfs", "readonly": False})

    result = runtime("run", "--bundle", bundle.path, new_id("rwroot"))

    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(bundle.path, "rootfs", "x"))


@pytest.mark.parametrize("root_path", ["rootfs", "./rootfs", "rootfs/", "rootfs/."])
def test_relative_root_path(runtime, make_bundle, new_id, tmp_path, root_path):
    bundle = make_bundle(args=["cat", "/marker"], private_rootfs=True, root={"path": root_path, "readonly": True})
    with open(os.path.join(bundle.path, "rootfs", "marker"), "w") as marker:
        marker.write("private rootfs\n")

    # Run from elsewhere, so the path must be taken relative to the bundle, not the cwd.
    result = runtime("run", "--bundle", bundle.path, new_id("relroot"), cwd=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "private rootfs\n"


def test_bundle_from_current_directory(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["cat", "/marker"], private_rootfs=True)
    with open(os.path.join(bundle.path, "rootfs", "marker"), "w") as marker:
        marker.write("found\n")

    result = runtime("run", new_id("cwdbundle"), cwd=bundle.path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "found\n"


def test_rootfs_symlink_followed(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["cat", "/etc/passwd"])
    os.symlink(os.path.realpath(bundle.config["root"]["path"]), os.path.join(bundle.path, "linked-rootfs"))
    bundle.config["root"]["path"] = "linked-rootfs"
    bundle.write()

    result = runtime("run", "--bundle", bundle.path, new_id("linkroot"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("root:x:0:0:")


@pytest.mark.parametrize("propagation", [
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
])
def test_rootfs_propagation_accepted(run_container, base_config, propagation):
    linux = linux_with(base_config, rootfsPropagation=propagation)

    result = run_container(["true"], linux=linux)

    assert result.returncode == 0, result.stderr


@pytest.fixture
def unmount_leaks(tmp_path):
    """After the test, detach every host mount below tmp_path, deepest first, so a failing test cleans up."""
    yield
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in sorted((p for p in points if p.startswith(str(tmp_path))), key=len, reverse=True):
        syscalls.umount2(point, syscalls.MNT_DETACH)


def test_no_mount_namespace_leaves_no_mounts(runtime, make_bundle, base_config, new_id, tmp_path, unmount_leaks):
    linux = base_config()["linux"]
    linux["namespaces"] = [entry for entry in linux["namespaces"] if entry["type"] != "mount"]
    linux["maskedPaths"] = []
    linux["readonlyPaths"] = []
    mounts = [mount for mount in base_config()["mounts"] if mount["destination"] == "/proc"]
    bundle = make_bundle(args=["true"], private_rootfs=True, root={"path": "rootfs", "readonly": False},
                         linux=linux, mounts=mounts)

    runtime("run", "--bundle", bundle.path, new_id("nomntns"))

    with open("/proc/self/mountinfo") as mountinfo:
        leaked = [line.split()[4] for line in mountinfo if line.split()[4].startswith(str(tmp_path))]
    assert leaked == []


def test_container_mounts_stay_inside(run_container, base_config, tmp_path, no_host_mounts):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    mounts = base_config()["mounts"] + [
        {"destination": "/tmp", "type": "bind", "source": str(host_dir), "options": ["rbind"]},
    ]

    result = run_container(["true"], mounts=mounts)

    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# /dev
# ---------------------------------------------------------------------------


def test_default_devices(run_container):
    result = run_container(["stat", "-c", STAT_FORMAT, *DEFAULT_DEVICES])

    assert result.returncode == 0, result.stderr
    devices = parse_stat_lines(result.stdout)
    for path, (major, minor) in DEFAULT_DEVICES.items():
        assert devices[path]["type"] == "character special file", path
        assert (devices[path]["major"], devices[path]["minor"]) == (major, minor), path
        assert devices[path]["mode"] == "666", path
        assert devices[path]["owner"] == "0:0", path


@pytest.mark.parametrize("link, target", [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
])
def test_dev_symlink(run_container, link, target):
    result = run_container(["readlink", link])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == target


def test_dev_shm_directory(run_container):
    result = run_container(["stat", "-c", "%F %a", "/dev/shm"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "directory 1777"


def test_dev_shm_without_mount(run_container, base_config):
    mounts = [mount for mount in base_config()["mounts"] if mount["destination"] != "/dev/shm"]

    result = run_container(["stat", "-c", "%F %a", "/dev/shm"], mounts=mounts)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "directory 1777"


def test_config_device_exact(run_container, base_config):
    linux = linux_with(base_config, devices=[
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 1000},
    ])

    result = run_container(["stat", "-c", STAT_FORMAT, "/dev/fuse"], linux=linux)

    assert result.returncode == 0, result.stderr
    fuse = parse_stat_lines(result.stdout)["/dev/fuse"]
    assert fuse["type"] == "character special file"
    assert (fuse["major"], fuse["minor"]) == (10, 229)
    assert fuse["mode"] == "600"
    assert fuse["owner"] == "1000:1000"


def test_device_mode_ignores_umask(run_container, base_config):
    linux = linux_with(base_config, devices=[
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
    ])
    process = process_with(base_config, ["stat", "-c", "%a", "/dev/fuse"], user={"uid": 0, "gid": 0, "umask": 0o077})

    # Both the container's umask and the runtime's own umask are 077.
    result = run_container(None, linux=linux, process=process, runtime_kwargs={"umask": 0o077})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "666"


@pytest.mark.parametrize("device, expected_type", [
    ({"path": "/dev/testblock", "type": "b", "major": 7, "minor": 200, "fileMode": 0o640}, "block special file"),
    ({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666}, "character special file"),
    ({"path": "/dev/testfifo", "type": "p", "fileMode": 0o620}, "fifo"),
])
def test_config_device_types(run_container, base_config, device, expected_type):
    linux = linux_with(base_config, devices=[device])

    result = run_container(["stat", "-c", STAT_FORMAT, device["path"]], linux=linux)

    assert result.returncode == 0, result.stderr
    node = parse_stat_lines(result.stdout)[device["path"]]
    assert node["type"] == expected_type
    assert node["mode"] == f"{device['fileMode']:o}"
    if device["type"] != "p":
        assert (node["major"], node["minor"]) == (device["major"], device["minor"])


def test_config_device_replaces_default(run_container, base_config):
    linux = linux_with(base_config, devices=[
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0},
    ])

    result = run_container(["stat", "-c", "%a", "/dev/null"], linux=linux)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "600"


# ---------------------------------------------------------------------------
# The container process
# ---------------------------------------------------------------------------


def test_process_cwd(run_container, base_config):
    result = run_container(None, process=process_with(base_config, ["pwd"], cwd="/etc"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/etc"


def test_missing_cwd_created(run_container, base_config):
    process = process_with(base_config, ["sh", "-c", "pwd; stat -c %F ."], cwd="/work/deep/dir")

    result = run_container(None, process=process, private_rootfs=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["/work/deep/dir", "directory"]


def test_env_passes_through(run_container, base_config):
    env = base_config()["process"]["env"] + ["GREETING=hello world", "EMPTY="]
    process = process_with(base_config, ["sh", "-c", 'echo "$GREETING"; echo "[${EMPTY-unset}]"'], env=env)

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello world", "[]"]


def test_env_is_exactly_config(run_container, base_config):
    env = ["PATH=/bin", "ONLY=this", "HOME=/custom"]
    process = process_with(base_config, ["env"], env=env)

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    # busybox sh is not involved, so nothing adds PWD or SHLVL.
    assert sorted(result.stdout.splitlines()) == sorted(env)


@pytest.mark.parametrize("uid, home", [(0, "/root"), (65534, "/nonexistent"), (4242, "/")])
def test_home_from_passwd(run_container, base_config, uid, home):
    process = process_with(base_config, ["sh", "-c", 'echo "$HOME"'], user={"uid": uid, "gid": uid})

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == home


def test_user_ids(run_container, base_config):
    user = {"uid": 1000, "gid": 1001, "additionalGids": [5, 20, 4000]}
    process = process_with(base_config, ["sh", "-c", "id -u; id -g; id -G"], user=user)

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    uid, gid, groups = result.stdout.splitlines()
    assert uid == "1000"
    assert gid == "1001"
    assert sorted(int(group) for group in groups.split()) == [5, 20, 1001, 4000]


def test_root_has_no_extra_groups(run_container, base_config):
    result = run_container(["id", "-G"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]


def test_umask_from_config(run_container, base_config):
    process = process_with(base_config, ["sh", "-c", "umask"], user={"uid": 0, "gid": 0, "umask": 0o027})

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0027"


def test_default_umask_0022(run_container):
    result = run_container(["sh", "-c", "umask"], runtime_kwargs={"umask": 0o077})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0022"


def test_args0_found_in_path(run_container, base_config):
    process = process_with(base_config, ["echo", "from PATH"], env=["PATH=/nowhere:/bin"])

    result = run_container(None, process=process)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "from PATH\n"


def test_args0_absolute_path(run_container):
    result = run_container(["/bin/echo", "absolute"])

    assert result.returncode == 0, result.stderr
    assert result.stdout == "absolute\n"


def test_no_runtime_fds_leak(run_container):
    result = run_container(["ls", "/proc/self/fd"])

    assert result.returncode == 0, result.stderr
    # 3 is the directory that ls itself opened.
    assert sorted(int(name) for name in result.stdout.split()) == [0, 1, 2, 3]


def test_inherited_fd_not_passed(runtime, make_bundle, new_id, tmp_path):
    extra = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(extra, True)
    bundle = make_bundle(args=["ls", "/proc/self/fd"])
    container_id = new_id("fdleak")
    # The fixture registers ids for cleanup only when the command comes first.
    runtime.ids.add(container_id)
    try:
        result = runtime("--log", str(tmp_path / "runtime.log"), "run", "--bundle", bundle.path, "--pid-file",
                         str(tmp_path / "pid"), container_id, pass_fds=(extra,))
    finally:
        os.close(extra)

    assert result.returncode == 0, result.stderr
    assert sorted(int(name) for name in result.stdout.split()) == [0, 1, 2, 3]


def test_preserve_fds_passes_fd_3(runtime, make_bundle, new_id, tmp_path):
    message = tmp_path / "message"
    message.write_text("through fd 3\n")
    bundle = make_bundle(args=["cat", "/proc/self/fd/3"])
    container_id = new_id("preserve")
    command = runtime.command("run", "--bundle", bundle.path, "--preserve-fds", "1", container_id)
    runtime.ids.add(container_id)

    # The shell opens the file as fd 3 and then becomes the runtime.
    completed = subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', str(message), *command], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "through fd 3\n"


def test_signals_default_inside(run_container):
    # Python ignores SIGPIPE, but the container must start with default dispositions.
    result = run_container(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"])

    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert int(fields["SigBlk"], 16) == 0
    assert int(fields["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1)) == 0
