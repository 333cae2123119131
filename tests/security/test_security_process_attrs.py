"""rlimits, OOM score, I/O priority, scheduler, personality, LSM labels, CPU affinity and no_new_privs."""

import json
import logging
import os

import pytest

from navio_runtime.errors import ProcessAttributeError, SpecError
from navio_runtime.init import capabilities, process_attrs, seccomp
from navio_runtime.linux import syscalls
from security_helpers import held_child, report, run_child, status_fields, switch_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="process attribute tests need root")

RLIM_INFINITY = process_attrs.RLIM_INFINITY

# Row names of /proc/<pid>/limits for each rlimit type.
LIMITS_ROWS = {
    "RLIMIT_CPU": "Max cpu time",
    "RLIMIT_FSIZE": "Max file size",
    "RLIMIT_DATA": "Max data size",
    "RLIMIT_STACK": "Max stack size",
    "RLIMIT_CORE": "Max core file size",
    "RLIMIT_RSS": "Max resident set",
    "RLIMIT_NPROC": "Max processes",
    "RLIMIT_NOFILE": "Max open files",
    "RLIMIT_MEMLOCK": "Max locked memory",
    "RLIMIT_AS": "Max address space",
    "RLIMIT_LOCKS": "Max file locks",
    "RLIMIT_SIGPENDING": "Max pending signals",
    "RLIMIT_MSGQUEUE": "Max msgqueue size",
    "RLIMIT_NICE": "Max nice priority",
    "RLIMIT_RTPRIO": "Max realtime priority",
    "RLIMIT_RTTIME": "Max realtime timeout",
}


def parse_limits(text):
    """Return {row name: (soft, hard)} from /proc/<pid>/limits text, with "unlimited" as RLIM_INFINITY."""
    limits = {}
    for line in text.splitlines()[1:]:
        row = line[:26].strip()
        soft, hard = line[26:].split()[:2]
        limits[row] = tuple(RLIM_INFINITY if value == "unlimited" else int(value) for value in (soft, hard))
    return limits


def lowered_limits():
    """Return an rlimits config with every type set below this process's current hard limit."""
    rlimits = []
    for name, number in process_attrs.RLIMIT_NUMBERS.items():
        _, current_hard = syscalls.prlimit(0, number)
        hard = current_hard if current_hard != RLIM_INFINITY else 2**40
        soft = hard // 2
        rlimits.append({"type": name, "soft": soft, "hard": hard})
    return rlimits


# ---------------------------------------------------------------------------
# rlimits
# ---------------------------------------------------------------------------


def test_nofile_seen_by_shell():
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]

    result = run_child(lambda: process_attrs.apply_rlimits(rlimits), ["sh", "-c", "ulimit -Sn; ulimit -Hn"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["1024", "2048"]


def test_every_rlimit_type_applied():
    rlimits = lowered_limits()

    result = run_child(lambda: process_attrs.apply_rlimits(rlimits), ["cat", "/proc/self/limits"])

    assert result.exit_code == 0, result.stderr
    limits = parse_limits(result.stdout)
    for entry in rlimits:
        row = LIMITS_ROWS[entry["type"]]
        assert limits[row] == (entry["soft"], entry["hard"]), entry["type"]


def test_infinity_maps_to_unlimited():
    rlimits = [{"type": "RLIMIT_CORE", "soft": 0, "hard": RLIM_INFINITY}]
    if syscalls.prlimit(0, process_attrs.RLIMIT_NUMBERS["RLIMIT_CORE"])[1] != RLIM_INFINITY:
        pytest.skip("the hard core limit of this process is not unlimited")

    result = run_child(lambda: process_attrs.apply_rlimits(rlimits), ["cat", "/proc/self/limits"])

    assert result.exit_code == 0, result.stderr
    assert parse_limits(result.stdout)["Max core file size"] == (0, RLIM_INFINITY)


def test_raising_hard_limit_explained():
    _, current_hard = syscalls.prlimit(0, process_attrs.RLIMIT_NUMBERS["RLIMIT_NOFILE"])
    if capabilities.bounding_mask() >> capabilities.CAPABILITY_NUMBERS["CAP_SYS_RESOURCE"] & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE, so raising the hard limit succeeds")
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": current_hard + 1, "hard": current_hard + 1}]

    def prepare():
        try:
            process_attrs.apply_rlimits(rlimits)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "RLIMIT_NOFILE" in result.stdout
    assert f"hard {current_hard + 1}" in result.stdout
    assert f"current hard limit {current_hard}" in result.stdout
    assert "CAP_SYS_RESOURCE" in result.stdout
    assert "bounding set" in result.stdout
    assert "EPERM" in result.stdout


@pytest.mark.parametrize(
    "rlimits, expected",
    [
        ([{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}], "unknown rlimit type 'RLIMIT_FOO'"),
        ([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2, "duplicate rlimit type RLIMIT_NOFILE"),
        ([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}], "soft limit 2 is above its hard limit 1"),
        ([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}], "soft: expected an integer"),
        ([{"type": "RLIMIT_NOFILE", "soft": 1}], "hard: expected an integer"),
        ([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2**64}], "hard: expected an integer"),
    ],
)
def test_invalid_rlimits_rejected(rlimits, expected):
    with pytest.raises(SpecError, match=expected):
        process_attrs.validate_rlimits(rlimits)


