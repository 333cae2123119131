"""Seccomp filters built from linux.seccomp and loaded into forked children."""

import array
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket

import pytest
import seccomp as libseccomp

from navio_runtime.errors import ProcessAttributeError, SpecError
from navio_runtime.init import capabilities, process_attrs, seccomp
from navio_runtime.linux import syscalls
from security_helpers import report, run_child, start_child, status_fields, switch_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="seccomp tests need root")

PODMAN_PROFILE = "/work/shared/data/podman-4.3-default-seccomp.json"

# ioctl requests and structure sizes of the seccomp user notification API (<linux/seccomp.h>).
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_NOTIF_SIZE = 80
SECCOMP_NOTIF_RESP_SIZE = 24

ADD_KEY = libseccomp.resolve_syscall(libseccomp.Arch.NATIVE, "add_key")

# Capabilities that podman 4.3 grants by default.
PODMAN_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]


def allow_all_except(*rules, **settings):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules), **settings}


def errno_of(call, *args):
    """Call `call(*args)` and return the errno it failed with, or 0."""
    try:
        call(*args)
    except OSError as err:
        return err.errno
    return 0


def report_errnos(calls):
    report(json.dumps({name: errno_of(*call) for name, call in calls.items()}))


def load_podman_profile():
    with open(PODMAN_PROFILE) as file:
        return json.load(file)


def ignore_user_signals():
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.signal(signal.SIGWINCH, signal.SIG_IGN)


def test_errno_ret_reaches_caller(tmp_path):
    config = allow_all_except({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99})

    def prepare():
        seccomp.load_seccomp(config)
        report_errnos({"mkdir": (os.mkdir, str(tmp_path / "blocked"))})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"mkdir": 99}
    assert not (tmp_path / "blocked").exists()


def test_errno_defaults_to_eperm(tmp_path):
    config = allow_all_except({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})

    def prepare():
        seccomp.load_seccomp(config)
        report_errnos({"mkdir": (os.mkdir, str(tmp_path / "blocked"))})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"mkdir": errno.EPERM}


def test_podman_default_errno_ret():
    profile = load_podman_profile()

    def prepare():
        libc = ctypes.CDLL(None, use_errno=True)

        def add_key():
            # add_key is not in podman's profile. With NULL arguments the kernel itself would fail with EFAULT.
            if libc.syscall(ADD_KEY, None, None, None, 0, 0) == -1:
                raise OSError(ctypes.get_errno(), "add_key")

        seccomp.load_seccomp(profile)
        report_errnos({"add_key": (add_key,)})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"add_key": errno.ENOSYS}


