"""Tests of config.json validation: schemas, generated fast validator, semantic checks."""

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from navio_runtime.errors import SpecError
from navio_runtime.spec import _config_validator
from navio_runtime.spec.validate import (
    Problem,
    find_problems,
    format_path,
    load_config,
    validate_config,
    validate_features,
    validate_state,
)

REPO = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "configs"
CONFIG_SCHEMA = Draft7Validator(json.loads(_config_validator.CONFIG_SCHEMA_JSON))


def read_config(name):
    with open(CONFIGS / name, encoding="utf-8") as file:
        return json.load(file)


def busybox_config():
    return read_config("busybox.json")


def podman_config(rootfs):
    config = read_config("podman.json")
    config["root"]["path"] = str(rootfs)
    config["linux"]["seccomp"] = read_config("podman-4.3-default-seccomp.json")
    return config


@pytest.fixture
def bundle(tmp_path):
    """Return a bundle directory with an empty rootfs/ directory."""
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def write_config(bundle, config):
    with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)


def rejection(config, bundle, for_create=True):
    """Return the SpecError that validate_config raises for `config`."""
    with pytest.raises(SpecError) as caught:
        validate_config(config, bundle, for_create)
    return caught.value


def fast_accepts(config):
    try:
        _config_validator.validate(config)
    except _config_validator.JsonSchemaValueException:
        return False
    return True


# --- Valid configs ---------------------------------------------------------------


def test_busybox_config_valid(bundle):
    config = busybox_config()

    validate_config(config, bundle)

    assert find_problems(config, bundle) == []


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
@pytest.mark.parametrize("flags", [[], ["--rootless"]], ids=["default", "rootless"])
def test_runc_spec_config_valid(tmp_path, flags):
    subprocess.run(["runc", "spec", *flags], cwd=tmp_path, check=True)
    (tmp_path / "rootfs").mkdir()
    config = load_config(str(tmp_path))

    validate_config(config, str(tmp_path))

    assert find_problems(config, str(tmp_path)) == []


def test_podman_config_valid(bundle):
    config = podman_config(os.path.join(bundle, "rootfs"))

    validate_config(config, bundle)

    assert find_problems(config, bundle) == []


def test_podman_seccomp_profile_loaded(bundle):
    config = podman_config(os.path.join(bundle, "rootfs"))
    seccomp = config["linux"]["seccomp"]

    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp["defaultErrnoRet"] == 38
    assert sum(len(rule["names"]) for rule in seccomp["syscalls"]) > 400


