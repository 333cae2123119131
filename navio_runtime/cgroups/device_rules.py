"""linux.resources.devices rules, shared by the v1 devices controller and the v2 eBPF filter."""

from collections import namedtuple

from navio_runtime.errors import CgroupError

WILDCARD = -1


# collections.namedtuple rather than typing.NamedTuple: importing typing costs
# about 2 ms, and every container creation loads this module.
class DeviceRule(namedtuple("DeviceRule", "allow type major minor access")):
    """One validated device cgroup rule.

    `type` is "a", "c" or "b". `major` and `minor` are WILDCARD for "all",
    and `access` is a subset of "rwm" in that order.
    """

    __slots__ = ()

    def is_wildcard(self):
        """Return True for a rule that matches every device with every access."""
        return self.type == "a" and self.major == WILDCARD and self.minor == WILDCARD and self.access == "rwm"

    def v1_entry(self, device_type=None):
        """Format the rule as a devices.allow / devices.deny line ("c 1:3 rwm")."""
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{device_type or self.type} {major}:{minor} {self.access}"


# Devices every container may use, whatever the rules in
# linux.resources.devices are. They are the OCI runtime-spec "Default Devices"
# plus /dev/console and the pts devices: null 1:3, zero 1:5, full 1:7,
# random 1:8, urandom 1:9, tty 5:0, console 5:1, ptmx 5:2 and the devpts
# slaves 136:*.
_DEFAULT_ALLOWED = (
    ("c", 1, 3),
    ("c", 1, 5),
    ("c", 1, 7),
    ("c", 1, 8),
    ("c", 1, 9),
    ("c", 5, 0),
    ("c", 5, 1),
    ("c", 5, 2),
    ("c", 136, WILDCARD),
)


def default_device_rules():
    """Return the default allow list as linux.resources.devices entries.

    The lifecycle appends these after the configured rules, because the last
    matching rule wins, so the defaults stay usable even after a deny-all.
    """
    rules = []
    for device_type, major, minor in _DEFAULT_ALLOWED:
        rule = {"allow": True, "type": device_type, "major": major, "access": "rwm"}
        if minor != WILDCARD:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _number(entry, key, index):
    value = entry.get(key)
    if value is None or value == WILDCARD:
        return WILDCARD
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise CgroupError(f"invalid linux.resources.devices[{index}].{key} {value!r}: expected 0..4294967295 or -1")
    return value


def parse_rules(entries):
    """Validate linux.resources.devices entries and return DeviceRule tuples in order.

    An unset type means "a" and an unset or empty access means "rwm", as the
    runtime-spec maps unset values to "all".
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise CgroupError(f"invalid linux.resources.devices {entries!r}: expected a list")
    rules = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("allow"), bool):
            raise CgroupError(f"invalid linux.resources.devices[{index}] {entry!r}: \"allow\" (a boolean) is required")
        device_type = entry.get("type") or "a"
        if device_type not in ("a", "c", "b"):
            raise CgroupError(
                f"invalid linux.resources.devices[{index}].type {device_type!r}: expected \"a\", \"c\" or \"b\""
            )
        access = entry.get("access") or "rwm"
        if not isinstance(access, str) or not set(access) <= set("rwm"):
            raise CgroupError(
                f"invalid linux.resources.devices[{index}].access {access!r}: expected letters from \"rwm\""
            )
        normalized = "".join(letter for letter in "rwm" if letter in access)
        rules.append(
            DeviceRule(entry["allow"], device_type, _number(entry, "major", index), _number(entry, "minor", index), normalized)
        )
    return rules
