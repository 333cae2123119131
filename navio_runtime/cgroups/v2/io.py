"""cgroup v2 io controller: io.bfq.weight or io.weight, and io.max.

OCI blockIO weights use the v1 range 10..1000. io.bfq.weight takes that
value as is, and io.weight (1..10000) gets it converted with runc's formula.
The default weight goes to io.bfq.weight whenever the bfq scheduler is
loaded, as in runc. A per-device weight goes to io.bfq.weight only for a
device that uses bfq, and to io.weight otherwise, which takes effect only
where the io.cost controller is enabled for that device.
"""

import errno
import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import device_number, entries, integer, section, throttle_rates
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

WHERE = "linux.resources.blockIO"

# OCI throttle list -> key in an io.max line.
THROTTLE_KEYS = {
    "throttleReadBpsDevice": "rbps",
    "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops",
    "throttleWriteIOPSDevice": "wiops",
}


def blkio_weight_to_io_weight(weight):
    """Convert a blkio weight (10..1000) to an io.weight value (1..10000)."""
    return 1 + (weight - 10) * 9999 // 990


def _uses_bfq(device):
    scheduler = files.read_optional(f"/sys/dev/block/{device}/queue/scheduler", "")
    return "[bfq]" in scheduler


def _write_device_weight(path, device, weight, use_bfq, where):
    if use_bfq and _uses_bfq(device):
        files.write(os.path.join(path, "io.bfq.weight"), f"{device} {weight}")
        return
    weight_file = os.path.join(path, "io.weight")
    try:
        files.write(weight_file, f"{device} {blkio_weight_to_io_weight(weight)}")
    except files.CgroupFileError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        raise CgroupError(
            f"cannot apply {where}.weight {weight}: {err}. Device {device} uses neither the bfq scheduler "
            f"nor the io.cost controller (enable it with \"{device} enable=1\" in the root's io.cost.qos)"
        ) from None


def io_max_lines(resources):
    """Return the io.max lines for the throttle lists, one line per device, in first-seen order.

    A rate of 0 removes that limit ("max"), as writing 0 does on cgroup v1.
    """
    limits = {}
    for list_name, device, rate in throttle_rates(resources):
        limits.setdefault(device, {})[THROTTLE_KEYS[list_name]] = str(rate) if rate else "max"
    return [f"{device} " + " ".join(f"{key}={value}" for key, value in values.items()) for device, values in limits.items()]


def requested(resources):
    """Return True when `resources` sets a blockIO field."""
    return bool(section(resources, "blockIO"))


def apply(path, resources):
    block_io = section(resources, "blockIO")
    if not block_io:
        return
    bfq_file = os.path.join(path, "io.bfq.weight")
    use_bfq = os.path.exists(bfq_file)
    weight_file = bfq_file if use_bfq else os.path.join(path, "io.weight")

    if block_io.get("leafWeight") is not None:
        log.warning("%s.leafWeight is ignored: cgroup v2 has no leaf weight", WHERE)

    weight = integer(block_io, "weight", WHERE, minimum=10, maximum=1000)
    if weight is not None:
        files.write(weight_file, str(weight if use_bfq else blkio_weight_to_io_weight(weight)))

    for index, entry in enumerate(entries(resources, "blockIO", "weightDevice")):
        where = f"{WHERE}.weightDevice[{index}]"
        device = device_number(entry, where)
        if entry.get("leafWeight") is not None:
            log.warning("%s.leafWeight is ignored: cgroup v2 has no leaf weight", where)
        device_weight = integer(entry, "weight", where, minimum=10, maximum=1000)
        if device_weight is not None:
            _write_device_weight(path, device, device_weight, use_bfq, where)

    for line in io_max_lines(resources):
        files.write(os.path.join(path, "io.max"), line)


def stats(path):
    service_bytes = []
    serviced = []
    for device, values in files.read_nested_keyed(os.path.join(path, "io.stat")).items():
        major, _, minor = device.partition(":")
        for key, operation, target in (
            ("rbytes", "Read", service_bytes),
            ("wbytes", "Write", service_bytes),
            ("rios", "Read", serviced),
            ("wios", "Write", serviced),
        ):
            target.append({"major": int(major), "minor": int(minor), "op": operation, "value": values.get(key, 0)})
    return {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}
