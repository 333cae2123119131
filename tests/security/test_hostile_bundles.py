"""Hostile bundles: images that try to make the runtime act on the host (runc CVE families).

Each test builds an image with symlinks or swapped paths (a private copy of
the busybox rootfs) and runs it. Then it checks that the host is untouched.
A canary directory that the test made under /tmp keeps its content, and the
mount table of the test process is the same before and after. The container
must either fail safely (create or run exits 1 with an error that names the
path) or run with everything inside its rootfs.
"""

import array
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from hostile_helpers import (  # noqa: F401 (canary and host_mounts_unchanged are fixtures)
    HostCanary,
    canary,
    create_observe_start,
    host_mounts_unchanged,
    rootfs_path,
    wait_until_stopped,
    without_dev_tmpfs,
)

pytestmark = pytest.mark.usefixtures("host_mounts_unchanged")


def run_bundle(runtime, bundle, container_id, *flags, **kwargs):
    return runtime("run", "--bundle", bundle.path, *flags, container_id, **kwargs)


def assert_failed_safely_or_ran(result, path):
    """Accept exit status 0, or 1 with an error that names `path`. Anything else fails the test."""
    assert result.returncode in (0, 1), result.stderr
    if result.returncode == 1:
        assert path in result.stderr


def symlink_target(canary, kind):
    """Return an absolute or a relative ("../" climbing) symlink target that names the canary on the host."""
    return canary.path if kind == "absolute" else canary.relative_from_root()


