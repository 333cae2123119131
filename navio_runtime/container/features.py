"""`features`: the OCI features document (features.md and features-linux.md of runtime-spec 1.3).

The spec fields state what this runtime implements, as the spec defines them:
for example cgroup.v1 and cgroup.v2 state which cgroup drivers exist, whatever
the host mounts. Facts about this host (its cgroup layout and controllers,
its enabled security modules) go into `annotations` under ANNOTATION_PREFIX.
"""

import os

from navio_runtime import OCI_VERSION, __version__
from navio_runtime.init.memory_policy import FLAGS as MEMORY_POLICY_FLAGS
from navio_runtime.init.memory_policy import MODES as MEMORY_POLICY_MODES
from navio_runtime.linux.namespaces import NAMESPACE_PROC_NAMES

# Oldest runtime-spec version whose configs this runtime accepts.
OCI_VERSION_MIN = "1.0.0"

ANNOTATION_PREFIX = "org.navio-runtime."

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

def features_document():
    """Return the features document of this runtime on this host."""
    from navio_runtime.init.capabilities import CAPABILITY_NAMES

    annotations = {f"{ANNOTATION_PREFIX}version": __version__}
    annotations.update(_host_cgroup_annotations())
    annotations.update(_host_security_annotations())
    seccomp, api_level = _seccomp_features()
    if api_level is not None:
        annotations[f"{ANNOTATION_PREFIX}libseccomp.api-level"] = str(api_level)

    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": host_namespaces(),
            "capabilities": list(CAPABILITY_NAMES),
            "cgroup": {
                "v1": True,
                "v2": True,
                # NOTE: --systemd-cgroup places the container at the systemd path but never
                # talks to systemd over D-Bus, so systemd does not manage the scope.
                "systemd": False,
                "systemdUser": False,
                "rdma": True,
            },
            "seccomp": seccomp,
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "memoryPolicy": {"modes": list(MEMORY_POLICY_MODES), "flags": list(MEMORY_POLICY_FLAGS)},
            # plan.py accepts the idmap and ridmap mount options but does not create idmapped mounts.
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": annotations,
    }


def mount_options():
    """Return the sorted mount options that plan.py turns into flags, propagation or recursive attributes.

    Filesystem data options (mode=, size=...) are passed to mount(2) as they
    are, so they are not listed. tmpcopyup, idmap and ridmap are accepted but
    ignored, so they are left out. The recursive options (rro, rnosuid, ...)
    need mount_setattr(2), which Linux 5.12 added.
    """
    from navio_runtime.plan import MOUNT_FLAG_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_ATTRIBUTE_OPTIONS

    return sorted(set(MOUNT_FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | set(RECURSIVE_ATTRIBUTE_OPTIONS))


def host_namespaces():
    """Return the namespace types that the runtime creates and this host's kernel offers."""
    return sorted(name for name, file_name in NAMESPACE_PROC_NAMES.items() if os.path.exists(f"/proc/self/ns/{file_name}"))


def _seccomp_features():
    """Return the seccomp object of the document and libseccomp's API level (None without the binding)."""
    try:
        from navio_runtime.init import seccomp
    except ImportError:
        # Without libseccomp's Python binding the runtime rejects every linux.seccomp.
        return {"enabled": False}, None

    binding = seccomp._libseccomp
    actions = list(seccomp.ACTION_NAMES)
    if binding.get_api() < 6:
        actions.remove("SCMP_ACT_NOTIFY")
    archs = sorted(
        f"{seccomp.ARCH_PREFIX}{name}" for name in dir(binding.Arch) if name.isupper() and name != "NATIVE"
    )
    features = {
        "enabled": True,
        "actions": sorted(actions),
        "operators": sorted(seccomp.OPERATORS),
        "archs": archs,
        "knownFlags": sorted(seccomp.FLAG_ATTRIBUTES),
        "supportedFlags": _supported_seccomp_flags(seccomp, binding),
    }
    return features, binding.get_api()


def _supported_seccomp_flags(seccomp, binding):
    """Return the filter flags that libseccomp accepts on this kernel.

    libseccomp checks the kernel when such an attribute is set, so a filter
    that is never loaded is enough for the test.
    """
    supported = []
    probe = binding.SyscallFilter(binding.ALLOW)
    for flag, attribute_name in sorted(seccomp.FLAG_ATTRIBUTES.items()):
        attribute = getattr(binding.Attr, attribute_name, None)
        if attribute is None:
            continue
        try:
            probe.set_attr(attribute, 1)
        except (RuntimeError, ValueError, OSError):
            continue
        supported.append(flag)
    return supported


def _host_cgroup_annotations():
    """Return annotations with the host's cgroup layout and the controllers of each hierarchy."""
    from navio_runtime.cgroups import mode
    from navio_runtime.errors import CgroupError

    try:
        layout = mode.detect_mode()
    except CgroupError:
        return {f"{ANNOTATION_PREFIX}cgroup.mode": "none"}

    annotations = {f"{ANNOTATION_PREFIX}cgroup.mode": layout}
    if layout != mode.UNIFIED:
        controllers = sorted(name for name in mode.v1_controller_mounts() if not name.startswith("name="))
        annotations[f"{ANNOTATION_PREFIX}cgroup.v1.controllers"] = ",".join(controllers)
    unified = mode.unified_mount()
    if unified:
        try:
            with open(os.path.join(unified, "cgroup.controllers")) as controllers_file:
                controllers = sorted(controllers_file.read().split())
        except OSError:
            controllers = []
        annotations[f"{ANNOTATION_PREFIX}cgroup.v2.controllers"] = ",".join(controllers)
    return annotations


def _host_security_annotations():
    from navio_runtime.init.process_attrs import detect_security_modules

    enabled = sorted(name for name, is_enabled in detect_security_modules().items() if is_enabled)
    return {f"{ANNOTATION_PREFIX}host.security-modules": ",".join(enabled) or "none"}
