"""The plan that `create` carries out, built from configs without root and without touching the host."""

import copy
import json
import os

import pytest

from navio_runtime.errors import SpecError
from navio_runtime.plan import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
    build_plan,
    format_plan,
    parse_mount_options,
)
from navio_runtime.spec.model import spec_from_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX_CONFIG = os.path.join(REPO, "bundles", "busybox", "config.json")
BUNDLE = "/bundles/example"

STAGES = ["runtime", "namespaces", "rootfs", "container", "process"]


@pytest.fixture
def config():
    """Return a fresh copy of the busybox config.json."""
    with open(BUSYBOX_CONFIG) as config_file:
        return copy.deepcopy(json.load(config_file))


def plan_of(config, **options):
    return build_plan(spec_from_dict(config), BUNDLE, **options)


def actions(operations, stage=None):
    return [operation.action for operation in operations if stage is None or operation.stage == stage]


def first(operations, action, **matching):
    """Return the first operation with `action` whose args contain `matching`. Fail if there is none."""
    for operation in operations:
        if operation.action == action and all(operation.args.get(key) == value for key, value in matching.items()):
            return operation
    raise AssertionError(f"no {action} operation with {matching} in {actions(operations)}")


def position(operations, action, **matching):
    return operations.index(first(operations, action, **matching))


# ---------------------------------------------------------------------------
# Overall order
# ---------------------------------------------------------------------------


def test_stages_in_order(config):
    stages = [operation.stage for operation in plan_of(config)]

    assert sorted(set(stages), key=stages.index) == STAGES
    assert stages == sorted(stages, key=STAGES.index)


def test_plan_ends_with_exec(config):
    operations = plan_of(config)

    assert operations[-1].action == "exec"
    assert operations[-1].args["args"] == config["process"]["args"]


def test_runtime_stage(config):
    operations = plan_of(config)

    assert actions(operations, "runtime") == ["cgroup-create", "cgroup-apply", "cgroup-join"]
    assert operations[0].args["path"] == "(default)"


def test_cgroups_path_in_plan(config):
    config["linux"]["cgroupsPath"] = "/custom/path"

    assert plan_of(config)[0].args["path"] == "/custom/path"


def test_plan_is_deterministic(config):
    assert plan_of(config) == plan_of(copy.deepcopy(config))


# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------


def test_unshare_all_then_fork(config):
    operations = [operation for operation in plan_of(config) if operation.stage == "namespaces"]

    assert [operation.action for operation in operations] == ["unshare", "fork-init"]
    assert operations[0].args["types"] == ["mount", "uts", "ipc", "network", "cgroup", "pid"]
    assert operations[1].args["pid_namespace"] is True


def test_user_namespace_first_with_maps(config):
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]

    operations = [operation for operation in plan_of(config) if operation.stage == "namespaces"]

    assert [operation.action for operation in operations] == ["unshare", "write-id-maps", "unshare", "fork-init"]
    assert operations[0].args["types"] == ["user"]
    assert operations[1].args["uid_mappings"] == ["0:100000:65536"]
    assert operations[1].args["gid_mappings"] == ["0:200000:1000"]
    assert "user" not in operations[2].args["types"]


def test_joined_namespaces_before_unshare(config):
    config["linux"]["namespaces"] = [
        {"type": "pid"},
        {"type": "network", "path": "/proc/42/ns/net"},
        {"type": "mount"},
        {"type": "user", "path": "/proc/42/ns/user"},
    ]

    operations = [operation for operation in plan_of(config) if operation.stage == "namespaces"]

    assert [operation.action for operation in operations] == ["setns", "setns", "unshare", "fork-init"]
    # The user namespace is joined first, so that it owns the others.
    assert operations[0].args == {"type": "user", "path": "/proc/42/ns/user"}
    assert operations[1].args == {"type": "network", "path": "/proc/42/ns/net"}
    assert operations[2].args["types"] == ["mount", "pid"]