# ---------------------------------------------------------------------------
# Mount destinations (CVE-2021-30465 family)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_mount_through_dangling_symlink(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["true"], private_rootfs=True)
    os.symlink(symlink_target(canary, kind), rootfs_path(bundle, "/evil"))
    bundle.config["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("mntdangling"))

    assert result.returncode == 1
    assert "/evil" in result.stderr


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_mount_through_symlink_stays_inside(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["sh", "-c", f"ls -A /evil; grep -c ' {canary.path} ' /proc/self/mountinfo"],
                         private_rootfs=True)
    # The same path exists inside the rootfs, so the symlink resolves there.
    os.makedirs(rootfs_path(bundle, canary.path))
    os.symlink(symlink_target(canary, kind), rootfs_path(bundle, "/evil"))
    bundle.config["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("mntinside"))

    assert result.returncode == 0, result.stderr
    assert HostCanary.FILE_NAME not in result.stdout
    assert result.stdout.split() == ["1"]


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_mount_through_middle_symlink(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["sh", "-c", f"grep -c ' {canary.path}/sub ' /proc/self/mountinfo"], private_rootfs=True)
    target = os.path.dirname(canary.path) if kind == "absolute" else os.path.dirname(canary.relative_from_root())
    os.symlink(target, rootfs_path(bundle, "/middle"))
    bundle.config["mounts"].append({"destination": f"/middle/{canary.name}/sub", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("mntmiddle"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]
    assert os.path.isdir(rootfs_path(bundle, f"{canary.path}/sub"))


class SymlinkFlipper:
    """A thread that keeps swapping a directory inside a rootfs with a symlink to a host path."""

    def __init__(self, path, target):
        self.path = path
        self.target = target
        self.swaps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                if os.path.islink(self.path):
                    os.unlink(self.path)
                    os.mkdir(self.path)
                else:
                    shutil.rmtree(self.path)
                    os.symlink(self.target, self.path)
                self.swaps += 1
            except OSError:
                # The runtime created or removed an entry in between, so try again.
                continue

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=10)
        return False


def test_mount_destination_swapped_during_setup(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["true"], private_rootfs=True)
    bundle.config["mounts"].append({"destination": "/flip/sub", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()
    flip = rootfs_path(bundle, "/flip")
    os.mkdir(flip)
    results = []

    # Mounts happen during create, so create and delete are enough and keep the loop short.
    with SymlinkFlipper(flip, canary.path) as flipper:
        for _ in range(20):
            container_id = new_id("race")
            results.append(runtime("create", "--bundle", bundle.path, container_id))
            runtime("delete", "--force", container_id)
            assert canary.listing() == [HostCanary.FILE_NAME]
            assert canary.content() == HostCanary.CONTENT

    assert flipper.swaps > 0
    # NOTE: only the exit status is checked. Under load, create sometimes reports
    # "the container init (pid N) exited during setup" instead of the init's own
    # error, because the init's messages can overtake the intermediate's "pid"
    # message on the shared sync socket (navio_runtime/container/create.py).
    assert sorted({result.returncode for result in results}) in ([0], [1], [0, 1])


# ---------------------------------------------------------------------------
# process.cwd (CVE-2024-21626)
# ---------------------------------------------------------------------------


def test_cwd_dangling_symlink_fails(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["sh", "-c", "pwd; ls"], private_rootfs=True)
    os.symlink(canary.relative_from_root(), rootfs_path(bundle, "/up"))
    bundle.config["process"]["cwd"] = "/up"
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("cwddangling"))

    assert result.returncode == 1
    assert "/up" in result.stderr


def test_cwd_symlink_stays_inside(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["sh", "-c", "pwd; ls"], private_rootfs=True)
    os.makedirs(rootfs_path(bundle, canary.path))
    with open(rootfs_path(bundle, f"{canary.path}/INSIDE"), "w"):
        pass
    os.symlink(canary.relative_from_root(), rootfs_path(bundle, "/up"))
    bundle.config["process"]["cwd"] = "/up"
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("cwdinside"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [canary.path, "INSIDE"]


@pytest.mark.parametrize("fd", range(3, 16))
def test_cwd_proc_self_fd(runtime, make_bundle, new_id, canary, fd):
    bundle = make_bundle(args=["sh", "-c", "pwd; ls"])
    bundle.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
    bundle.write()
    # A host directory fd in the runtime, as the leaked cgroup fd was in runc.
    host_fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = run_bundle(runtime, bundle, new_id("cwdfd"), pass_fds=(host_fd,))
    finally:
        os.close(host_fd)

    assert_failed_safely_or_ran(result, f"/proc/self/fd/{fd}")
    assert HostCanary.FILE_NAME not in result.stdout


def test_cwd_preserved_host_fd(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["sh", "-c", "pwd; ls"])
    bundle.config["process"]["cwd"] = "/proc/self/fd/3"
    bundle.write()
    container_id = new_id("cwdpreserved")
    command = runtime.command("run", "--bundle", bundle.path, "--preserve-fds", "1", container_id)

    # The shell opens the canary directory as fd 3 and then becomes the runtime.
    result = subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', canary.path, *command], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)

    assert_failed_safely_or_ran(result, "/proc/self/fd/3")
    assert HostCanary.FILE_NAME not in result.stdout


@pytest.mark.parametrize("fd", range(3, 10))
def test_exec_cwd_proc_self_fd(runtime, make_bundle, new_id, canary, fd):
    bundle = make_bundle(args=["sleep", "30"])
    container_id = new_id("execcwd")
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    host_fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = runtime("exec", "--cwd", f"/proc/self/fd/{fd}", container_id, "sh", "-c", "pwd; ls",
                         pass_fds=(host_fd,))
    finally:
        os.close(host_fd)
        runtime("delete", "--force", container_id)

    assert_failed_safely_or_ran(result, f"/proc/self/fd/{fd}")
    assert HostCanary.FILE_NAME not in result.stdout


# ---------------------------------------------------------------------------
# maskedPaths and linux.devices through symlinks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_masked_path_symlink_out(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["true"], private_rootfs=True)
    os.symlink(os.path.join(symlink_target(canary, kind), HostCanary.FILE_NAME), rootfs_path(bundle, "/secret"))
    bundle.config["linux"]["maskedPaths"].append("/secret")
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("masklink"))

    assert_failed_safely_or_ran(result, "/secret")
    assert not os.path.ismount(canary.file)


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_device_parent_symlink_out(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["ls", "-l", "/devlink/null2"], private_rootfs=True)
    os.symlink(symlink_target(canary, kind), rootfs_path(bundle, "/devlink"))
    bundle.config["linux"]["devices"] = [{"path": "/devlink/null2", "type": "c", "major": 1, "minor": 3}]
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("devlink"))

    assert_failed_safely_or_ran(result, "/devlink")


def test_device_parent_symlink_inside(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["ls", "-l", "/devlink/null2"], private_rootfs=True)
    os.makedirs(rootfs_path(bundle, canary.path))
    os.symlink(canary.relative_from_root(), rootfs_path(bundle, "/devlink"))
    bundle.config["linux"]["devices"] = [{"path": "/devlink/null2", "type": "c", "major": 1, "minor": 3}]
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("devinside"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("crw")
    assert os.listdir(rootfs_path(bundle, canary.path)) == ["null2"]


def test_device_node_symlink_replaced(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["ls", "-l", "/dev/evil"], private_rootfs=True)
    without_dev_tmpfs(bundle.config)
    os.symlink(canary.file, rootfs_path(bundle, "/dev/evil"))
    bundle.config["linux"]["devices"] = [{"path": "/dev/evil", "type": "c", "major": 1, "minor": 3}]
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("devnode"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("crw")
    assert not os.path.islink(rootfs_path(bundle, "/dev/evil"))


# ---------------------------------------------------------------------------
# /proc and /sys replaced by symlinks (CVE-2019-19921)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["inside", "absolute", "relative"])
@pytest.mark.parametrize("directory", ["/proc", "/sys"])
def test_kernel_filesystem_symlink_rejected(runtime, make_bundle, new_id, canary, directory, target):
    bundle = make_bundle(args=["ls", "-l", directory], private_rootfs=True)
    link = rootfs_path(bundle, directory)
    os.rmdir(link)
    if target == "inside":
        os.makedirs(rootfs_path(bundle, "/tmp/fake"))
        os.symlink("/tmp/fake", link)
    else:
        os.makedirs(rootfs_path(bundle, canary.path))
        os.symlink(symlink_target(canary, target), link)

    result = run_bundle(runtime, bundle, new_id("kernelfs"))

    assert result.returncode == 1
    assert directory in result.stderr
    assert "symlink" in result.stderr


# ---------------------------------------------------------------------------
# /dev/null and /dev/console replaced by symlinks (CVE-2025-31133, CVE-2025-52565)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_dev_null_symlink_replaced(runtime, make_bundle, new_id, canary, kind):
    bundle = make_bundle(args=["sh", "-c", "ls -l /dev/null; echo data > /dev/null"], private_rootfs=True)
    without_dev_tmpfs(bundle.config)
    bundle.write()
    os.symlink(os.path.join(symlink_target(canary, kind), HostCanary.FILE_NAME), rootfs_path(bundle, "/dev/null"))

    result = run_bundle(runtime, bundle, new_id("devnull"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("crw")
    assert "1,   3" in result.stdout


@pytest.mark.parametrize("target", ["host", "procfs"])
def test_mask_with_symlinked_dev_null(runtime, make_bundle, new_id, canary, target):
    # /dev is a bind mount of the image's own /dev, so the runtime creates no
    # device nodes and masking must use the image's /dev/null.
    bundle = make_bundle(args=["true"], private_rootfs=True)
    without_dev_tmpfs(bundle.config)
    bundle.config["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": rootfs_path(bundle, "/dev"),
                                       "options": ["rbind"]})
    bundle.write()
    link_target = canary.file if target == "host" else "/proc/sys/kernel/core_pattern"
    os.symlink(link_target, rootfs_path(bundle, "/dev/null"))

    result = run_bundle(runtime, bundle, new_id("masknull"))

    assert result.returncode == 1
    assert "/dev/null" in result.stderr


def test_mask_with_regular_dev_null(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["true"], private_rootfs=True)
    without_dev_tmpfs(bundle.config)
    bundle.config["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": rootfs_path(bundle, "/dev"),
                                       "options": ["rbind"]})
    bundle.write()
    with open(rootfs_path(bundle, "/dev/null"), "w") as fake:
        fake.write("not a device\n")

    result = run_bundle(runtime, bundle, new_id("maskfake"))

    assert result.returncode == 1
    assert "/dev/null" in result.stderr
    assert "not the null device" in result.stderr


def _receive_master(server):
    connection, _ = server.accept()
    with connection:
        fds = array.array("i")
        _, ancillary, _, _ = connection.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
    if not ancillary:
        return None
    fds.frombytes(ancillary[0][2][: fds.itemsize])
    return fds[0]


def _drain(fd, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_console_symlink_not_followed(runtime, make_bundle, new_id, canary, tmp_path, kind):
    socket_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(1)
    server.settimeout(30)
    bundle = make_bundle(args=["true"], private_rootfs=True)
    bundle.config["process"]["terminal"] = True
    without_dev_tmpfs(bundle.config)
    bundle.write()
    os.symlink(os.path.join(symlink_target(canary, kind), HostCanary.FILE_NAME), rootfs_path(bundle, "/dev/console"))
    container_id = new_id("console")

    create = subprocess.Popen(runtime.command("create", "--console-socket", socket_path, "--bundle", bundle.path,
                                              container_id),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    master = None
    try:
        master = _receive_master(server)
        status = create.wait(timeout=30)
        started = runtime("start", container_id)
        if master is not None:
            _drain(master)
    finally:
        if master is not None:
            os.close(master)
        server.close()
        if create.poll() is None:
            create.kill()
        create.wait()
        create.stderr.close()

    assert status == 0
    assert master is not None
    assert started.returncode == 0, started.stderr
    assert not os.path.ismount(canary.file)


# ---------------------------------------------------------------------------
# procfs writes redirected by bind mounts
# ---------------------------------------------------------------------------


@pytest.fixture
def tmpfs_file():
    """Yield a file on the host's /dev/shm tmpfs, removed after the test."""
    path = f"/dev/shm/navio-hostile-{uuid.uuid4().hex[:8]}"
    with open(path, "w") as tmpfs_file:
        tmpfs_file.write("tmpfs file\n")
    try:
        yield path
    finally:
        os.unlink(path)


def test_sysctl_through_bind_mount_rejected(runtime, make_bundle, new_id, tmpfs_file):
    bundle = make_bundle(args=["true"])
    bundle.config["mounts"].append({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                                    "source": tmpfs_file, "options": ["bind"]})
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("sysctlbind"))

    assert result.returncode == 1
    assert "/proc/sys/net/ipv4/ip_forward" in result.stderr
    with open(tmpfs_file) as written:
        assert written.read() == "tmpfs file\n"


def test_oom_score_adj_through_bind_mount_rejected(runtime, make_bundle, new_id, tmpfs_file):
    bundle = make_bundle(args=["true"])
    bundle.config["mounts"].append({"destination": "/proc/self/oom_score_adj", "type": "bind",
                                    "source": tmpfs_file, "options": ["bind"]})
    bundle.config["process"]["oomScoreAdj"] = 500
    bundle.write()

    result = run_bundle(runtime, bundle, new_id("oombind"))

    assert result.returncode == 1
    assert "oom_score_adj" in result.stderr
    with open(tmpfs_file) as written:
        assert written.read() == "tmpfs file\n"


# ---------------------------------------------------------------------------
# File descriptors
# ---------------------------------------------------------------------------


def fd_numbers(output):
    return sorted(int(name) for name in output.split())


def test_only_stdio_fds_inside(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["ls", "/proc/self/fd"])
    host_fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = run_bundle(runtime, bundle, new_id("fds"), pass_fds=(host_fd,))
    finally:
        os.close(host_fd)

    assert result.returncode == 0, result.stderr
    # 3 is the directory that ls itself opened.
    assert fd_numbers(result.stdout) == [0, 1, 2, 3]


def test_preserved_fd_only_extra(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["ls", "/proc/self/fd"])
    container_id = new_id("preserve")
    command = runtime.command("run", "--bundle", bundle.path, "--preserve-fds", "1", container_id)
    host_fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # The shell opens the canary file as fd 3. host_fd is inherited too, but not preserved.
        result = subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', canary.file, *command], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL, pass_fds=(host_fd,))
    finally:
        os.close(host_fd)

    assert result.returncode == 0, result.stderr
    # 4 is the directory that ls itself opened.
    assert fd_numbers(result.stdout) == [0, 1, 2, 3, 4]


def test_exec_only_stdio_fds(runtime, make_bundle, new_id, canary):
    bundle = make_bundle(args=["sleep", "30"])
    container_id = new_id("execfds")
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    host_fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = runtime("exec", container_id, "ls", "/proc/self/fd", pass_fds=(host_fd,))
    finally:
        os.close(host_fd)
        runtime("delete", "--force", container_id)

    assert result.returncode == 0, result.stderr
    assert fd_numbers(result.stdout) == [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# The host interpreter (CVE-2019-5736)
# ---------------------------------------------------------------------------

HOST_INTERPRETERS = {sys.executable, os.path.realpath(sys.executable)}


def test_init_exe_is_container_binary(run_container):
    result = run_container(["readlink", "/proc/1/exe"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/bin/busybox"


def _handles_to_interpreter(pid):
    """Return the maps lines, fd links and exe link of `pid` that name the host's Python interpreter."""
    handles = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            handles += [line.strip() for line in maps if line.split()[-1] in HOST_INTERPRETERS]
        links = [f"/proc/{pid}/exe"] + [f"/proc/{pid}/fd/{name}" for name in os.listdir(f"/proc/{pid}/fd")]
    except FileNotFoundError:
        return handles
    for link in links:
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            continue
        if target in HOST_INTERPRETERS:
            handles.append(f"{link} -> {target}")
    return handles


def test_no_handle_to_host_interpreter(runtime, make_bundle, new_id, leftovers):
    bundle = make_bundle(args=["sh", "-c", "sleep 30 & sleep 30"])
    container_id = new_id("interp")
    runtime("run", "--detach", "--bundle", bundle.path, container_id, check=True)
    try:
        # The background sleep and the shell, which execs the second sleep.
        deadline = time.monotonic() + 10
        pids = leftovers(container_id)["processes"]
        while len(pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = leftovers(container_id)["processes"]
        handles = {pid: _handles_to_interpreter(pid) for pid in pids}
    finally:
        runtime("delete", "--force", container_id)

    assert len(pids) == 2
    assert {pid: found for pid, found in handles.items() if found} == {}


def _exe_probe_bundle(make_bundle, victim_pid):
    """Make a bundle that joins the pid namespace of `victim_pid` and tries to read its /proc/1/exe."""
    script = "readlink /proc/1/exe; echo readlink=$?; cat /proc/1/exe > /dev/null; echo cat=$?"
    bundle = make_bundle(args=["sh", "-c", script])
    for namespace in bundle.config["linux"]["namespaces"]:
        if namespace["type"] == "pid":
            namespace["path"] = f"/proc/{victim_pid}/ns/pid"
    return bundle.write()


def test_created_init_exe_unreadable(runtime, make_bundle, new_id):
    victim = make_bundle(args=["true"])

    def probe(init_pid):
        bundle = _exe_probe_bundle(make_bundle, init_pid)
        return runtime("run", "--bundle", bundle.path, new_id("exeprobe"))

    run = create_observe_start(runtime, victim, new_id("victim"), observe=probe)

    assert run.create.returncode == 0, run.create.stderr
    assert run.observation.returncode == 0, run.observation.stderr
    assert "python" not in run.observation.stdout
    assert run.observation.stdout.split()[-2:] == ["readlink=1", "cat=1"]


# The image has a FIFO as /etc/passwd, so the exec'd process blocks
# in the runtime's code (it reads /etc/passwd for HOME) before execve. The
# shell waits until that process runs with the container's capabilities, so
# only its dumpable flag can stop the shell from opening /proc/<pid>/exe, then
# writes to the FIFO to let it go on.
EXEC_PROBE_SCRIPT = r"""
own=$(grep CapEff /proc/self/status)
tries=0
found=
while [ -z "$found" ]; do
    for dir in /proc/[0-9]*; do
        case "$(cat $dir/comm 2>/dev/null)" in python*) ;; *) continue ;; esac
        [ "$(grep CapEff $dir/status 2>/dev/null)" = "$own" ] && found=$dir
    done
    tries=$((tries + 1))
    if [ $tries -gt 600 ]; then echo "no exec process found"; exit 2; fi
    sleep 0.05
done
echo "found ${found#/proc/}"
readlink $found/exe; echo "readlink=$?"
cat $found/exe > /dev/null; echo "cat=$?"
echo released > /etc/passwd
# The exec'd process dies with the pid namespace if this shell, its init, exits first.
while [ -d "$found" ] && [ $tries -lt 1200 ]; do tries=$((tries + 1)); sleep 0.05; done
"""


def test_exec_process_exe_unreadable(runtime, make_bundle, new_id, tmp_path):
    bundle = make_bundle(args=["sh", "-c", EXEC_PROBE_SCRIPT], private_rootfs=True)
    bundle.config["root"]["readonly"] = False
    # HOME is set for the container's own process, so only the exec'd process reads /etc/passwd.
    bundle.config["process"]["env"] = ["PATH=/bin", "HOME=/root"]
    bundle.write()
    os.unlink(rootfs_path(bundle, "/etc/passwd"))
    os.mkfifo(rootfs_path(bundle, "/etc/passwd"))
    process = dict(bundle.config["process"], args=["true"], env=["PATH=/bin"])
    process_file = tmp_path / "process.json"
    process_file.write_text(json.dumps(process))
    container_id = new_id("execexe")
    output = tmp_path / "container.out"
    errors = tmp_path / "container.err"

    with open(output, "w") as out, open(errors, "w") as err:
        started = subprocess.run(runtime.command("run", "--detach", "--bundle", bundle.path, container_id),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
    try:
        executed = runtime("exec", "--process", str(process_file), container_id)
        wait_until_stopped(runtime, container_id)
    finally:
        runtime("delete", "--force", container_id)

    lines = output.read_text().splitlines()
    assert started.returncode == 0, errors.read_text()
    assert executed.returncode == 0, executed.stderr
    assert lines[0].startswith("found "), lines
    assert "python" not in output.read_text()
    assert lines[-2:] == ["readlink=1", "cat=1"]
    assert "Permission denied" in errors.read_text()
