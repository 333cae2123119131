"""cgroup v1 blkio controller.

weight -> blkio.weight (CFQ) or blkio.bfq.weight (BFQ), leafWeight ->
blkio.leaf_weight, weightDevice -> blkio[.bfq].weight_device and
blkio.leaf_weight_device, throttle lists -> blkio.throttle.*_device.
leaf weights exist only with CFQ, which Linux 5.0 removed. Where the file
is missing they are ignored with a warning, as on cgroup v2.
"""

import os

from navio_runtime.cgroups import files
from navio_runtime.cgroups.resources import device_number, entries, integer, section, throttle_rates
from navio_runtime.errors import CgroupError
from navio_runtime.log import get_logger

log = get_logger(__name__)

WHERE = "linux.resources.blockIO"

THROTTLE_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def requested(resources):
    """Return True when `resources` sets a blockIO field."""
    return bool(section(resources, "blockIO"))


def _weight_files(path):
    """Return (weight file, weight_device file). BFQ's files win when both exist, as in runc."""
    if os.path.exists(os.path.join(path, "blkio.bfq.weight")):
        return os.path.join(path, "blkio.bfq.weight"), os.path.join(path, "blkio.bfq.weight_device")
    return os.path.join(path, "blkio.weight"), os.path.join(path, "blkio.weight_device")


def _write_existing(target, value, field):
    if not os.path.exists(target):
        raise CgroupError(
            f"cannot apply {field} {value}: {target} does not exist (no CFQ or BFQ I/O scheduler in the kernel)"
        )
    files.write(target, value)


def _write_leaf(target, value, field):
    if not os.path.exists(target):
        log.warning("%s is ignored: %s does not exist (leaf weights need the CFQ scheduler)", field, target)
        return
    files.write(target, value)


def apply(path, resources):
    block_io = section(resources, "blockIO")
    if not block_io:
        return
    weight_file, weight_device_file = _weight_files(path)

    weight = integer(block_io, "weight", WHERE, minimum=10, maximum=1000)
    if weight is not None:
        _write_existing(weight_file, str(weight), f"{WHERE}.weight")
    leaf_weight = integer(block_io, "leafWeight", WHERE, minimum=10, maximum=1000)
    if leaf_weight is not None:
        _write_leaf(os.path.join(path, "blkio.leaf_weight"), str(leaf_weight), f"{WHERE}.leafWeight")

    for index, entry in enumerate(entries(resources, "blockIO", "weightDevice")):
        where = f"{WHERE}.weightDevice[{index}]"
        device = device_number(entry, where)
        device_weight = integer(entry, "weight", where, minimum=10, maximum=1000)
        device_leaf_weight = integer(entry, "leafWeight", where, minimum=10, maximum=1000)
        if device_weight is None and device_leaf_weight is None:
            raise CgroupError(f"invalid {where}: set weight, leafWeight or both")
        if device_weight is not None:
            _write_existing(weight_device_file, f"{device} {device_weight}", f"{where}.weight")
        if device_leaf_weight is not None:
            _write_leaf(
                os.path.join(path, "blkio.leaf_weight_device"), f"{device} {device_leaf_weight}", f"{where}.leafWeight"
            )

    # A rate of 0 removes the device's limit.
    for list_name, device, rate in throttle_rates(resources):
        files.write(os.path.join(path, THROTTLE_FILES[list_name]), f"{device} {rate}")


def _read_entries(path):
    """Parse "<major>:<minor> <op> <value>" lines, skipping the trailing "Total <n>" line."""
    result = []
    for line in (files.read_optional(path, "") or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        result.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return result


def stats(path):
    # The scheduler statistics (blkio.io_*) exist only with CFQ or BFQ, but the throttle ones always do.
    if os.path.exists(os.path.join(path, "blkio.io_service_bytes_recursive")):
        prefix = "blkio.io_"
    else:
        prefix = "blkio.throttle.io_"
    return {
        "ioServiceBytesRecursive": _read_entries(os.path.join(path, f"{prefix}service_bytes_recursive")),
        "ioServicedRecursive": _read_entries(os.path.join(path, f"{prefix}serviced_recursive")),
    }
