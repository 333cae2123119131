"""cgroup v2 device access control through an eBPF program (see ebpf.py)."""

from navio_runtime.cgroups.device_rules import parse_rules
from navio_runtime.cgroups.v2 import ebpf


def apply(path, resources):
    """Replace the device filter of `path` with one built from linux.resources.devices.

    An absent or null devices list leaves the current filter in place. An
    empty list denies every device, because requests that match no rule are
    denied. The lifecycle appends `default_device_rules()` to the list.
    """
    entries = (resources or {}).get("devices")
    if entries is None:
        return
    ebpf.replace_device_filter(path, ebpf.assemble(parse_rules(entries)))


def stats(path):
    return {}