def test_invalid_rlimit_problem_path():
    with pytest.raises(SpecError) as caught:
        process_attrs.validate_rlimits([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}, {"type": "RLIMIT_X"}])

    paths = [path for path, _ in caught.value.problems]
    assert "process.rlimits[1].type" in paths


# ---------------------------------------------------------------------------
# oom_score_adj and the procfs checks
# ---------------------------------------------------------------------------


def read_proc(pid, name):
    with open(f"/proc/{pid}/{name}") as file:
        return file.read().strip()


def test_oom_score_adj_set():
    with held_child(lambda: process_attrs.apply_oom_score_adj(500)) as pid:
        assert read_proc(pid, "oom_score_adj") == "500"


def test_oom_score_adj_none_untouched():
    def prepare():
        process_attrs.apply_oom_score_adj(321)
        process_attrs.apply_oom_score_adj(None)

    with held_child(prepare) as pid:
        assert read_proc(pid, "oom_score_adj") == "321"


def test_oom_score_adj_lowering_explained():
    if capabilities.bounding_mask() >> capabilities.CAPABILITY_NUMBERS["CAP_SYS_RESOURCE"] & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE, so lowering oom_score_adj succeeds")

    def prepare():
        try:
            process_attrs.apply_oom_score_adj(-500)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "-500" in result.stdout
    assert "EACCES" in result.stdout
    assert "CAP_SYS_RESOURCE" in result.stdout


def test_oom_score_adj_out_of_range():
    with pytest.raises(SpecError, match="-1000 to 1000"):
        process_attrs.apply_oom_score_adj(1001)


def isolate_mounts():
    """Give the child a private mount namespace, so its mounts never reach the host."""
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)


def test_bind_mount_over_proc_file_rejected(tmp_path):
    decoy = tmp_path / "decoy"
    decoy.write_text("")

    def prepare():
        isolate_mounts()
        syscalls.mount(str(decoy), f"/proc/{os.getpid()}/oom_score_adj", None, syscalls.MS_BIND)
        try:
            process_attrs.apply_oom_score_adj(500)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "refusing to write /proc/self/oom_score_adj" in result.stdout
    assert "another mount covers" in result.stdout
    assert decoy.read_text() == ""


def test_fake_proc_rejected(tmp_path):
    def prepare():
        isolate_mounts()
        syscalls.mount("tmpfs", "/proc", "tmpfs", 0, "size=64k")
        os.makedirs("/proc/self")
        with open("/proc/self/oom_score_adj", "w"):
            pass
        try:
            process_attrs.apply_oom_score_adj(500)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "/proc is not the root of a procfs mount" in result.stdout


def test_write_proc_file_writes():
    def prepare():
        process_attrs.write_proc_file("thread-self/comm", "renamed")
        report(read_proc("thread-self", "comm"))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "renamed"


# ---------------------------------------------------------------------------
# I/O priority, scheduler, personality
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "io_class, priority, expected",
    [("IOPRIO_CLASS_BE", 6, 2 << 13 | 6), ("IOPRIO_CLASS_RT", 3, 1 << 13 | 3), ("IOPRIO_CLASS_IDLE", 0, 3 << 13)],
)
def test_io_priority_set(io_class, priority, expected):
    setting = {"class": io_class, "priority": priority}

    with held_child(lambda: process_attrs.apply_io_priority(setting)) as pid:
        assert syscalls.ioprio_get(syscalls.IOPRIO_WHO_PROCESS, pid) == expected


