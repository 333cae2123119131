"""Device access filter for cgroup v2: an eBPF program assembled here and attached with bpf(2).

cgroup v2 has no devices.allow file. The kernel instead runs every
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (and its
ancestors) on each open(2) and mknod(2) of a device node and denies access
when any program returns 0.

The program receives `struct bpf_cgroup_dev_ctx` (include/uapi/linux/bpf.h):
    u32 access_type   low 16 bits: device type, high 16 bits: access mask
    u32 major
    u32 minor
It checks the rules from last to first and returns the verdict of the first
match, so the last matching rule in linux.resources.devices wins. A request
that matches no rule is denied.
"""

import ctypes
import errno as _errno
import os
import struct

from navio_runtime.errors import CgroupError, SyscallError
from navio_runtime.log import get_logger

log = get_logger(__name__)

# bpf(2) commands.
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

# Values in bpf_cgroup_dev_ctx.access_type.
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

_DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
_ACCESS_BITS = {"r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE, "m": BPF_DEVCG_ACC_MKNOD}

# Instruction opcodes (class | operation | source), include/uapi/linux/bpf.h.
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54  # dst &= imm
_ALU32_RSH_K = 0x74  # dst >>= imm
_ALU32_MOV_K = 0xB4  # dst = imm
_ALU32_MOV_X = 0xBC  # dst = src
_JMP32_JEQ_K = 0x16  # if (u32)dst == imm: pc += off
_JMP32_JNE_K = 0x56  # if (u32)dst != imm: pc += off
_JMP32_JNE_X = 0x5E  # if (u32)dst != (u32)src: pc += off
_JMP_EXIT = 0x95

# Registers: R1 points to the context on entry, and R0 is the return value.
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


def _insn(code, dst=0, src=0, off=0, imm=0):
    if imm >= 2**31:
        imm -= 2**32
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_mask(access):
    mask = 0
    for letter in access:
        mask |= _ACCESS_BITS[letter]
    return mask


def _rule_block(rule):
    """Return the instructions of one rule: checks that jump past the block, then the verdict."""
    checks = []  # (opcode, dst, src, imm) tuples, with the jump offsets filled in below
    if rule.type != "a":
        checks.append((_JMP32_JNE_K, _R2, 0, _DEVICE_TYPES[rule.type]))
    if rule.access != "rwm":
        mask = _access_mask(rule.access)
        checks.append((_ALU32_MOV_X, _R1, _R3, 0))
        checks.append((_ALU32_AND_K, _R1, 0, mask))
        if rule.allow:
            # An allow rule matches only when it grants every requested access bit.
            checks.append((_JMP32_JNE_X, _R1, _R3, 0))
        else:
            # A deny rule matches when it denies any requested access bit.
            checks.append((_JMP32_JEQ_K, _R1, 0, 0))
    if rule.major != -1:
        checks.append((_JMP32_JNE_K, _R4, 0, rule.major))
    if rule.minor != -1:
        checks.append((_JMP32_JNE_K, _R5, 0, rule.minor))

    length = len(checks) + 2
    code = []
    for index, (opcode, dst, src, imm) in enumerate(checks):
        is_jump = opcode in (_JMP32_JEQ_K, _JMP32_JNE_K, _JMP32_JNE_X)
        offset = length - index - 1 if is_jump else 0
        code.append(_insn(opcode, dst, src, offset, imm))
    code.append(_insn(_ALU32_MOV_K, _R0, imm=1 if rule.allow else 0))
    code.append(_insn(_JMP_EXIT))
    return code, not checks


def assemble(rules):
    """Return the eBPF bytecode of a device filter for DeviceRule tuples `rules`."""
    code = [
        _insn(_LDX_MEM_W, _R2, _R1, 0),
        _insn(_ALU32_AND_K, _R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, _R3, _R1, 0),
        _insn(_ALU32_RSH_K, _R3, imm=16),
        _insn(_LDX_MEM_W, _R4, _R1, 4),
        _insn(_LDX_MEM_W, _R5, _R1, 8),
    ]
    for rule in reversed(rules):
        block, unconditional = _rule_block(rule)
        code.extend(block)
        if unconditional:
            # The verifier rejects unreachable instructions, so nothing may follow a rule that always matches.
            return b"".join(code)
    code.append(_insn(_ALU32_MOV_K, _R0, imm=0))
    code.append(_insn(_JMP_EXIT))
    return b"".join(code)


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttachAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _ProgQueryAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("prog_ids", ctypes.c_uint64),
        ("prog_cnt", ctypes.c_uint32),
    ]


class _GetFdByIdAttr(ctypes.Structure):
    _fields_ = [
        ("prog_id", ctypes.c_uint32),
        ("next_id", ctypes.c_uint32),
        ("open_flags", ctypes.c_uint32),
    ]


