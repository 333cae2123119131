"""Set the five capability sets of the container process.

The init calls `keep_capabilities_across_setuid` before it switches to the
container user and `apply_capabilities` after the switch. `apply_capabilities`
drops the bounding set first, then sets effective, permitted and inheritable
with one capset(2) call, then clears and raises the ambient set.

The runtime spec says that a capability the runtime cannot map or grant
must be logged as a warning and that the runtime SHOULD NOT fail. So an
unknown name, a capability above /proc/sys/kernel/cap_last_cap, or one this
process cannot grant (for example CAP_SYS_RESOURCE on a host whose bounding
set lacks it) is skipped with one warning per set.
"""


from navio_runtime.errors import ProcessAttributeError
from navio_runtime.linux import syscalls
from navio_runtime.log import get_logger

logger = get_logger(__name__)

# Capability numbers from <linux/capability.h>: the index in this tuple is the number.
CAPABILITY_NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAPABILITY_NUMBERS = {name: number for number, name in enumerate(CAPABILITY_NAMES)}

CAP_SETPCAP = CAPABILITY_NUMBERS["CAP_SETPCAP"]

SET_NAMES = ("bounding", "effective", "permitted", "inheritable", "ambient")

_last_capability = []


def last_capability():
    """Return the highest capability number that both the kernel and this module know.

    The kernel's number comes from /proc/sys/kernel/cap_last_cap. When that
    file cannot be read, PR_CAPBSET_READ finds it, because the kernel rejects
    numbers above its last capability with EINVAL. The result is cached.
    """
    if not _last_capability:
        known = len(CAPABILITY_NAMES) - 1
        try:
            with open("/proc/sys/kernel/cap_last_cap") as file:
                kernel_last = int(file.read())
        except (OSError, ValueError) as err:
            logger.debug("cannot read /proc/sys/kernel/cap_last_cap (%s); probing with PR_CAPBSET_READ", err)
            kernel_last = _probe_last_capability(known)
        _last_capability.append(min(kernel_last, known))
    return _last_capability[0]


def _probe_last_capability(highest):
    for number in range(highest, -1, -1):
        try:
            syscalls.prctl(syscalls.PR_CAPBSET_READ, number, target=f"PR_CAPBSET_READ {number}")
        except OSError:
            continue
        return number
    return -1


def mask_names(mask):
    """Return the capability names in a 64-bit mask, in number order."""
    return [CAPABILITY_NAMES[number] if number < len(CAPABILITY_NAMES) else f"capability {number}"
            for number in range(64) if mask >> number & 1]


# The init imports this module before pivot_root, so the number is read while the host's /proc is reachable.
last_capability()


def bounding_mask():
    """Return the calling thread's bounding set as a mask (PR_CAPBSET_READ for each capability)."""
    mask = 0
    for number in range(last_capability() + 1):
        if syscalls.prctl(syscalls.PR_CAPBSET_READ, number, target=f"PR_CAPBSET_READ {CAPABILITY_NAMES[number]}"):
            mask |= 1 << number
    return mask


def describe_missing(name):
    """Return a clause for error messages that states whether the calling process has capability `name`.

    For example "this process does not have CAP_SYS_RESOURCE (it is not in its bounding set)".
    """
    number = CAPABILITY_NUMBERS[name]
    effective, permitted, _ = syscalls.capget()
    if effective >> number & 1:
        return f"this process has {name}"
    if not bounding_mask() >> number & 1:
        return f"this process does not have {name} (it is not in its bounding set)"
    if permitted >> number & 1:
        return f"this process does not have {name} in its effective set"
    return f"this process does not have {name}"


def keep_capabilities_across_setuid():
    """Set PR_SET_KEEPCAPS, so the permitted set survives the switch from uid 0 to the container user.

    The kernel still clears the effective set at setuid, and resets the flag at execve.
    """
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1, target="PR_SET_KEEPCAPS")


class _SkippedCapabilities:
    """Capabilities left out of the requested sets, reported as one warning per capability and reason."""

    def __init__(self, host_bounding):
        self._host_bounding = host_bounding
        self._sets_by_entry = {}

    def add_names(self, set_name, names, reason):
        for name in names:
            self._sets_by_entry.setdefault((name, reason), []).append(set_name)

    def add_mask(self, set_name, mask, reason):
        """Record the capabilities in `mask`, giving those outside the host's bounding set that reason instead."""
        self.add_names(set_name, mask_names(mask & ~self._host_bounding), "not in the bounding set of this host")
        self.add_names(set_name, mask_names(mask & self._host_bounding), reason)

    def warn(self):
        for (name, reason), set_names in self._sets_by_entry.items():
            logger.warning("ignoring %s in process.capabilities (%s): %s", name, ", ".join(set_names), reason)


def _names_to_mask(set_name, names, skipped):
    mask = 0
    last = last_capability()
    for name in names or ():
        number = CAPABILITY_NUMBERS.get(name)
        if number is None or number > last:
            skipped.add_names(set_name, [name], "unknown to this runtime or to the kernel")
            continue
        mask |= 1 << number
    return mask


