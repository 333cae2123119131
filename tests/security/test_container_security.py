"""Process security settings, checked from inside real containers and from the host.

Each test runs a busybox container with `navio-runtime` and checks what a user
would check inside it (/proc/1/status, ulimit, id, error messages of failed
system calls) or from the host (/proc/<pid>/status of the init, file owners).
"""

import array
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

from hostile_helpers import create_observe_start, rootfs_path, status_fields
from navio_runtime.init.capabilities import CAPABILITY_NUMBERS
from navio_runtime.linux import syscalls

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX_ROOTFS = os.path.join(os.path.dirname(TESTS_DIR), "bundles", "busybox", "rootfs")
PODMAN_PROFILE = os.path.join(TESTS_DIR, "configs", "podman-4.3-default-seccomp.json")

# Capability set of process.capabilities -> its line in /proc/<pid>/status.
STATUS_LINES = {
    "bounding": "CapBnd",
    "effective": "CapEff",
    "permitted": "CapPrm",
    "inheritable": "CapInh",
    "ambient": "CapAmb",
}

# ioctl requests and structure sizes of seccomp user notification (<linux/seccomp.h>).
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_NOTIF_SIZE = 80
SECCOMP_NOTIF_RESP_SIZE = 24

ID_MAP_HOST_START = 100000
ID_MAP_SIZE = 65536


def capability_mask(names):
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NUMBERS[name]
    return mask


def status_masks(text):
    """Map each Cap* line of /proc/<pid>/status text to its mask."""
    masks = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Cap"):
            masks[name] = int(value, 16)
    return masks


def host_bounding_mask():
    return status_masks(open("/proc/self/status").read())["CapBnd"]


def run_with(run_container, base_config, args, process=None, linux=None, **changes):
    """Run the busybox config with `args`, its process and linux sections updated from the given dicts."""
    config = base_config()
    config["process"]["args"] = list(args)
    config["process"]["terminal"] = False
    config["process"].update(process or {})
    config["linux"].update(linux or {})
    return run_container(None, process=config["process"], linux=config["linux"], **changes)


# ---------------------------------------------------------------------------
# Capabilities
# ---------------------------------------------------------------------------

# As root, execve sets permitted and effective to bounding | inheritable, so
# those three sets are equal here. Inheritable and ambient are smaller.
ROOT_CAPABILITIES = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
    "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "ambient": ["CAP_NET_BIND_SERVICE"],
}

# Without file capabilities, execve as a non-root user keeps only the ambient
# set in permitted and effective, so a config that wants them kept lists them
# in all four sets.
USER_CAPABILITIES = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
}


@pytest.mark.parametrize("uid, capabilities", [(0, ROOT_CAPABILITIES), (1000, USER_CAPABILITIES)], ids=["root", "user"])
def test_capability_sets_inside(run_container, base_config, uid, capabilities):
    result = run_with(run_container, base_config, ["cat", "/proc/1/status"],
                      process={"capabilities": capabilities, "user": {"uid": uid, "gid": uid}})

    assert result.returncode == 0, result.stderr
    masks = status_masks(result.stdout)
    assert masks["CapBnd"] == capability_mask(capabilities["bounding"])
    assert masks["CapEff"] == capability_mask(capabilities["effective"])
    assert masks["CapPrm"] == capability_mask(capabilities["permitted"])
    assert masks["CapInh"] == capability_mask(capabilities["inheritable"])
    assert masks["CapAmb"] == capability_mask(capabilities["ambient"])


def test_capability_missing_on_host_warns(runtime, make_bundle, new_id, tmp_path):
    if host_bounding_mask() >> CAPABILITY_NUMBERS["CAP_SYS_RESOURCE"] & 1:
        pytest.skip("CAP_SYS_RESOURCE is in this host's bounding set, so it can be granted")
    requested = ["CAP_KILL", "CAP_SYS_RESOURCE"]
    bundle = make_bundle(args=["cat", "/proc/1/status"])
    bundle.config["process"]["capabilities"] = {name: requested for name in STATUS_LINES}
    bundle.write()
    log = tmp_path / "runtime.log"

    result = runtime("--log", str(log), "run", "--bundle", bundle.path, new_id("capres"))

    assert result.returncode == 0, result.stderr
    assert status_masks(result.stdout)["CapBnd"] == capability_mask(["CAP_KILL"])
    warnings = [line for line in log.read_text().splitlines() if "WARN" in line.upper()]
    assert any("CAP_SYS_RESOURCE" in line for line in warnings), log.read_text()


