"""`update`: change the linux.resources of a live container and record them in its state.

The new values are written to the container's cgroup with Manager.update and
merged into the config stored in state.json, so later reads see them. As in
runc, a value of 0 for a field where 0 means "not set" leaves the current
value in place, and linux.resources.devices cannot be changed.
"""

import json
import re

from navio_runtime.errors import CgroupError, NavioError, StateError
from navio_runtime.state_store import CREATED, PAUSED, RUNNING, StateStore
from navio_runtime.log import get_logger

log = get_logger(__name__)

# Flag of `update` (without "--") -> (linux.resources section, key, kind of value).
# "bytes" accepts suffixes such as 100M or 1g and -1; "int" may be negative; "uint" may not.
FLAG_FIELDS = {
    "memory": ("memory", "limit", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"),
    "memory-swap": ("memory", "swap", "bytes"),
    "kernel-memory": ("memory", "kernel", "bytes"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "cpu-shares": ("cpu", "shares", "uint"),
    "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "uint"),
    "cpu-burst": ("cpu", "burst", "uint"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "uint"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu-idle": ("cpu", "idle", "int"),
    "cpuset-cpus": ("cpu", "cpus", "text"),
    "cpuset-mems": ("cpu", "mems", "text"),
    "pids-limit": ("pids", "limit", "int"),
    "blkio-weight": ("blockIO", "weight", "uint"),
}

# Fields where 0 (or "") means "not set" in runc and in the cgroup drivers.
_ZERO_MEANS_UNSET = {
    "memory": {"limit", "reservation", "swap", "kernel", "kernelTCP"},
    "cpu": {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"},
    "blockIO": {"weight", "leafWeight"},
}

# Fields that a driver computes together (memory+swap, cpu.max "quota period"),
# so updating one of them also passes the stored value of the others.
_RELATED_FIELDS = {
    "memory": ("limit", "swap", "checkBeforeUpdate"),
    "cpu": ("quota", "period", "burst"),
}

# Binary multiples, as in the memory flags of runc (go-units RAMInBytes).
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BYTES_PATTERN = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)


def parse_bytes(text, flag):
    """Return the byte count of a memory flag value such as "64M", "1g", "1.5GiB" or "-1" (no limit)."""
    value = str(text).strip()
    if value == "-1":
        return -1
    match = _BYTES_PATTERN.match(value)
    if match is None:
        raise CgroupError(f"invalid --{flag} {text!r}: expected a size in bytes such as 67108864, 64M or 1g, or -1")
    unit = (match.group(2) or "").lower()
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


def _parse_integer(text, flag, signed):
    try:
        value = int(str(text).strip())
    except ValueError:
        raise CgroupError(f"invalid --{flag} {text!r}: expected an integer") from None
    if value < 0 and not signed:
        raise CgroupError(f"invalid --{flag} {text!r}: expected an integer of 0 or more")
    return value


def resources_from_flags(flags):
    """Return the linux.resources object for `update` flags given as {"memory": "64M", "pids-limit": "5"}."""
    resources = {}
    for flag, text in flags.items():
        if flag not in FLAG_FIELDS:
            raise CgroupError(f"unknown update flag --{flag}")
        section, key, kind = FLAG_FIELDS[flag]
        if kind == "bytes":
            value = parse_bytes(text, flag)
        elif kind == "text":
            value = str(text)
        else:
            value = _parse_integer(text, flag, signed=kind == "int")
        if kind == "bytes" and key in ("kernel", "kernelTCP"):
            log.warning("--%s is ignored: the runtime sets no kernel memory limit, which Linux deprecated in 5.4", flag)
            continue
        resources.setdefault(section, {})[key] = value
    return resources


def load_resources(path, stdin=None):
    """Read a linux.resources JSON object from the file `path`, or from `stdin` when `path` is "-"."""
    source = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = stdin.read()
        else:
            with open(path, encoding="utf-8") as resources_file:
                text = resources_file.read()
    except OSError as error:
        raise NavioError(f"cannot read --resources {source}: {error.strerror}") from None
    try:
        resources = json.loads(text)
    except ValueError as error:
        raise NavioError(f"invalid JSON in --resources {source}: {error}") from None
    if not isinstance(resources, dict):
        raise NavioError(f"invalid --resources {source}: expected a linux.resources object, got {resources!r}")
    return resources


def update(container_id, resources, root=None):
    """Apply `resources` (a linux.resources object) to a created, running or paused container.

    Returns the merged linux.resources that state.json now records.
    Raises StateError for a stopped container and CgroupError when the
    kernel rejects a value, in which case state.json keeps the old values.
    NOTE: the files written before the rejected one keep their new values,
    so after a failed update the cgroup and state.json can differ.
    """
    from navio_runtime.container.ps import open_container_cgroup

    changes = _normalize(resources)
    store = StateStore(root) if root else StateStore()
    with store.lock(container_id):
        state = store.load(container_id)
        status = store.status(state)
        if status not in (CREATED, RUNNING, PAUSED):
            raise StateError(f"cannot update container {container_id}: its status is {status!r}")

        linux = state.config.setdefault("linux", {})
        current = linux.get("resources") or {}
        merged = _merge(current, changes)
        manager = open_container_cgroup(state)
        manager.update(_with_related_fields(changes, merged))

        linux["resources"] = merged
        store.save(state)
    log.info("updated the resources of container %s", container_id)
    return merged


def _normalize(resources):
    """Return a copy of `resources` without the devices list and without values that mean "not set"."""
    if not isinstance(resources, dict):
        raise CgroupError(f"invalid linux.resources {resources!r}: expected an object")
    result = {}
    for section, value in resources.items():
        if section == "devices":
            if value is not None:
                log.warning("linux.resources.devices is ignored: update cannot change the device rules of a container")
            continue
        if isinstance(value, dict) and section in _ZERO_MEANS_UNSET:
            unset_keys = _ZERO_MEANS_UNSET[section]
            value = {key: item for key, item in value.items() if not (key in unset_keys and item in (0, ""))}
            if not value:
                continue
        if value is None:
            continue
        result[section] = value
    return result


def _merge(current, changes):
    """Return `current` with the objects of `changes` merged in key by key; lists and other values replace."""
    merged = json.loads(json.dumps(current))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = json.loads(json.dumps(value))
    return merged


def _with_related_fields(changes, merged):
    """Return `changes` plus the stored values that the drivers need to write the changed fields correctly."""
    result = dict(changes)
    for section, keys in _RELATED_FIELDS.items():
        changed = changes.get(section)
        if not isinstance(changed, dict) or not any(key in changed for key in keys):
            continue
        combined = dict(changed)
        for key in keys:
            if key not in combined and merged.get(section, {}).get(key) is not None:
                combined[key] = merged[section][key]
        result[section] = combined
    return result