def test_podman_config_fast_path_time(bundle):
    config = podman_config(os.path.join(bundle, "rootfs"))
    durations = []

    for _ in range(20):
        start = time.perf_counter()
        validate_config(config, bundle)
        durations.append(time.perf_counter() - start)

    # The bound is loose, so that a loaded CI host passes too.
    assert sorted(durations)[len(durations) // 2] < 0.02


@pytest.mark.parametrize("version", ["1.0.0", "1.2.1", "1.3.0", "1.0.2-dev", "1.1.0-rc.1+build.5"])
def test_oci_version_1x_accepted(bundle, version):
    config = busybox_config()
    config["ociVersion"] = version

    validate_config(config, bundle)


def test_absolute_root_path_accepted(bundle):
    config = busybox_config()
    config["root"]["path"] = os.path.join(bundle, "rootfs")

    validate_config(config, bundle)


def test_process_optional_without_create(bundle):
    config = busybox_config()
    del config["process"]

    validate_config(config, bundle, for_create=False)


def test_unknown_properties_accepted(bundle):
    config = busybox_config()
    config["vendorExtension"] = {"anything": [1, 2]}
    config["process"]["com.example.flag"] = True
    config["linux"]["namespaces"][0]["x-note"] = "kept"

    validate_config(config, bundle)


def test_spec_1_3_fields_accepted(bundle):
    config = busybox_config()
    config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    config["process"]["execCPUAffinity"] = {"initial": "0", "final": "0-3,7"}
    config["process"]["user"]["umask"] = 18
    config["linux"]["namespaces"].append({"type": "time"})
    config["linux"]["timeOffsets"] = {"monotonic": {"secs": 3600, "nanosecs": 0}, "boottime": {"secs": -5}}
    config["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    config["linux"]["netDevices"] = {"eth0": {"name": "ctr0"}, "dummy%d": {}}
    config["linux"]["intelRdt"] = {"closID": "/", "schemata": ["L3:0=7f0", "MB:0=20"], "enableMonitoring": True}
    config["linux"]["personality"] = {"domain": "LINUX32"}
    config["linux"]["rootfsPropagation"] = "rslave"
    config["linux"]["resources"] = {
        "cpu": {"quota": 50000, "burst": 10000, "period": 100000, "idle": 1},
        "rdma": {"mlx5_1": {"hcaHandles": 3}},
        "unified": {"memory.high": "1G", "io.max": "8:0 rbps=1048576"},
    }
    config["mounts"].append(
        {
            "destination": "/data",
            "source": "/srv/data",
            "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        }
    )

    validate_config(config, bundle)


# --- Semantic rules ----------------------------------------------------------------


def set_in(path, value):
    """Return a mutation that sets config[path...] = value, creating dicts on the way."""

    def mutate(config):
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value

    return mutate


def add_namespace(entry):
    return lambda config: config["linux"]["namespaces"].append(entry)


def remove_namespace(kind):
    def mutate(config):
        config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != kind]

    return mutate


def chain(*mutations):
    def mutate(config):
        for mutation in mutations:
            mutation(config)

    return mutate


def delete(path):
    def mutate(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def notify_rule(names):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]}


SEMANTIC_CASES = [
    ("version-major-2", set_in(["ociVersion"], "2.0.0"), "ociVersion"),
    ("version-not-semver", set_in(["ociVersion"], "abc"), "ociVersion"),
    ("root-missing", set_in(["root", "path"], "no-such-dir"), "root.path"),
    ("root-not-directory", set_in(["root", "path"], "config.json"), "root.path"),
    ("process-missing", delete(["process"]), "process"),
    ("args-empty", set_in(["process", "args"], []), "process.args"),
    ("args-missing", delete(["process", "args"]), "process.args"),
    ("cwd-relative", set_in(["process", "cwd"], "home"), "process.cwd"),
    ("env-without-equals", set_in(["process", "env"], ["PATH=/bin", "TERM"]), "process.env[1]"),
    ("env-empty-name", set_in(["process", "env"], ["=x"]), "process.env[0]"),
    ("namespace-duplicate", add_namespace({"type": "pid"}), "linux.namespaces[5].type"),
    ("user-namespace-without-mappings", add_namespace({"type": "user"}), "linux.uidMappings"),
    (
        "gid-mappings-missing",
        chain(add_namespace({"type": "user"}), set_in(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}])),
        "linux.gidMappings",
    ),
    ("mappings-without-user-namespace", set_in(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]), "linux.uidMappings"),
    ("hostname-without-uts", remove_namespace("uts"), "hostname"),
    ("hostname-with-joined-uts", set_in(["linux", "namespaces", 2, "path"], "/proc/1/ns/uts"), "hostname"),
    ("domainname-without-uts", chain(remove_namespace("uts"), delete(["hostname"]), set_in(["domainname"], "example.org")), "domainname"),
    ("time-offsets-without-time", set_in(["linux", "timeOffsets"], {"monotonic": {"secs": 1}}), "linux.timeOffsets"),
    ("namespace-path-relative", set_in(["linux", "namespaces", 4, "path"], "netns/a"), "linux.namespaces[4].path"),
    ("rlimit-type-unknown", set_in(["process", "rlimits"], [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]), "process.rlimits[0].type"),
    (
        "rlimit-duplicate",
        set_in(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}, {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}]),
        "process.rlimits[1].type",
    ),
    ("rlimit-soft-above-hard", set_in(["process", "rlimits"], [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]), "process.rlimits[0].soft"),
    ("device-path-relative", set_in(["linux", "devices"], [{"type": "c", "path": "dev/fuse", "major": 10, "minor": 229}]), "linux.devices[0].path"),
    ("device-type-unknown", set_in(["linux", "devices"], [{"type": "x", "path": "/dev/x", "major": 1, "minor": 3}]), "linux.devices[0].type"),
    ("device-major-missing", set_in(["linux", "devices"], [{"type": "c", "path": "/dev/fuse", "minor": 229}]), "linux.devices[0].major"),
    ("device-minor-missing", set_in(["linux", "devices"], [{"type": "u", "path": "/dev/u", "major": 4}]), "linux.devices[0].minor"),
    (
        "device-path-duplicate",
        set_in(["linux", "devices"], [{"type": "c", "path": "/dev/a", "major": 1, "minor": 3}, {"type": "p", "path": "/dev/a"}]),
        "linux.devices[1].path",
    ),
    ("sysctl-net-host-network", chain(remove_namespace("network"), set_in(["linux", "sysctl"], {"net.ipv4.ip_forward": "1"})), 'linux.sysctl["net.ipv4.ip_forward"]'),
    (
        "sysctl-net-joined-host-network",
        chain(set_in(["linux", "namespaces", 4, "path"], "/proc/self/ns/net"), set_in(["linux", "sysctl"], {"net.core.somaxconn": "256"})),
        'linux.sysctl["net.core.somaxconn"]',
    ),
    ("sysctl-slash-separator", chain(remove_namespace("network"), set_in(["linux", "sysctl"], {"net/ipv4/ip_forward": "1"})), 'linux.sysctl["net/ipv4/ip_forward"]'),
    ("sysctl-ipc-without-ipc", chain(remove_namespace("ipc"), set_in(["linux", "sysctl"], {"kernel.shmmax": "1"})), 'linux.sysctl["kernel.shmmax"]'),
    ("sysctl-not-namespaced", set_in(["linux", "sysctl"], {"vm.swappiness": "10"}), 'linux.sysctl["vm.swappiness"]'),
    ("sysctl-hostname-conflict", set_in(["linux", "sysctl"], {"kernel.hostname": "x"}), 'linux.sysctl["kernel.hostname"]'),
    ("seccomp-names-empty", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}), "linux.seccomp.syscalls[0].names"),
    ("seccomp-name-empty-string", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}), "linux.seccomp.syscalls[0].names[0]"),
    ("seccomp-notify-default", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock"}), "linux.seccomp.defaultAction"),
    ("seccomp-errno-with-allow", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}), "linux.seccomp.syscalls[0].errnoRet"),
    ("seccomp-default-errno-with-kill", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}), "linux.seccomp.defaultErrnoRet"),
    ("seccomp-metadata-without-listener", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}), "linux.seccomp.listenerMetadata"),
    ("seccomp-notify-without-listener", set_in(["linux", "seccomp"], notify_rule(["mkdir"])), "linux.seccomp.syscalls[0].action"),
    ("seccomp-notify-write", set_in(["linux", "seccomp"], {**notify_rule(["write"]), "listenerPath": "/run/a.sock"}), "linux.seccomp.syscalls[0].names"),
    ("unified-slash", set_in(["linux", "resources"], {"unified": {"memory/max": "1"}}), 'linux.resources.unified["memory/max"]'),
    ("unified-dotdot", set_in(["linux", "resources"], {"unified": {"..": "1"}}), 'linux.resources.unified[".."]'),
    ("hook-path-relative", set_in(["hooks"], {"prestart": [{"path": "bin/hook"}]}), "hooks.prestart[0].path"),
    ("hook-timeout-zero", set_in(["hooks"], {"poststop": [{"path": "/bin/true", "timeout": 0}]}), "hooks.poststop[0].timeout"),
    ("masked-path-relative", set_in(["linux", "maskedPaths"], ["proc/kcore"]), "linux.maskedPaths[0]"),
    ("mount-namespace-missing", chain(remove_namespace("mount"), set_in(["linux", "readonlyPaths"], ["/proc/sys"])), "linux.namespaces"),
    ("scheduler-priority-other", set_in(["process", "scheduler"], {"policy": "SCHED_OTHER", "priority": 5}), "process.scheduler.priority"),
    ("scheduler-runtime-not-deadline", set_in(["process", "scheduler"], {"policy": "SCHED_RR", "runtime": 5}), "process.scheduler.runtime"),
    ("scheduler-deadline-order", set_in(["process", "scheduler"], {"policy": "SCHED_DEADLINE", "runtime": 20, "deadline": 10, "period": 30}), "process.scheduler.runtime"),
    ("scheduler-nice-range", set_in(["process", "scheduler"], {"policy": "SCHED_OTHER", "nice": 20}), "process.scheduler.nice"),
    ("net-devices-without-network", chain(remove_namespace("network"), set_in(["linux", "netDevices"], {"eth0": {}})), "linux.netDevices"),
    ("net-device-name-invalid", set_in(["linux", "netDevices"], {"eth0": {"name": "a/b"}}), "linux.netDevices.eth0.name"),
    ("net-device-name-long", set_in(["linux", "netDevices"], {"averyveryverylongname": {}}), "linux.netDevices.averyveryverylongname"),
    ("intel-rdt-clos-slash", set_in(["linux", "intelRdt"], {"closID": "a/b"}), "linux.intelRdt.closID"),
    ("memory-policy-bind-without-nodes", set_in(["linux", "memoryPolicy"], {"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
    ("memory-policy-local-with-nodes", set_in(["linux", "memoryPolicy"], {"mode": "MPOL_LOCAL", "nodes": "0"}), "linux.memoryPolicy.nodes"),
    ("memory-policy-exclusive-flags", set_in(["linux", "memoryPolicy"], {"mode": "MPOL_PREFERRED", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}), "linux.memoryPolicy.flags"),
    ("time-offset-clock-unknown", chain(add_namespace({"type": "time"}), set_in(["linux", "timeOffsets"], {"realtime": {"secs": 1}})), "linux.timeOffsets.realtime"),
    ("time-offset-nanosecs", chain(add_namespace({"type": "time"}), set_in(["linux", "timeOffsets"], {"boottime": {"nanosecs": 1000000000}})), "linux.timeOffsets.boottime.nanosecs"),
    ("cpu-burst-above-quota", set_in(["linux", "resources"], {"cpu": {"quota": 1000, "burst": 2000}}), "linux.resources.cpu.burst"),
    ("cpu-list-reversed", set_in(["linux", "resources"], {"cpu": {"cpus": "3-1"}}), "linux.resources.cpu.cpus"),
    ("cpu-list-garbage", set_in(["linux", "resources"], {"cpu": {"mems": "all"}}), "linux.resources.cpu.mems"),
    ("exec-affinity-garbage", set_in(["process", "execCPUAffinity"], {"final": "0-"}), "process.execCPUAffinity.final"),
    ("memory-swap-below-limit", set_in(["linux", "resources"], {"memory": {"limit": 2048, "swap": 1024}}), "linux.resources.memory.swap"),
    ("memory-swappiness-above-100", set_in(["linux", "resources"], {"memory": {"swappiness": 200}}), "linux.resources.memory.swappiness"),
    ("cgroups-path-dotdot", set_in(["linux", "cgroupsPath"], "/a/../../b"), "linux.cgroupsPath"),
    ("idmap-without-mappings", set_in(["mounts", 0, "options"], ["idmap"]), "mounts[0].options"),
    ("mapping-size-zero", chain(add_namespace({"type": "user"}), set_in(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1, "size": 0}]), set_in(["linux", "gidMappings"], [{"containerID": 0, "hostID": 1, "size": 1}])), "linux.uidMappings[0].size"),
    ("mount-mappings-alone", set_in(["mounts", 0, "uidMappings"], [{"containerID": 0, "hostID": 1, "size": 1}]), "mounts[0].gidMappings"),
    ("oom-score-adj-range", set_in(["process", "oomScoreAdj"], 1001), "process.oomScoreAdj"),
    ("io-priority-range", set_in(["process", "ioPriority"], {"class": "IOPRIO_CLASS_RT", "priority": 8}), "process.ioPriority.priority"),
    ("seccomp-arg-index", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}), "linux.seccomp.syscalls[0].args[0].index"),
    ("annotation-key-empty", set_in(["annotations"], {"": "x"}), "annotations"),
]