def test_unknown_capability_warns(runtime, make_bundle, new_id, tmp_path):
    requested = ["CAP_KILL", "CAP_NO_SUCH_THING"]
    bundle = make_bundle(args=["cat", "/proc/1/status"])
    bundle.config["process"]["capabilities"] = {name: requested for name in STATUS_LINES}
    bundle.write()
    log = tmp_path / "runtime.log"

    result = runtime("--log", str(log), "run", "--bundle", bundle.path, new_id("capunknown"))

    assert result.returncode == 0, result.stderr
    assert status_masks(result.stdout)["CapEff"] == capability_mask(["CAP_KILL"])
    warnings = [line for line in log.read_text().splitlines() if "WARN" in line.upper()]
    assert any("CAP_NO_SUCH_THING" in line for line in warnings), log.read_text()


# ---------------------------------------------------------------------------
# Seccomp
# ---------------------------------------------------------------------------


def allow_all_except(*rules, **settings):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules), **settings}


def test_seccomp_errno_ret_inside(run_container, base_config):
    seccomp = allow_all_except({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99})

    result = run_with(run_container, base_config, ["mkdir", "/dev/shm/blocked"], linux={"seccomp": seccomp})

    assert result.returncode == 1
    assert os.strerror(99) in result.stderr


def test_seccomp_argument_filter_inside(run_container, base_config):
    # kill(pid, SIGCONT) fails with EPERM, and kill(pid, 0) succeeds.
    rule = {
        "names": ["kill"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": errno.EPERM,
        "args": [{"index": 1, "value": int(signal.SIGCONT), "op": "SCMP_CMP_EQ"}],
    }
    script = "kill -CONT $$; echo cont=$?; kill -0 $$; echo zero=$?"

    result = run_with(run_container, base_config, ["sh", "-c", script], linux={"seccomp": allow_all_except(rule)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cont=1", "zero=0"]
    assert os.strerror(errno.EPERM) in result.stderr


@pytest.mark.parametrize("no_new_privileges", [False, True], ids=["privs", "nnp"])
def test_podman_profile_runs_echo(run_container, base_config, no_new_privileges):
    with open(PODMAN_PROFILE) as profile:
        seccomp = json.load(profile)

    result = run_with(run_container, base_config, ["echo", "ok"], process={"noNewPrivileges": no_new_privileges},
                      linux={"seccomp": seccomp})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def _receive_state_and_fd(connection):
    fd_size = array.array("i").itemsize
    message, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(fd_size))
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fd_size])
    return message, list(fds)


def _answer_with_error(notify_fd, error_number):
    """Receive one seccomp notification on `notify_fd`, fail its system call with `error_number` and return its number."""
    readable, _, _ = select.select([notify_fd], [], [], 30)
    assert readable, "no seccomp notification within 30 s"
    request = bytearray(SECCOMP_NOTIF_SIZE)
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, request)
    notification_id = int.from_bytes(request[0:8], "little")
    syscall_number = int.from_bytes(request[16:20], "little", signed=True)
    response = bytearray(SECCOMP_NOTIF_RESP_SIZE)
    response[0:8] = notification_id.to_bytes(8, "little")
    response[16:20] = (-error_number).to_bytes(4, "little", signed=True)
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, response)
    return syscall_number