def test_no_pid_namespace(config):
    config["linux"]["namespaces"] = [entry for entry in config["linux"]["namespaces"] if entry["type"] != "pid"]

    assert first(plan_of(config), "fork-init").args["pid_namespace"] is False


def test_time_offsets(config):
    config["linux"]["namespaces"].append({"type": "time"})
    config["linux"]["timeOffsets"] = {"monotonic": {"secs": 10}}

    operations = plan_of(config)

    assert position(operations, "unshare") < position(operations, "set-time-offsets")
    assert position(operations, "set-time-offsets") < position(operations, "fork-init")


# ---------------------------------------------------------------------------
# Root filesystem
# ---------------------------------------------------------------------------


def test_propagation_then_bind_rootfs(config):
    operations = plan_of(config)
    rootfs = actions(operations, "rootfs")

    assert rootfs[:2] == ["set-propagation", "bind-rootfs"]
    assert operations[position(operations, "set-propagation")].args["flags"] == MS_PRIVATE | MS_REC


@pytest.mark.parametrize("value, flags", [
    ("private", MS_PRIVATE | MS_REC),
    ("rslave", MS_SLAVE | MS_REC),
    ("shared", MS_SHARED | MS_REC),
])
def test_rootfs_propagation_flags(config, value, flags):
    config["linux"]["rootfsPropagation"] = value

    assert first(plan_of(config), "set-propagation").args["flags"] == flags


def test_unknown_propagation_rejected(config):
    config["linux"]["rootfsPropagation"] = "sideways"

    with pytest.raises(SpecError, match="rootfsPropagation"):
        plan_of(config)


@pytest.mark.parametrize("root_path", ["rootfs", "./rootfs", "rootfs/"])
def test_relative_rootfs_resolved(config, root_path):
    config["root"]["path"] = root_path

    assert first(plan_of(config), "bind-rootfs").args["rootfs"] == os.path.join(BUNDLE, "rootfs")


def test_absolute_rootfs_kept(config):
    config["root"]["path"] = "/images/busybox"

    assert first(plan_of(config), "bind-rootfs").args["rootfs"] == "/images/busybox"


def test_mounts_in_config_order(config):
    operations = plan_of(config)

    destinations = [operation.args["destination"] for operation in operations
                    if operation.action in ("mount", "mount-cgroup")]
    assert destinations == [mount["destination"] for mount in config["mounts"]]


def test_cgroup_mount_action(config):
    operation = first(plan_of(config), "mount-cgroup")

    assert operation.args["destination"] == "/sys/fs/cgroup"
    assert operation.args["flags"] & MS_RDONLY


def test_mount_flags_and_data(config):
    operation = first(plan_of(config), "mount", destination="/dev/shm")

    assert operation.args["type"] == "tmpfs"
    assert operation.args["flags"] == MS_NOSUID | MS_NOEXEC | MS_NODEV
    assert operation.args["data"] == "mode=1777,size=65536k"
    assert operation.args["bind"] is False
    assert operation.args["remount_flags"] == 0


def test_bind_mount_remounts_flags(config):
    config["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv/data",
                             "options": ["rbind", "ro", "nosuid"]})

    operation = first(plan_of(config), "mount", destination="/data")

    assert operation.args["bind"] is True
    assert operation.args["type"] == ""
    assert operation.args["flags"] & (MS_BIND | MS_REC) == MS_BIND | MS_REC
    assert operation.args["remount_flags"] == MS_RDONLY | MS_NOSUID


def test_bind_option_without_type(config):
    config["mounts"].append({"destination": "/data", "source": "/srv/data", "options": ["bind"]})

    operation = first(plan_of(config), "mount", destination="/data")

    assert operation.args["bind"] is True
    assert operation.args["remount_flags"] == 0


def test_mount_propagation_option(config):
    config["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv/data",
                             "options": ["rbind", "rslave"]})

    assert first(plan_of(config), "mount", destination="/data").args["propagation"] == [MS_SLAVE | MS_REC]