@pytest.mark.parametrize("mutate, expected_path", [case[1:] for case in SEMANTIC_CASES], ids=[case[0] for case in SEMANTIC_CASES])
def test_rule_rejects_with_path(bundle, mutate, expected_path):
    config = busybox_config()
    mutate(config)

    error = rejection(config, bundle)

    assert error.problems[0].path == expected_path
    assert f"config.json: {expected_path}:" in str(error)


def test_rule_messages_name_value(bundle):
    config = busybox_config()
    config["process"]["cwd"] = "home"

    error = rejection(config, bundle)

    assert error.problems == [Problem("process.cwd", '"home" is not an absolute path', 'use "/home"')]


def test_error_counts_more_problems(bundle):
    config = busybox_config()
    config["process"]["cwd"] = "home"
    config["ociVersion"] = "abc"

    error = rejection(config, bundle)

    assert len(error.problems) == 2
    assert str(error).endswith("(and 1 more problem)")


def test_sysctl_net_in_own_network_namespace(bundle):
    # A network namespace that is not the runtime's allows net.* sysctls.
    unshare = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        namespace = f"/proc/{unshare.pid}/ns/net"
        for _ in range(100):
            if os.path.exists(namespace) and os.stat(namespace).st_ino != os.stat("/proc/self/ns/net").st_ino:
                break
            time.sleep(0.01)
        config = busybox_config()
        config["linux"]["namespaces"][4]["path"] = namespace
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}

        validate_config(config, bundle)
    finally:
        unshare.send_signal(signal.SIGKILL)
        unshare.wait()