@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"class": "IOPRIO_CLASS_NONE", "priority": 0}, "unknown class"),
        ({"class": "IOPRIO_CLASS_BE", "priority": 8}, "0 to 7"),
    ],
)
def test_invalid_io_priority_rejected(setting, expected):
    with pytest.raises(SpecError, match=expected):
        process_attrs.apply_io_priority(setting)


def test_scheduler_batch_with_nice():
    setting = {"policy": "SCHED_BATCH", "nice": 5}

    with held_child(lambda: process_attrs.apply_scheduler(setting)) as pid:
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH
        assert os.getpriority(os.PRIO_PROCESS, pid) == 5


def test_scheduler_fifo_reset_on_fork():
    setting = {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}

    with held_child(lambda: process_attrs.apply_scheduler(setting)) as pid:
        assert os.sched_getscheduler(pid) == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        assert os.sched_getparam(pid).sched_priority == 10


def test_scheduler_idle():
    with held_child(lambda: process_attrs.apply_scheduler({"policy": "SCHED_IDLE"})) as pid:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE


def test_scheduler_kernel_error_explained():
    setting = {"policy": "SCHED_OTHER", "priority": 10}

    def prepare():
        try:
            process_attrs.apply_scheduler(setting)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "SCHED_OTHER" in result.stdout
    assert "priority 10" in result.stdout
    assert "EINVAL" in result.stdout


@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"policy": "SCHED_WHENEVER"}, "unknown policy"),
        ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_FAST"]}, "unknown flag"),
        ({"policy": "SCHED_OTHER", "nice": 20}, "nice: expected an integer from -20 to 19"),
    ],
)
def test_invalid_scheduler_rejected(setting, expected):
    with pytest.raises(SpecError, match=expected):
        process_attrs.apply_scheduler(setting)