def test_trace_without_tracer_fails(tmp_path):
    config = allow_all_except({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE"})

    def prepare():
        seccomp.load_seccomp(config)
        report_errnos({"mkdir": (os.mkdir, str(tmp_path / "traced"))})

    result = run_child(prepare)

    # Without a tracer attached the kernel fails a SECCOMP_RET_TRACE syscall with ENOSYS.
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"mkdir": errno.ENOSYS}


def test_log_action_allows(tmp_path):
    config = allow_all_except({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"})

    def prepare():
        seccomp.load_seccomp(config)
        report_errnos({"mkdir": (os.mkdir, str(tmp_path / "logged"))})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"mkdir": 0}
    assert (tmp_path / "logged").is_dir()


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_killing_actions_send_sigsys(action):
    config = allow_all_except({"names": ["getppid"], "action": action})

    def prepare():
        seccomp.load_seccomp(config)
        os.getppid()

    result = run_child(prepare)

    assert result.exit_code == -signal.SIGSYS


def test_kill_argument_filter():
    config = allow_all_except(
        {
            "names": ["kill"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.ENOTSUP,
            "args": [{"index": 1, "value": signal.SIGUSR1, "op": "SCMP_CMP_EQ"}],
        }
    )

    def prepare():
        ignore_user_signals()
        seccomp.load_seccomp(config)
        pid = os.getpid()
        report_errnos({"SIGUSR1": (os.kill, pid, signal.SIGUSR1), "SIGUSR2": (os.kill, pid, signal.SIGUSR2)})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    errnos = json.loads(result.stdout)
    assert errnos["SIGUSR1"] == errno.ENOTSUP
    assert errnos["SIGUSR2"] == 0


def test_personality_argument_filter():
    config = allow_all_except(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EACCES,
            "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}],
        }
    )

    def prepare():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.personality.argtypes = [ctypes.c_ulong]

        def personality(value):
            if libc.personality(value) == -1:
                raise OSError(ctypes.get_errno(), "personality")

        seccomp.load_seccomp(config)
        report_errnos({"query": (personality, 0xFFFFFFFF), "LINUX32": (personality, 0x0008)})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    errnos = json.loads(result.stdout)
    assert errnos["query"] == 0
    assert errnos["LINUX32"] == errno.EACCES


def test_same_index_conditions_match_any():
    config = allow_all_except(
        {
            "names": ["kill"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.ENOTSUP,
            "args": [
                {"index": 1, "value": signal.SIGUSR1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": signal.SIGUSR2, "op": "SCMP_CMP_EQ"},
            ],
        }
    )

    def prepare():
        ignore_user_signals()
        seccomp.load_seccomp(config)
        pid = os.getpid()
        report_errnos(
            {
                "SIGUSR1": (os.kill, pid, signal.SIGUSR1),
                "SIGUSR2": (os.kill, pid, signal.SIGUSR2),
                "SIGWINCH": (os.kill, pid, signal.SIGWINCH),
            }
        )

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    errnos = json.loads(result.stdout)
    assert errnos["SIGUSR1"] == errno.ENOTSUP
    assert errnos["SIGUSR2"] == errno.ENOTSUP
    assert errnos["SIGWINCH"] == 0


def test_different_index_conditions_match_all():
    def prepare():
        ignore_user_signals()
        pid = os.getpid()
        config = allow_all_except(
            {
                "names": ["kill"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.ENOTSUP,
                "args": [
                    {"index": 0, "value": pid, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": signal.SIGUSR1, "op": "SCMP_CMP_EQ"},
                ],
            }
        )
        seccomp.load_seccomp(config)
        report_errnos(
            {
                "own SIGUSR1": (os.kill, pid, signal.SIGUSR1),
                "own SIGUSR2": (os.kill, pid, signal.SIGUSR2),
                # Signal 0 to the parent only checks that it exists.
                "parent probe": (os.kill, os.getppid(), 0),
            }
        )

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    errnos = json.loads(result.stdout)
    assert errnos["own SIGUSR1"] == errno.ENOTSUP
    assert errnos["own SIGUSR2"] == 0
    assert errnos["parent probe"] == 0


def test_masked_eq_condition(tmp_path):
    # Deny openat(2) calls whose flags (argument 2) contain O_CREAT.
    config = allow_all_except(
        {
            "names": ["openat"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EROFS,
            "args": [{"index": 2, "value": os.O_CREAT, "valueTwo": os.O_CREAT, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    )
    existing = tmp_path / "existing"
    existing.write_text("x")

    def prepare():
        seccomp.load_seccomp(config)
        report_errnos(
            {
                "create": (os.open, str(tmp_path / "new"), os.O_WRONLY | os.O_CREAT),
                "read": (os.open, str(existing), os.O_RDONLY),
            }
        )

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    errnos = json.loads(result.stdout)
    assert errnos["create"] == errno.EROFS
    assert errnos["read"] == 0
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"])
def test_flag_loads(flag):
    config = allow_all_except({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}, flags=[flag])

    def prepare():
        seccomp.load_seccomp(config)
        with open("/proc/thread-self/status") as file:
            report(file.read())

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    fields = status_fields(result.stdout)
    assert fields["Seccomp"] == "2"
    assert fields["Seccomp_filters"] == "1"


def test_podman_profile_runs_busybox():
    profile = load_podman_profile()

    result = run_child(lambda: seccomp.load_seccomp(profile), ["echo", "ok"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok\n"


def test_podman_profile_as_user():
    profile = load_podman_profile()
    caps = {name: PODMAN_CAPS for name in ("bounding", "permitted", "effective")}

    def prepare():
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities(caps)
        process_attrs.set_no_new_privileges()
        seccomp.load_seccomp(profile)

    result = run_child(prepare, ["sh", "-c", "echo ok; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"])

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok"
    assert "NoNewPrivs:\t1" in lines
    assert "Seccomp:\t2" in lines


def test_podman_profile_denies_sethostname():
    profile = load_podman_profile()

    def prepare():
        # A private UTS namespace keeps the host's name safe if the filter fails to deny the call.
        syscalls.unshare(syscalls.CLONE_NEWUTS)
        seccomp.load_seccomp(profile)
        report_errnos({"sethostname": (socket.sethostname, "blocked")})

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"sethostname": errno.EPERM}


def test_load_without_nnp_needs_sys_admin():
    config = allow_all_except({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"})

    def prepare():
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities({name: ["CAP_KILL"] for name in ("bounding", "permitted", "effective")})
        seccomp.load_seccomp(config)

    result = run_child(prepare)

    assert result.exit_code != 0
    assert "ProcessAttributeError" in result.stderr
    assert "CAP_SYS_ADMIN" in result.stderr
    assert "EACCES" in result.stderr


def test_none_loads_nothing():
    def prepare():
        seccomp.load_seccomp(None)
        with open("/proc/thread-self/status") as file:
            report(file.read())

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert status_fields(result.stdout)["Seccomp"] == "0"


def test_notify_sends_fd_and_state(tmp_path):
    listener_path = str(tmp_path / "agent.sock")
    config = allow_all_except(
        {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=listener_path,
        listenerMetadata="test-metadata",
    )
    state = {
        "ociVersion": "1.3.0",
        "id": "notify-test",
        "status": "creating",
        "pid": 4242,
        "bundle": str(tmp_path),
        "annotations": {"key": "value"},
    }
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener_path)
    server.listen(1)
    server.settimeout(20)

    def prepare():
        server.close()
        seccomp.load_seccomp(config, notify_state=state)
        report(json.dumps({"getppid": os.getppid()}))

    child = start_child(prepare)
    notify_fd = None
    connection = None
    try:
        connection, _ = server.accept()
        message, fds = _receive_with_fd(connection)
        notify_fd = fds[0]
        document = json.loads(message)

        assert document["fds"] == ["seccompFd"]
        assert document["pid"] == 4242
        assert document["metadata"] == "test-metadata"
        assert document["state"] == state
        assert document["ociVersion"] == "1.3.0"

        _answer_one_notification(notify_fd, value=777)
        result = child.finish()

        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == {"getppid": 777}
    finally:
        if notify_fd is not None:
            os.close(notify_fd)
        if connection is not None:
            connection.close()
        server.close()
        child.finish()


def test_notify_uses_given_listener(tmp_path):
    listener_path = str(tmp_path / "agent.sock")
    config = allow_all_except({"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}, listenerPath=listener_path)
    # After pivot_root the host path is out of reach. A missing path simulates that here.
    unreachable = dict(config, listenerPath=str(tmp_path / "missing" / "agent.sock"))
    state = {"ociVersion": "1.3.0", "id": "given-listener", "status": "creating", "pid": 99, "bundle": str(tmp_path)}
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener_path)
    server.listen(1)
    server.settimeout(20)

    def prepare():
        server.close()
        listener = seccomp.connect_listener(config)
        seccomp.load_seccomp(unreachable, notify_state=state, listener=listener)

    child = start_child(prepare)
    connection = None
    fds = []
    try:
        connection, _ = server.accept()
        message, fds = _receive_with_fd(connection)
        result = child.finish()

        assert result.exit_code == 0, result.stderr
        assert json.loads(message)["state"]["id"] == "given-listener"
        assert len(fds) == 1
    finally:
        for fd in fds:
            os.close(fd)
        if connection is not None:
            connection.close()
        server.close()
        child.finish()


def _receive_with_fd(connection):
    fd_size = array.array("i").itemsize
    message, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(fd_size))
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fd_size])
    assert len(fds) == 1, "expected exactly one fd in SCM_RIGHTS"
    return message.decode(), list(fds)


def _answer_one_notification(notify_fd, value):
    readable, _, _ = select.select([notify_fd], [], [], 20)
    assert readable, "no seccomp notification within 20 s"
    request = bytearray(SECCOMP_NOTIF_SIZE)
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, request)
    notification_id = int.from_bytes(request[0:8], "little")
    response = bytearray(SECCOMP_NOTIF_RESP_SIZE)
    response[0:8] = notification_id.to_bytes(8, "little")
    response[8:16] = value.to_bytes(8, "little", signed=True)
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, response)


# ---------------------------------------------------------------------------
# Configs that build_filter rejects or skips
# ---------------------------------------------------------------------------


def test_unknown_syscall_skipped():
    config = allow_all_except({"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"})

    assert seccomp.build_filter(config) is not None


def test_rule_equal_to_default_skipped():
    config = allow_all_except({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"})

    assert seccomp.build_filter(config) is not None


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"defaultAction": "SCMP_ACT_MAYBE"}, "unknown action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "only valid with SCMP_ACT_ERRNO"),
        (allow_all_except({"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}), "only valid with"),
        (allow_all_except({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}), "0 to 65535"),
        (allow_all_except(architectures=["SCMP_ARCH_Z80"]), "unknown or unsupported architecture"),
        (allow_all_except(flags=["SECCOMP_FILTER_FLAG_NONSENSE"]), "unknown flag"),
        (allow_all_except({"names": [], "action": "SCMP_ACT_ERRNO"}), "non-empty list"),
        (
            allow_all_except({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
            "index",
        ),
        (
            allow_all_except({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}),
            "unknown operator",
        ),
        (allow_all_except({"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}), "listenerPath is not set"),
        (
            allow_all_except({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/tmp/agent.sock"),
            "cannot be used for write",
        ),
        ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/tmp/agent.sock"}, "cannot be the default action"),
        (allow_all_except(listenerMetadata="x"), "listenerPath is not"),
    ],
)
def test_invalid_config_rejected(config, expected):
    with pytest.raises(SpecError, match=expected):
        seccomp.build_filter(config)


def test_wait_killable_flag_unsupported():
    if hasattr(libseccomp.Attr, "CTL_WAITKILL"):
        pytest.skip("this libseccomp supports SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
    config = allow_all_except(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])

    with pytest.raises(ProcessAttributeError, match="not supported by the installed libseccomp"):
        seccomp.build_filter(config)