def test_seccomp_notify_agent(runtime, make_bundle, new_id, tmp_path):
    import seccomp as libseccomp

    listener_path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener_path)
    server.listen(1)
    server.settimeout(30)
    bundle = make_bundle(args=["mkdir", "/dev/shm/notified"])
    bundle.config["linux"]["seccomp"] = allow_all_except(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=listener_path,
        listenerMetadata="agent-test",
    )
    bundle.write()
    container_id = new_id("notify")
    pid_file = tmp_path / "init.pid"
    received = {}

    def agent():
        connection, _ = server.accept()
        with connection:
            message, fds = _receive_state_and_fd(connection)
        received["document"] = json.loads(message)
        received["fd_count"] = len(fds)
        try:
            received["syscall"] = _answer_with_error(fds[0], errno.ENOSPC)
        finally:
            for fd in fds:
                os.close(fd)

    agent_thread = threading.Thread(target=agent, daemon=True)
    agent_thread.start()
    try:
        result = runtime("run", "--bundle", bundle.path, "--pid-file", str(pid_file), container_id)
    finally:
        agent_thread.join(timeout=30)
        server.close()

    document = received.get("document", {})
    mkdir_numbers = {libseccomp.resolve_syscall(libseccomp.Arch.NATIVE, name) for name in ("mkdir", "mkdirat")}
    assert result.returncode == 1
    assert os.strerror(errno.ENOSPC) in result.stderr
    assert received.get("fd_count") == 1
    assert received.get("syscall") in mkdir_numbers
    assert document.get("fds") == ["seccompFd"]
    assert document.get("metadata") == "agent-test"
    assert document.get("state", {}).get("id") == container_id
    assert document.get("pid") == int(pid_file.read_text())


# ---------------------------------------------------------------------------
# User namespaces
# ---------------------------------------------------------------------------


def user_namespace_linux(base_config, host_start=ID_MAP_HOST_START):
    """Return the busybox linux section with a new user namespace that maps 0 to `host_start`."""
    linux = base_config()["linux"]
    linux["namespaces"].append({"type": "user"})
    mapping = [{"containerID": 0, "hostID": host_start, "size": ID_MAP_SIZE}]
    linux["uidMappings"] = mapping
    linux["gidMappings"] = mapping
    return linux


def test_user_namespace_root_inside(run_container, base_config):
    result = run_with(run_container, base_config, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"],
                      linux=user_namespace_linux(base_config))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1] == "0"
    assert lines[2].split() == ["0", str(ID_MAP_HOST_START), str(ID_MAP_SIZE)]


def test_user_namespace_host_uid(runtime, make_bundle, base_config, new_id):
    bundle = make_bundle(args=["id", "-u"], linux=user_namespace_linux(base_config))

    run = create_observe_start(runtime, bundle, new_id("userns"), observe=status_fields)

    assert run.create.returncode == 0, run.create.stderr
    assert run.observation["Uid"].split() == [str(ID_MAP_HOST_START)] * 4
    assert run.observation["Gid"].split() == [str(ID_MAP_HOST_START)] * 4
    assert run.stdout == "0\n"


def _owners(root):
    owners = {}
    for directory, names, files in os.walk(root):
        for name in [".", *names, *files]:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            owners[os.path.relpath(path, root)] = (info.st_uid, info.st_gid)
    return owners


@pytest.fixture
def searchable_rootfs():
    """Yield a copy of the busybox rootfs in a directory that the mapped root of a user namespace can reach.

    pytest's tmp_path is below /tmp/pytest-of-root (mode 0700), which uid
    100000 on the host cannot search.
    """
    parent = tempfile.mkdtemp(prefix="navio-userns-", dir="/tmp")
    os.chmod(parent, 0o755)
    root = os.path.join(parent, "rootfs")
    subprocess.run(["cp", "-a", BUSYBOX_ROOTFS, root], check=True)
    try:
        yield root
    finally:
        shutil.rmtree(parent)


def test_user_namespace_keeps_rootfs_owners(runtime, make_bundle, base_config, new_id, searchable_rootfs):
    bundle = make_bundle(args=["ls", "-ln", "/"], linux=user_namespace_linux(base_config))
    bundle.config["root"]["path"] = searchable_rootfs
    bundle.write()
    before = _owners(searchable_rootfs)

    result = runtime("run", "--bundle", bundle.path, new_id("owners"))

    assert result.returncode == 0, result.stderr
    assert _owners(searchable_rootfs) == before