def test_personality_linux32():
    result = run_child(lambda: process_attrs.apply_personality({"domain": "LINUX32"}), ["uname", "-m"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "i686"


def test_personality_seen_in_proc():
    with held_child(lambda: process_attrs.apply_personality({"domain": "LINUX32"})) as pid:
        assert read_proc(pid, "personality") == "00000008"


def test_personality_flags_ignored():
    setting = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}

    def prepare():
        process_attrs.apply_personality(setting)
        report(f"{syscalls.personality(syscalls.PERSONALITY_QUERY):08x}")

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "00000000"
    assert "ADDR_NO_RANDOMIZE" in result.stderr


def test_unknown_personality_rejected():
    with pytest.raises(SpecError, match="unknown domain 'LINUX64'"):
        process_attrs.apply_personality({"domain": "LINUX64"})


# ---------------------------------------------------------------------------
# AppArmor and SELinux on a host that enables neither
# ---------------------------------------------------------------------------


def apparmor_enabled():
    return process_attrs.detect_security_modules()["apparmor"]


def selinux_enabled():
    return process_attrs.detect_security_modules()["selinux"]


@pytest.mark.skipif(apparmor_enabled(), reason="this host enables AppArmor")
def test_apparmor_profile_without_apparmor():
    with pytest.raises(ProcessAttributeError, match="'acme_secure_profile'.*AppArmor is not enabled"):
        process_attrs.apply_apparmor_profile("acme_secure_profile")


@pytest.mark.skipif(apparmor_enabled(), reason="this host enables AppArmor")
@pytest.mark.parametrize("profile", [None, "", "unconfined"])
def test_apparmor_unconfined_is_noop(profile):
    process_attrs.apply_apparmor_profile(profile)


@pytest.mark.skipif(selinux_enabled(), reason="this host enables SELinux")
def test_selinux_label_ignored(caplog):
    label = "system_u:system_r:container_t:s0:c1,c2"

    with caplog.at_level(logging.DEBUG, logger="navio_runtime"):
        process_attrs.apply_selinux_label(label)

    assert label in caplog.text
    assert "SELinux is not enabled" in caplog.text


# ---------------------------------------------------------------------------
# CPU affinity and no_new_privs
# ---------------------------------------------------------------------------

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least two usable CPUs")


@needs_two_cpus
def test_affinity_initial():
    cpu = max(os.sched_getaffinity(0))
    value = {"initial": str(cpu), "final": "0"}

    with held_child(lambda: process_attrs.apply_exec_cpu_affinity(value, final=False)) as pid:
        assert os.sched_getaffinity(pid) == {cpu}


@needs_two_cpus
def test_affinity_final():
    cpu = min(os.sched_getaffinity(0))
    value = {"initial": str(max(os.sched_getaffinity(0))), "final": str(cpu)}

    def prepare():
        process_attrs.apply_exec_cpu_affinity(value, final=False)
        process_attrs.apply_exec_cpu_affinity(value, final=True)

    with held_child(prepare) as pid:
        assert os.sched_getaffinity(pid) == {cpu}


@needs_two_cpus
def test_affinity_final_omitted_resets():
    allowed = os.sched_getaffinity(0)
    value = {"initial": str(max(allowed))}

    def prepare():
        process_attrs.apply_exec_cpu_affinity(value, final=False)
        process_attrs.apply_exec_cpu_affinity(value, final=True)

    with held_child(prepare) as pid:
        assert os.sched_getaffinity(pid) == allowed


def test_affinity_none_untouched():
    allowed = os.sched_getaffinity(0)

    with held_child(lambda: process_attrs.apply_exec_cpu_affinity(None, final=True)) as pid:
        assert os.sched_getaffinity(pid) == allowed


@pytest.mark.parametrize("text", ["1-0", "a", "1,,2", "-1", "0-"])
def test_invalid_cpu_list_rejected(text):
    with pytest.raises(SpecError, match="execCPUAffinity.initial"):
        process_attrs.apply_exec_cpu_affinity({"initial": text}, final=False)


def test_cpu_list_parsed():
    assert process_attrs.parse_cpu_list("0-3,7") == {0, 1, 2, 3, 7}


def test_affinity_missing_cpu_explained():
    value = {"initial": "4095"}

    def prepare():
        try:
            process_attrs.apply_exec_cpu_affinity(value, final=False)
        except ProcessAttributeError as err:
            report(str(err))

    result = run_child(prepare)

    assert result.exit_code == 0, result.stderr
    assert "execCPUAffinity.initial" in result.stdout
    assert "4095" in result.stdout
    assert "EINVAL" in result.stdout


def test_no_new_privileges_set():
    result = run_child(process_attrs.set_no_new_privileges, ["cat", "/proc/self/status"])

    assert result.exit_code == 0, result.stderr
    assert status_fields(result.stdout)["NoNewPrivs"] == "1"


# ---------------------------------------------------------------------------
# The whole sequence in the order the init uses
# ---------------------------------------------------------------------------


def test_init_sequence_as_user():
    with open("/work/shared/data/podman-4.3-default-seccomp.json") as file:
        profile = json.load(file)
    process = {
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}],
        "oomScoreAdj": 200,
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 5},
        "scheduler": {"policy": "SCHED_BATCH", "nice": 3},
        "capabilities": {
            name: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for name in ("bounding", "permitted", "effective", "inheritable", "ambient")
        },
        "noNewPrivileges": True,
    }
    linux = {"personality": {"domain": "LINUX32"}, "seccomp": profile}

    def prepare():
        process_attrs.apply_rlimits(process["rlimits"])
        process_attrs.apply_oom_score_adj(process.get("oomScoreAdj"))
        process_attrs.apply_io_priority(process.get("ioPriority"))
        process_attrs.apply_scheduler(process.get("scheduler"))
        process_attrs.apply_personality(linux.get("personality"))
        process_attrs.apply_apparmor_profile(process.get("apparmorProfile"))
        process_attrs.apply_selinux_label(process.get("selinuxLabel"))
        capabilities.keep_capabilities_across_setuid()
        switch_user(1000, 1000)
        capabilities.apply_capabilities(process.get("capabilities"))
        process_attrs.apply_exec_cpu_affinity(process.get("execCPUAffinity"), final=True)
        if process.get("noNewPrivileges"):
            process_attrs.set_no_new_privileges()
        seccomp.load_seccomp(linux.get("seccomp"))

    script = "cat /proc/self/status; echo limit $(ulimit -n); echo machine $(uname -m); cat /proc/self/oom_score_adj"
    result = run_child(prepare, ["sh", "-c", script])

    assert result.exit_code == 0, result.stderr
    fields = status_fields(result.stdout)
    caps = 1 << 0 | 1 << 5 | 1 << 10
    assert fields["Uid"].split()[0] == "1000"
    assert int(fields["CapEff"], 16) == caps
    assert int(fields["CapBnd"], 16) == caps
    assert int(fields["CapAmb"], 16) == caps
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"
    assert "limit 512" in result.stdout
    assert "machine i686" in result.stdout
    assert result.stdout.rstrip().endswith("200")