def test_rules_apply_without_create(bundle):
    config = busybox_config()
    config["process"]["cwd"] = "relative"

    error = rejection(config, bundle, for_create=False)

    assert error.problems[0].path == "process.cwd"


# --- Schema errors ------------------------------------------------------------------


def test_enum_typo_suggests_value(bundle):
    config = busybox_config()
    config["linux"]["namespaces"][4]["type"] = "netz"

    problems = find_problems(config, bundle)

    assert problems[0].path == "linux.namespaces[4].type"
    assert problems[0].message.startswith('"netz" is not one of "pid", "network",')
    assert problems[0].fix == 'did you mean "network"?'


@pytest.mark.parametrize(
    "path, value, expected_path, expected_fix",
    [
        (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ERRORNO"}, "linux.seccomp.defaultAction", 'did you mean "SCMP_ACT_ERRNO"?'),
        (["process", "rlimits"], [{"type": "RLIMIT_NOFILES", "soft": 1, "hard": 1}], "process.rlimits[0].type", 'did you mean "RLIMIT_NOFILE"?'),
        (["linux", "rootfsPropagation"], "Private", "linux.rootfsPropagation", 'did you mean "private"?'),
        (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_46"]}, "linux.seccomp.architectures[0]", 'did you mean "SCMP_ARCH_X86_64"?'),
        (["process", "terminal"], "true", "process.terminal", "write true without quotes"),
        (["process", "user", "uid"], "1000", "process.user.uid", "write 1000 without quotes"),
        (["process", "user", "gid"], -1, "process.user.gid", "use a value from 0 to 4294967295"),
        (["root"], {"readonly": True}, "root.path", 'add "path"'),
    ],
)
def test_schema_error_path_and_fix(bundle, path, value, expected_path, expected_fix):
    config = busybox_config()
    set_in(path, value)(config)

    problems = find_problems(config, bundle)

    assert problems[0].path == expected_path
    assert problems[0].fix == expected_fix


def test_schema_lists_every_problem(bundle):
    config = busybox_config()
    config["process"]["terminal"] = "yes"
    config["linux"]["namespaces"][0]["type"] = "pidd"
    config["mounts"][0]["options"] = "ro"
    del config["ociVersion"]

    paths = [problem.path for problem in find_problems(config, bundle)]

    assert paths == ["process.terminal", "mounts[0].options", "linux.namespaces[0].type", "ociVersion"]


def test_problems_in_document_order(bundle):
    config = busybox_config()
    config["linux"]["namespaces"][0]["type"] = "pidd"
    config["process"]["cwd"] = "x"

    error = rejection(config, bundle)

    assert [problem.path for problem in error.problems] == ["process.cwd", "linux.namespaces[0].type"]


def test_not_an_object_rejected(bundle):
    error = rejection(["not", "an", "object"], bundle)

    assert error.problems == [Problem("", '["not", "an", "object"] is an array, expected an object', "use an object")]


def test_format_path_quotes_keys():
    assert format_path(("linux", "sysctl", "net.ipv4.ip_forward")) == 'linux.sysctl["net.ipv4.ip_forward"]'
    assert format_path(("mounts", 3, "options", 0)) == "mounts[3].options[0]"
    assert format_path(()) == ""


# --- Fast and slow validators agree ----------------------------------------------------------


def agreement_table(rootfs):
    """Return (name, config) pairs, valid and invalid, for the agreement test."""
    base = busybox_config()
    table = [
        ("busybox", base),
        ("podman", podman_config(rootfs)),
        ("empty", {}),
        ("array", []),
        ("string", "config"),
        ("null", None),
    ]

    def variant(name, *mutations):
        config = copy.deepcopy(base)
        for mutation in mutations:
            mutation(config)
        table.append((name, config))

    variant("float-uid", set_in(["process", "user", "uid"], 1.0))
    variant("fractional-uid", set_in(["process", "user", "uid"], 1.5))
    variant("bool-uid", set_in(["process", "user", "uid"], True))
    variant("uid-too-large", set_in(["process", "user", "uid"], 2**32))
    variant("uint64-max", set_in(["process", "rlimits"], [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]))
    variant("uint64-overflow", set_in(["process", "rlimits"], [{"type": "RLIMIT_CORE", "soft": 2**64, "hard": 1}]))
    variant("int64-min", set_in(["linux", "resources"], {"memory": {"limit": -(2**63)}}))
    variant("int64-underflow", set_in(["linux", "resources"], {"memory": {"limit": -(2**63) - 1}}))
    variant("namespace-typo", set_in(["linux", "namespaces", 0, "type"], "pidd"))
    variant("namespace-null", set_in(["linux", "namespaces", 0], None))
    variant("no-root", delete(["root"]))
    variant("no-version", delete(["ociVersion"]))
    variant("version-number", set_in(["ociVersion"], 1.0))
    variant("unknown-property", set_in(["linux", "future"], {"x": 1}))
    variant("access-trailing-newline", set_in(["linux", "resources"], {"devices": [{"allow": True, "access": "rw\n"}]}))
    variant("access-valid", set_in(["linux", "resources"], {"devices": [{"allow": True, "access": "rw"}]}))
    variant("pagesize-trailing-newline", set_in(["linux", "resources"], {"hugepageLimits": [{"pageSize": "2MB\n", "limit": 1}]}))
    variant("pagesize-valid", set_in(["linux", "resources"], {"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}))
    variant("membw-newline", set_in(["linux", "intelRdt"], {"memBwSchema": "MB:0=20\n"}))
    variant("schemata-newline", set_in(["linux", "intelRdt"], {"schemata": ["L3:0=f\nMB:0=1"]}))
    variant("weight-device-empty", set_in(["linux", "resources"], {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}))
    variant("weight-device-leaf", set_in(["linux", "resources"], {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 10}]}}))
    variant("throttle-without-rate", set_in(["linux", "resources"], {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}}))
    variant("rdma-empty", set_in(["linux", "resources"], {"rdma": {"mlx4_0": {}}}))
    variant("mount-uid-only", set_in(["mounts", 0, "uidMappings"], []))
    variant("mount-both-mappings", set_in(["mounts", 0, "uidMappings"], []), set_in(["mounts", 0, "gidMappings"], []))
    variant("annotation-empty-key", set_in(["annotations"], {"": "x"}))
    variant("annotation-number", set_in(["annotations"], {"a": 1}))
    variant("hook-timeout-zero", set_in(["hooks"], {"poststart": [{"path": "/bin/true", "timeout": 0}]}))
    variant("hook-timeout-one", set_in(["hooks"], {"poststart": [{"path": "/bin/true", "timeout": 1}]}))
    variant("capabilities-list", set_in(["process", "capabilities"], ["CAP_KILL"]))
    variant("seccomp-no-default", set_in(["linux", "seccomp"], {"syscalls": []}))
    variant("seccomp-arch-typo", set_in(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}))
    variant("personality-bad", set_in(["linux", "personality"], {"domain": "LINUX64"}))
    variant("semantic-only-cwd", set_in(["process", "cwd"], "relative"))
    variant("semantic-only-hostname", remove_namespace("uts"))
    return table