class UserNamespaceHolder:
    """A child process of the test that sits in a new user namespace whose id maps the test wrote."""

    def __init__(self, host_start):
        ready_read, ready_write = os.pipe()
        self._release_read, self._release_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(ready_read)
                os.close(self._release_write)
                syscalls.unshare(syscalls.CLONE_NEWUSER)
                os.write(ready_write, b"1")
                os.read(self._release_read, 1)
            finally:
                os._exit(0)
        os.close(ready_write)
        os.close(self._release_read)
        try:
            assert os.read(ready_read, 1) == b"1", "the holder failed to create its user namespace"
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{self.pid}/{name}", "w") as map_file:
                    map_file.write(f"0 {host_start} {ID_MAP_SIZE}\n")
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(ready_read)

    @property
    def namespace_path(self):
        return f"/proc/{self.pid}/ns/user"

    def stop(self):
        os.close(self._release_write)
        os.waitpid(self.pid, 0)


def test_join_user_namespace_by_path(run_container, base_config):
    host_start = 200000
    holder = UserNamespaceHolder(host_start)
    try:
        linux = base_config()["linux"]
        linux["namespaces"].append({"type": "user", "path": holder.namespace_path})
        result = run_with(run_container, base_config, ["sh", "-c", "id -u; cat /proc/self/uid_map"], linux=linux)
    finally:
        holder.stop()

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(host_start), str(ID_MAP_SIZE)]


# ---------------------------------------------------------------------------
# maskedPaths and readonlyPaths
# ---------------------------------------------------------------------------

SECRET = "secret data\n"


def bundle_with_secrets(make_bundle, args, **linux_changes):
    """Make a private-rootfs bundle with a writable root, /etc/secret and /etc/secret-dir/file."""
    bundle = make_bundle(args=args, private_rootfs=True)
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"].update(linux_changes)
    bundle.write()
    with open(rootfs_path(bundle, "/etc/secret"), "w") as secret:
        secret.write(SECRET)
    os.mkdir(rootfs_path(bundle, "/etc/secret-dir"))
    with open(rootfs_path(bundle, "/etc/secret-dir/file"), "w") as secret:
        secret.write(SECRET)
    return bundle


def masked(base_config, *paths):
    return base_config()["linux"]["maskedPaths"] + list(paths)