def apply_capabilities(caps):
    """Set the bounding, effective, permitted, inheritable and ambient sets of `process.capabilities`.

    `caps` maps set names to lists of "CAP_*" names. A missing set means an
    empty set, so {} drops every capability. None leaves the sets untouched.
    Capabilities that cannot be granted are skipped with a warning. Raises
    ProcessAttributeError when a capability must be dropped from the bounding
    set but the process lacks CAP_SETPCAP, because continuing would leave the
    container more privileged than its config requests.
    """
    if caps is None:
        return

    skipped = _SkippedCapabilities(bounding_mask())
    requested = {name: _names_to_mask(name, caps.get(name), skipped) for name in SET_NAMES}

    # After setuid with PR_SET_KEEPCAPS the effective set is empty, but
    # dropping from the bounding set needs CAP_SETPCAP in it.
    effective, permitted, inheritable = syscalls.capget()
    if permitted != effective:
        syscalls.capset(permitted, permitted, inheritable)
        effective = permitted

    try:
        _drop_bounding(requested["bounding"], effective, skipped)
        granted = _apply_process_sets(requested, effective, permitted, inheritable, skipped)
        _apply_ambient(requested["ambient"], granted, skipped)
    finally:
        skipped.warn()


def _drop_bounding(requested_bounding, effective, skipped):
    current = bounding_mask()
    skipped.add_mask("bounding", requested_bounding & ~current, "not in the bounding set of this process")

    to_drop = current & ~requested_bounding
    if to_drop and not effective >> CAP_SETPCAP & 1:
        raise ProcessAttributeError(
            f"cannot drop {', '.join(mask_names(to_drop))} from the bounding set: "
            "this process does not have CAP_SETPCAP in its effective set"
        )
    for number in range(last_capability() + 1):
        if to_drop >> number & 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number, target=f"PR_CAPBSET_DROP {CAPABILITY_NAMES[number]}")


def _apply_process_sets(requested, effective, permitted, inheritable, skipped):
    """Set effective, permitted and inheritable with capset and return the masks that were set.

    The kernel only lets permitted shrink, effective stay within the new
    permitted set, and inheritable grow within the old inheritable set plus
    the bounding set (plus the old permitted set without CAP_SETPCAP).
    """
    bounding = bounding_mask()
    new_permitted = requested["permitted"] & permitted
    new_effective = requested["effective"] & new_permitted
    inheritable_limit = inheritable | bounding
    if not effective >> CAP_SETPCAP & 1:
        inheritable_limit &= inheritable | permitted
    new_inheritable = requested["inheritable"] & inheritable_limit

    skipped.add_mask("permitted", requested["permitted"] & ~new_permitted, "not in the permitted set of this process")
    skipped.add_mask("effective", requested["effective"] & ~new_effective, "an effective capability must also be permitted")
    skipped.add_mask(
        "inheritable",
        requested["inheritable"] & ~new_inheritable,
        "an inheritable capability must be in the bounding set",
    )
    syscalls.capset(new_effective, new_permitted, new_inheritable)
    return {"permitted": new_permitted, "inheritable": new_inheritable}


def _apply_ambient(requested_ambient, granted, skipped):
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL, target="PR_CAP_AMBIENT_CLEAR_ALL")
    except OSError as err:
        skipped.add_mask("ambient", requested_ambient, f"this kernel has no ambient capabilities ({err})")
        return

    # The kernel raises an ambient capability only if it is both permitted and inheritable.
    allowed = requested_ambient & granted["permitted"] & granted["inheritable"]
    skipped.add_mask(
        "ambient",
        requested_ambient & ~allowed,
        "an ambient capability must also be permitted and inheritable",
    )
    for number in range(last_capability() + 1):
        if allowed >> number & 1:
            syscalls.prctl(
                syscalls.PR_CAP_AMBIENT,
                syscalls.PR_CAP_AMBIENT_RAISE,
                number,
                target=f"PR_CAP_AMBIENT_RAISE {CAPABILITY_NAMES[number]}",
            )


def merge_exec_capabilities(base_caps, extra_caps):
    """Return `base_caps` with `extra_caps` added to the bounding, effective and permitted sets.

    This is the capability set of `exec --cap`. The extra capabilities never go
    to the inheritable or ambient sets. runc before 1.1.2 added them to the
    inheritable set, so a program with inheritable file capabilities could
    raise them to permitted at execve (CVE-2022-29162).
    """
    merged = {name: list((base_caps or {}).get(name) or ()) for name in SET_NAMES}
    for name in ("bounding", "effective", "permitted"):
        for capability in extra_caps or ():
            if capability not in merged[name]:
                merged[name].append(capability)
    return merged


def apply_capabilities_for_exec(base_caps, extra_caps):
    """Apply `process.capabilities` plus the `exec --cap` capabilities, merged by merge_exec_capabilities."""
    apply_capabilities(merge_exec_capabilities(base_caps, extra_caps))