def _bpf(command, attr, target):
    from navio_runtime.linux.syscalls import raw_syscall

    return raw_syscall(
        "bpf", ctypes.c_int(command), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)), target=target
    )


def load(bytecode):
    """Load `bytecode` as a BPF_PROG_TYPE_CGROUP_DEVICE program and return its fd.

    On failure the program is loaded once more with the verifier log on, and
    the CgroupError quotes the end of that log.
    """
    insns = ctypes.create_string_buffer(bytecode, len(bytecode))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    attr = _ProgLoadAttr(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(bytecode) // 8,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(license_text),
        prog_name=b"navio_devices",
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD (cgroup device filter)")
    except SyscallError as err:
        if err.errno == _errno.EPERM:
            raise CgroupError(f"load the device filter: {err} (loading eBPF programs needs CAP_BPF or root)") from None
        first_error = err

    log_buffer = ctypes.create_string_buffer(65536)
    attr.log_level = 1
    attr.log_size = len(log_buffer)
    attr.log_buf = ctypes.addressof(log_buffer)
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD (cgroup device filter)")
    except SyscallError:
        verifier_log = log_buffer.value.decode(errors="replace").strip().splitlines()[-5:]
        raise CgroupError(f"load the device filter: {first_error}; verifier log: {' | '.join(verifier_log)}") from None


def _open_cgroup(path):
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError(f"open {path}: {os.strerror(err.errno)}") from None


def attached_program_ids(cgroup_path):
    """Return (ids, attach_flags) of the device programs attached directly to `cgroup_path`."""
    fd = _open_cgroup(cgroup_path)
    try:
        return _query(fd, cgroup_path)
    finally:
        os.close(fd)


def _query(cgroup_fd, cgroup_path):
    capacity = 64
    while True:
        ids = (ctypes.c_uint32 * capacity)()
        attr = _ProgQueryAttr(
            target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids), prog_cnt=capacity
        )
        try:
            _bpf(BPF_PROG_QUERY, attr, f"BPF_PROG_QUERY {cgroup_path}")
        except SyscallError as err:
            if err.errno == _errno.ENOSPC and attr.prog_cnt > capacity:
                capacity = attr.prog_cnt
                continue
            raise CgroupError(f"query the device filters of {cgroup_path}: {err}") from None
        return list(ids[: attr.prog_cnt]), attr.attach_flags


def replace_device_filter(cgroup_path, bytecode):
    """Attach a new device filter to `cgroup_path`, then detach the filters attached there before.

    The new program is attached first, so the cgroup is never left without
    a filter. Programs attached to ancestors are not touched.
    """
    program_fd = load(bytecode)
    cgroup_fd = _open_cgroup(cgroup_path)
    try:
        old_ids, old_flags = _query(cgroup_fd, cgroup_path)
        if old_ids and old_flags != BPF_F_ALLOW_MULTI:
            # NOTE: a program attached without BPF_F_ALLOW_MULTI (by another
            # manager) blocks a multi attach, so such a cgroup is reported, not taken over.
            raise CgroupError(
                f"attach the device filter to {cgroup_path}: programs {old_ids} are attached with flags "
                f"{old_flags:#x}, not BPF_F_ALLOW_MULTI"
            )
        attach = _ProgAttachAttr(
            target_fd=cgroup_fd, attach_bpf_fd=program_fd, attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI
        )
        try:
            _bpf(BPF_PROG_ATTACH, attach, f"BPF_PROG_ATTACH {cgroup_path}")
        except SyscallError as err:
            raise CgroupError(f"attach the device filter to {cgroup_path}: {err}") from None
        for program_id in old_ids:
            _detach(cgroup_fd, cgroup_path, program_id)
    finally:
        os.close(cgroup_fd)
        os.close(program_fd)


def _detach(cgroup_fd, cgroup_path, program_id):
    try:
        old_fd = _bpf(BPF_PROG_GET_FD_BY_ID, _GetFdByIdAttr(prog_id=program_id), f"BPF_PROG_GET_FD_BY_ID {program_id}")
    except SyscallError as err:
        if err.errno == _errno.ENOENT:
            return
        raise CgroupError(f"detach device filter {program_id} from {cgroup_path}: {err}") from None
    try:
        detach = _ProgAttachAttr(target_fd=cgroup_fd, attach_bpf_fd=old_fd, attach_type=BPF_CGROUP_DEVICE)
        _bpf(BPF_PROG_DETACH, detach, f"BPF_PROG_DETACH {cgroup_path}")
        log.debug("detached device filter %d from %s", program_id, cgroup_path)
    except SyscallError as err:
        raise CgroupError(f"detach device filter {program_id} from {cgroup_path}: {err}") from None
    finally:
        os.close(old_fd)
