"""linux.memoryPolicy: the NUMA memory policy of the container process, set with set_mempolicy(2).

The policy is inherited across fork and execve, so setting it in the init
before exec applies it to the container process and its children.
"""

import ctypes

from navio_runtime.errors import SpecError
from navio_runtime.linux import syscalls

# Values from the kernel's include/uapi/linux/mempolicy.h.
MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
FLAGS = {
    "MPOL_F_NUMA_BALANCING": 1 << 13,
    "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_STATIC_NODES": 1 << 15,
}

_WORD_BITS = 64


def parse_nodes(text):
    """Return the set of node numbers in a list such as "0-3,7"."""
    nodes = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            raise SpecError(f"linux.memoryPolicy.nodes: invalid node list {text!r}") from None
        if low > high:
            raise SpecError(f"linux.memoryPolicy.nodes: range {part!r} is reversed")
        nodes.update(range(low, high + 1))
    return nodes


def apply_memory_policy(policy):
    """Set the calling process's memory policy from linux.memoryPolicy; None leaves it unchanged."""
    if not policy:
        return

    mode = MODES[policy["mode"]]
    for flag in policy.get("flags") or ():
        mode |= FLAGS[flag]

    nodes = parse_nodes(policy.get("nodes") or "")
    words = (max(nodes) // _WORD_BITS + 1) if nodes else 1
    mask = (ctypes.c_ulong * words)()
    for node in nodes:
        mask[node // _WORD_BITS] |= 1 << (node % _WORD_BITS)
    # The kernel reads maxnode - 1 bits of the mask.
    max_node = words * _WORD_BITS + 1 if nodes else 0

    syscalls.raw_syscall(
        "set_mempolicy",
        ctypes.c_int(mode),
        mask if nodes else None,
        ctypes.c_ulong(max_node),
        target=f"linux.memoryPolicy mode {policy['mode']} nodes {policy.get('nodes', '')!r}",
    )