def test_agreement_table_size(bundle):
    table = agreement_table(os.path.join(bundle, "rootfs"))
    accepted = [name for name, config in table if CONFIG_SCHEMA.is_valid(config)]

    assert len(table) >= 30
    assert len(accepted) >= 10
    assert len(table) - len(accepted) >= 20


def test_fast_and_slow_schema_agree(bundle):
    disagreements = []

    for name, config in agreement_table(os.path.join(bundle, "rootfs")):
        if fast_accepts(config) != CONFIG_SCHEMA.is_valid(config):
            disagreements.append(name)

    assert disagreements == []


def test_fast_and_slow_full_agree(bundle):
    disagreements = []

    for name, config in agreement_table(os.path.join(bundle, "rootfs")):
        try:
            validate_config(config, bundle)
            fast_valid = True
        except SpecError:
            fast_valid = False
        if fast_valid != (find_problems(config, bundle) == []):
            disagreements.append(name)

    assert disagreements == []


def node_paths(node, prefix=()):
    """Yield the path of every node of a JSON document, at most 3 items per array."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from node_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from node_paths(value, prefix + (index,))


def replaced(document, path, value):
    if not path:
        return value
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


WRONG_VALUES = [None, True, 0, -1, 1.5, "", "x", [], {}, [None], {"": None}]


def test_node_mutations_agree(bundle):
    # Replace each node of the busybox config by values of the wrong type. The two
    # validators must agree, and find_problems must explain every rejection.
    base = busybox_config()
    disagreements = []
    unexplained = []

    for path in node_paths(base):
        for value in WRONG_VALUES:
            config = replaced(base, path, value)
            slow_valid = CONFIG_SCHEMA.is_valid(config)
            if fast_accepts(config) != slow_valid:
                disagreements.append((format_path(path), value))
            if not slow_valid and not find_problems(config, bundle):
                unexplained.append((format_path(path), value))

    assert disagreements == []
    assert unexplained == []


def test_semantic_checks_survive_wrong_types(bundle):
    base = podman_config(os.path.join(bundle, "rootfs"))
    base["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}}
    base["linux"]["netDevices"] = {"eth0": {"name": "c0"}}
    base["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    base["linux"]["intelRdt"] = {"closID": "g"}
    base["linux"]["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}]
    base["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3}
    base["linux"]["namespaces"].append({"type": "time", "path": "relative/time"})
    base["linux"]["sysctl"]["kernel.shmmax"] = "1"
    base["hooks"]["prestart"] = [{"path": "relative/hook", "env": ["A=1", "B"]}]
    crashes = []

    for path in node_paths(base):
        for value in WRONG_VALUES:
            config = replaced(base, path, value)
            try:
                list(_semantic(config, bundle))
            except Exception as error:  # noqa: BLE001 - the test reports any crash
                crashes.append((format_path(path), value, repr(error)))

    assert crashes == []


def _semantic(config, bundle):
    from navio_runtime.spec.semantics import semantic_problems

    return list(semantic_problems(config, bundle, True))


# --- load_config --------------------------------------------------------------------------


def test_load_config_returns_dict(bundle):
    write_config(bundle, busybox_config())

    assert load_config(bundle) == busybox_config()


def test_load_config_missing_file(bundle):
    with pytest.raises(SpecError) as caught:
        load_config(bundle)

    assert os.path.join(bundle, "config.json") in str(caught.value)


def test_load_config_missing_bundle(tmp_path):
    missing = str(tmp_path / "absent")

    with pytest.raises(SpecError) as caught:
        load_config(missing)

    assert f"bundle directory {missing} not found" in str(caught.value)


def test_load_config_syntax_error_position(bundle):
    with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
        file.write('{\n  "ociVersion": "1.0.2",\n  "root": {"path": "rootfs"},,\n}\n')

    with pytest.raises(SpecError) as caught:
        load_config(bundle)

    message = str(caught.value)
    assert os.path.join(bundle, "config.json") in message
    assert "line 3 column 30" in message


def test_load_config_deep_nesting(bundle):
    with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
        file.write("[" * 100000 + "]" * 100000)

    with pytest.raises(SpecError) as caught:
        load_config(bundle)

    assert "nested too deeply" in str(caught.value)


def test_load_config_not_object(bundle):
    write_config(bundle, [1, 2])

    with pytest.raises(SpecError) as caught:
        load_config(bundle)

    assert "must contain a JSON object, not an array" in str(caught.value)


# --- State and features ----------------------------------------------------------------------


def state(**changes):
    document = {"ociVersion": "1.3.0", "id": "box", "status": "running", "pid": 4242, "bundle": "/srv/bundles/box"}
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


@pytest.mark.parametrize("status", ["creating", "created", "running", "stopped", "paused"])
def test_state_valid(status):
    assert validate_state(state(status=status)) == []


def test_state_stopped_without_pid():
    assert validate_state(state(status="stopped", pid=None)) == []


@pytest.mark.parametrize(
    "changes, expected_path",
    [
        ({"status": "runing"}, "status"),
        ({"pid": None}, "pid"),
        ({"pid": 0}, "pid"),
        ({"bundle": "bundles/box"}, "bundle"),
        ({"id": ""}, "id"),
        ({"ociVersion": "one"}, "ociVersion"),
        ({"annotations": {"k": 1}}, "annotations.k"),
    ],
)
def test_state_invalid(changes, expected_path):
    problems = validate_state(state(**changes))

    assert [problem.path for problem in problems] == [expected_path]


def test_state_status_typo_suggests():
    problems = validate_state(state(status="runing"))

    assert problems[0].fix == 'did you mean "running"?'


def test_features_valid():
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "poststop"],
        "mountOptions": ["ro", "rbind"],
        "linux": {
            "namespaces": ["pid", "network", "time"],
            "capabilities": ["CAP_CHOWN"],
            "cgroup": {"v1": True, "v2": True, "systemd": False},
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"], "operators": ["SCMP_CMP_EQ"], "archs": ["SCMP_ARCH_X86_64"]},
            "memoryPolicy": {"modes": ["MPOL_BIND"], "flags": ["MPOL_F_STATIC_NODES"]},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {"org.example.version": "0.1.0"},
    }

    assert validate_features(features) == []


def test_features_invalid():
    problems = validate_features({"ociVersionMin": "1.0.0", "linux": {"namespaces": ["net"]}})

    assert [problem.path for problem in problems] == ["linux.namespaces[0]", "ociVersionMax"]


# --- Start-up cost and generated code -------------------------------------------------------


def test_import_skips_jsonschema(bundle):
    write_config(bundle, busybox_config())
    script = (
        "import sys\n"
        "from navio_runtime.spec.validate import load_config, validate_config\n"
        f"validate_config(load_config({bundle!r}), {bundle!r})\n"
        "print(sorted(name for name in ('jsonschema', 'fastjsonschema', 'decimal') if name in sys.modules))\n"
    )

    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout

    assert output.strip() == "[]"


def test_generated_module_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-validator"), "--check"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr


def test_generated_module_standalone():
    text = (REPO / "navio_runtime" / "spec" / "_config_validator.py").read_text(encoding="utf-8")

    assert "from fastjsonschema" not in text
    assert "import fastjsonschema" not in text
    assert "Decimal" not in text


def test_relative_destination_and_device_outside_dev_accepted(tmp_path):
    """runtime-spec 1.2+ allows both; runc 1.1.5 accepts them too."""
    from navio_runtime.spec.validate import find_problems

    (tmp_path / "rootfs").mkdir()
    config = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/"},
        "mounts": [{"destination": "proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "devices": [{"type": "c", "path": "/etc/fuse", "major": 10, "minor": 229}],
        },
    }

    problems = find_problems(config, str(tmp_path))

    assert problems == []


def test_missing_bind_source_rejected(tmp_path):
    from navio_runtime.spec.semantics import host_path_problems

    (tmp_path / "rootfs").mkdir()
    config = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/"},
        "mounts": [{"destination": "/data", "type": "bind", "source": "/nonexistent/navio-dir",
                    "options": ["rbind"]}],
        "linux": {"namespaces": [{"type": "mount"}]},
    }

    problems = list(host_path_problems(config, str(tmp_path)))

    assert [problem.path for problem in problems] == ["mounts[0].source"]
    assert "does not exist on the host" in problems[0].message