def test_masked_file_reads_empty(runtime, make_bundle, base_config, new_id):
    bundle = bundle_with_secrets(make_bundle, ["sh", "-c", "cat /etc/secret | wc -c"],
                                 maskedPaths=masked(base_config, "/etc/secret"))

    result = runtime("run", "--bundle", bundle.path, new_id("maskfile"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_masked_file_write_discarded(runtime, make_bundle, base_config, new_id):
    # The mask is a bind mount of /dev/null, as in runc, so writes succeed and are discarded.
    script = "echo overwritten > /etc/secret; cat /etc/secret | wc -c"
    bundle = bundle_with_secrets(make_bundle, ["sh", "-c", script], maskedPaths=masked(base_config, "/etc/secret"))

    result = runtime("run", "--bundle", bundle.path, new_id("maskwrite"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    with open(rootfs_path(bundle, "/etc/secret")) as secret:
        assert secret.read() == SECRET


def test_masked_directory_empty_readonly(runtime, make_bundle, base_config, new_id):
    script = "ls -A /etc/secret-dir; echo listed; touch /etc/secret-dir/new; echo touch=$?"
    bundle = bundle_with_secrets(make_bundle, ["sh", "-c", script], maskedPaths=masked(base_config, "/etc/secret-dir"))

    result = runtime("run", "--bundle", bundle.path, new_id("maskdir"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["listed", "touch=1"]
    assert "Read-only file system" in result.stderr
    assert not os.path.exists(rootfs_path(bundle, "/etc/secret-dir/new"))


def test_masked_directory_is_tmpfs(runtime, make_bundle, base_config, new_id):
    bundle = bundle_with_secrets(make_bundle, ["grep", " /etc/secret-dir ", "/proc/self/mountinfo"],
                                 maskedPaths=masked(base_config, "/etc/secret-dir"))

    result = runtime("run", "--bundle", bundle.path, new_id("masktmpfs"))

    assert result.returncode == 0, result.stderr
    fields = result.stdout.split()
    assert fields[fields.index("-") + 1] == "tmpfs"
    assert "ro" in fields[5].split(",")


def test_missing_masked_path_not_created(runtime, make_bundle, base_config, new_id):
    bundle = bundle_with_secrets(make_bundle, ["sh", "-c", "ls /no-such-dir; echo ls=$?"],
                                 maskedPaths=masked(base_config, "/no-such-dir/file"))

    result = runtime("run", "--bundle", bundle.path, new_id("maskmissing"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ls=1"
    assert not os.path.lexists(rootfs_path(bundle, "/no-such-dir"))


def test_readonly_path_rejects_writes(runtime, make_bundle, base_config, new_id):
    readonly = base_config()["linux"]["readonlyPaths"] + ["/etc"]
    script = "touch /etc/new; echo etc=$?; touch /tmp/new; echo tmp=$?"
    bundle = bundle_with_secrets(make_bundle, ["sh", "-c", script], readonlyPaths=readonly)

    result = runtime("run", "--bundle", bundle.path, new_id("readonly"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["etc=1", "tmp=0"]
    assert "Read-only file system" in result.stderr


def test_readonly_proc_sys_rejects_writes(run_container):
    result = run_container(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward; echo status=$?"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "status=1"
    assert "Read-only file system" in result.stderr


# ---------------------------------------------------------------------------
# sysctl
# ---------------------------------------------------------------------------

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def read_host_ip_forward():
    with open(IP_FORWARD) as value:
        return value.read().strip()


def test_sysctl_in_network_namespace(run_container, base_config):
    host_before = read_host_ip_forward()
    if host_before == "1":
        pytest.skip("net.ipv4.ip_forward is already 1 on this host, so the container's value proves nothing")

    result = run_with(run_container, base_config, ["cat", IP_FORWARD], linux={"sysctl": {"net.ipv4.ip_forward": "1"}})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert read_host_ip_forward() == host_before


def test_net_sysctl_without_netns_rejected(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["true"])
    linux = bundle.config["linux"]
    linux["namespaces"] = [namespace for namespace in linux["namespaces"] if namespace["type"] != "network"]
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write()
    host_before = read_host_ip_forward()

    result = runtime("create", "--bundle", bundle.path, new_id("sysctlhost"))

    assert result.returncode == 1
    assert "net.ipv4.ip_forward" in result.stderr
    assert "network" in result.stderr
    assert read_host_ip_forward() == host_before


# ---------------------------------------------------------------------------
# rlimits, noNewPrivileges, oomScoreAdj
# ---------------------------------------------------------------------------


def test_nofile_rlimit_inside(run_container, base_config):
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]

    result = run_with(run_container, base_config, ["sh", "-c", "ulimit -n; ulimit -Hn"], process={"rlimits": rlimits})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["321", "654"]


@pytest.mark.parametrize("no_new_privileges, expected", [(True, "1"), (False, "0")], ids=["set", "unset"])
def test_no_new_privs_inside(run_container, base_config, no_new_privileges, expected):
    result = run_with(run_container, base_config, ["grep", "NoNewPrivs", "/proc/self/status"],
                      process={"noNewPrivileges": no_new_privileges})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["NoNewPrivs:", expected]


def test_oom_score_adj_inside(run_container, base_config):
    result = run_with(run_container, base_config, ["cat", "/proc/self/oom_score_adj"], process={"oomScoreAdj": 123})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "123"


def test_oom_score_adj_seen_from_host(runtime, make_bundle, new_id):
    bundle = make_bundle(args=["true"])
    bundle.config["process"]["oomScoreAdj"] = 321
    bundle.write()

    def read_score(pid):
        with open(f"/proc/{pid}/oom_score_adj") as score:
            return score.read().strip()

    run = create_observe_start(runtime, bundle, new_id("oom"), observe=read_score)

    assert run.create.returncode == 0, run.create.stderr
    assert run.observation == "321"