def test_default_devices_and_links(config):
    operations = plan_of(config)

    devices = [operation.args["path"] for operation in operations if operation.action == "mknod"]
    links = {operation.args["path"]: operation.args["target"] for operation in operations
             if operation.action == "symlink"}
    assert devices == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    assert links == {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
                     "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}
    assert "ptmx-symlink" in actions(operations)
    assert first(operations, "mkdir", path="/dev/shm").args["mode"] == 0o1777


def test_devices_after_dev_mount(config):
    operations = plan_of(config)

    assert position(operations, "mount", destination="/dev") < position(operations, "mknod", path="/dev/null")
    assert position(operations, "mount", destination="/dev/pts") < position(operations, "ptmx-symlink")


def test_bind_dev_skips_defaults(config):
    config["mounts"][1] = {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}

    operations = plan_of(config)

    assert "mknod" not in actions(operations)
    assert "symlink" not in actions(operations)


def test_config_device_overrides_default(config):
    config["linux"]["devices"] = [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5, "gid": 6},
    ]

    nodes = [operation for operation in plan_of(config) if operation.action == "mknod"
             and operation.args["path"] == "/dev/null"]

    assert len(nodes) == 1
    assert nodes[0].args["mode"] == 0o600
    assert (nodes[0].args["uid"], nodes[0].args["gid"]) == (5, 6)


def test_config_device_defaults(config):
    config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]

    operation = first(plan_of(config), "mknod", path="/dev/fuse")

    assert operation.args["mode"] == 0o666
    assert (operation.args["uid"], operation.args["gid"]) == (0, 0)


def test_cwd_created_before_pivot(config):
    config["process"]["cwd"] = "/work/dir"

    operations = plan_of(config)

    assert position(operations, "mkdir-cwd", path="/work/dir") < position(operations, "pivot-root")


def test_pivot_root_is_last_rootfs_step(config):
    assert actions(plan_of(config), "rootfs")[-1] == "pivot-root"


def test_no_pivot_uses_chroot(config):
    operations = plan_of(config, no_pivot=True)

    assert "pivot-root" not in actions(operations)
    assert actions(operations, "rootfs")[-1] == "chroot"


def test_terminal_adds_console(config):
    config["process"]["terminal"] = True

    operations = plan_of(config)

    assert position(operations, "console") < position(operations, "pivot-root")


def test_create_hooks_before_pivot(config):
    config["hooks"] = {"createContainer": [{"path": "/bin/true"}], "prestart": [{"path": "/bin/true"}]}

    operation = first(plan_of(config), "run-create-hooks")

    assert operation.args == {"prestart": 1, "create_runtime": 0, "create_container": 1}
    assert actions(plan_of(config), "rootfs")[-2:] == ["run-create-hooks", "pivot-root"]


# ---------------------------------------------------------------------------
# Inside the new root
# ---------------------------------------------------------------------------


def test_container_stage_order(config):
    config["domainname"] = "example.test"
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"}

    stage = actions(plan_of(config), "container")

    # Sysctls come before readonlyPaths, which usually include /proc/sys.
    readonly = ["readonly-path"] * len(config["linux"]["readonlyPaths"])
    masked = ["mask-path"] * len(config["linux"]["maskedPaths"])
    expected = ["sethostname", "setdomainname", "sysctl", "sysctl", *readonly, *masked, "remount-root-readonly"]
    assert stage == expected


def test_sysctl_sorted(config):
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"}

    keys = [operation.args["key"] for operation in plan_of(config) if operation.action == "sysctl"]

    assert keys == ["kernel.msgmax", "net.ipv4.ip_forward"]


def test_writable_root_not_remounted(config):
    config["root"]["readonly"] = False

    assert "remount-root-readonly" not in actions(plan_of(config))


def test_hostname_needs_uts_namespace(config):
    config["linux"]["namespaces"] = [entry for entry in config["linux"]["namespaces"] if entry["type"] != "uts"]

    assert "sethostname" not in actions(plan_of(config))


