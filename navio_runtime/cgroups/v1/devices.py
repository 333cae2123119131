"""cgroup v1 devices controller: devices.deny and devices.allow.

apply() first denies everything ("a" to devices.deny), then writes the
rules in order, so the result matches the v2 filter: the last matching
rule wins and anything unmatched is denied.
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.device_rules import parse_rules


def requested(resources):
    """Return True when `resources` has a devices list (an empty list denies every device)."""
    return (resources or {}).get("devices") is not None


def entries_for(rule):
    """Return the devices.allow / devices.deny lines for one DeviceRule.

    The kernel reads any line of type "a" as "all devices, all access", so
    a rule of type "a" with numbers or partial access becomes a "c" and a
    "b" line.
    """
    if rule.is_wildcard():
        return ["a"]
    if rule.type == "a":
        return [rule.v1_entry("c"), rule.v1_entry("b")]
    return [rule.v1_entry()]


def apply(path, resources):
    """Write linux.resources.devices. An absent or null list leaves the cgroup alone.

    NOTE: the cgroup denies every device between the first write and the
    last, so an update briefly blocks device access of running processes.
    """
    entries = (resources or {}).get("devices")
    if entries is None:
        return
    rules = parse_rules(entries)
    files.write(os.path.join(path, "devices.deny"), "a")
    for rule in rules:
        target = os.path.join(path, "devices.allow" if rule.allow else "devices.deny")
        for line in entries_for(rule):
            files.write(target, line)


def stats(path):
    return {}
