"""linux.resources.unified: cgroup v2 files written as given, after every other controller."""

import os

from navio_runtime.cgroups import files
from navio_runtime.errors import CgroupError

WHERE = "linux.resources.unified"

# Core files that the runtime itself manages, so a config must not write them.
RUNTIME_OWNED_FILES = {
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.type",
    "cgroup.freeze",
    "cgroup.kill",
    "cgroup.controllers",
    "cgroup.events",
    "cgroup.stat",
}


def _controller_of(key):
    controller, dot, rest = key.partition(".")
    if not dot or not controller or not rest:
        raise CgroupError(f"invalid {WHERE} key {key!r}: expected <controller>.<file>, such as \"memory.high\"")
    return controller


def validate(path, unified):
    """Raise CgroupError for a key that is unsafe, owned by the runtime or needs a disabled controller."""
    if not isinstance(unified, dict):
        raise CgroupError(f"invalid {WHERE} {unified!r}: expected an object of file name to value")
    enabled = set(files.read_optional(os.path.join(path, "cgroup.controllers"), "").split())
    for key, value in unified.items():
        if not isinstance(key, str) or "/" in key or ".." in key or key in ("", "."):
            raise CgroupError(f"invalid {WHERE} key {key!r}: it must be a file name without \"/\" or \"..\"")
        if key in RUNTIME_OWNED_FILES:
            raise CgroupError(f"invalid {WHERE} key {key!r}: the runtime manages this file itself")
        if not isinstance(value, str):
            raise CgroupError(f"invalid {WHERE}[{key!r}] {value!r}: expected a string")
        controller = _controller_of(key)
        # Pressure (PSI) files belong to the cgroup core, not to the controller they are named after.
        if controller != "cgroup" and not key.endswith(".pressure") and controller not in enabled:
            raise CgroupError(
                f"cannot apply {WHERE} key {key!r}: the {controller} controller is not enabled for {path} "
                f"(enabled: {' '.join(sorted(enabled)) or 'none'})"
            )
        if not os.path.exists(os.path.join(path, key)):
            raise CgroupError(f"cannot apply {WHERE} key {key!r}: {os.path.join(path, key)} does not exist")


def requested_controllers(resources):
    """Return the controllers that the unified keys of `resources` refer to."""
    unified = (resources or {}).get("unified") or {}
    return {key.partition(".")[0] for key in unified if isinstance(key, str)} - {"cgroup"}


def apply(path, resources):
    unified = (resources or {}).get("unified")
    if not unified:
        return
    validate(path, unified)
    for key, value in unified.items():
        files.write_lines(os.path.join(path, key), value)


def stats(path):
    return {}