# ---------------------------------------------------------------------------
# Process
# ---------------------------------------------------------------------------


def test_process_stage_order(config):
    stage = actions(plan_of(config), "process")

    assert stage == ["set-rlimits", "set-user", "set-umask", "set-capabilities", "set-no-new-privileges", "chdir",
                     "wait-for-start", "exec"]


def test_user_and_umask(config):
    config["process"]["user"] = {"uid": 1000, "gid": 1001, "umask": 0o027, "additionalGids": [5, 6]}

    operations = plan_of(config)

    assert first(operations, "set-user").args == {"uid": 1000, "gid": 1001, "additional_gids": [5, 6]}
    assert first(operations, "set-umask").args == {"umask": "0027"}
    assert position(operations, "set-user") < position(operations, "set-umask")


def test_seccomp_early_without_no_new_privileges(config):
    config["process"]["noNewPrivileges"] = False
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}

    operations = plan_of(config)

    assert position(operations, "load-seccomp") < position(operations, "set-user")


def test_seccomp_late_with_no_new_privileges(config):
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}

    operations = plan_of(config)

    assert position(operations, "wait-for-start") < position(operations, "load-seccomp")
    assert position(operations, "load-seccomp") < position(operations, "exec")


def test_exec_counts_env(config):
    assert plan_of(config)[-1].args["env_count"] == len(config["process"]["env"])


# ---------------------------------------------------------------------------
# Mount options and the text form
# ---------------------------------------------------------------------------


def test_options_last_wins():
    parsed = parse_mount_options(["ro", "rw", "nosuid", "suid", "nodev"])

    assert parsed.flags == MS_NODEV
    assert parsed.clear_flags & MS_RDONLY
    assert parsed.clear_flags & MS_NOSUID


def test_options_split_by_kind():
    parsed = parse_mount_options(["rbind", "rprivate", "rro", "size=1m", "tmpcopyup"])

    assert parsed.flags == MS_BIND | MS_REC
    assert parsed.propagation == [MS_PRIVATE | MS_REC]
    assert parsed.recursive_attributes == ["rro"]
    assert parsed.data == ["size=1m"]


def test_empty_option_rejected():
    with pytest.raises(SpecError, match=r"mounts\[3\]"):
        parse_mount_options(["ro", ""], where="mounts[3]")


def test_format_plan_text(config):
    text = format_plan(plan_of(config))

    lines = text.splitlines()
    assert [line[:-1] for line in lines if not line.startswith("  ")] == STAGES
    assert "  bind-rootfs rootfs=/bundles/example/rootfs" in lines


def test_describe_skips_empty_args(config):
    operation = first(plan_of(config), "mount", destination="/proc")

    assert operation.describe() == "mount index=0 source=proc destination=/proc type=proc bind=False"


def test_describe_names_mount_flags(config):
    operation = first(plan_of(config), "mount", destination="/sys")

    assert "flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC" in operation.describe()


def test_to_dict_round_trips_json(config):
    documents = [operation.to_dict() for operation in plan_of(config)]

    assert json.loads(json.dumps(documents)) == documents


def test_device_rules_without_resources(config):
    del config["linux"]["resources"]

    assert "cgroup-apply" in actions(plan_of(config), "runtime")


def test_mount_label_with_selinux(config):
    from navio_runtime.plan import PlanBuilder
    from navio_runtime.spec.model import spec_from_dict

    config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    spec = spec_from_dict(config)

    with_selinux = PlanBuilder(spec, "/bundle", selinux_enabled=True).build()
    without_selinux = PlanBuilder(spec, "/bundle", selinux_enabled=False).build()

    tmpfs_data = first(with_selinux, "mount", destination="/dev").args["data"]
    proc_data = first(with_selinux, "mount", destination="/proc").args["data"]
    assert 'context="system_u:object_r:container_file_t:s0:c1,c2"' in tmpfs_data
    assert "context=" not in proc_data
    assert "context=" not in first(without_selinux, "mount", destination="/dev").args["data"]
