"""linux.memoryPolicy reaches the container process, as /proc/self/numa_maps shows it."""

import pytest

from navio_runtime.errors import SpecError
from navio_runtime.init.memory_policy import parse_nodes


@pytest.mark.parametrize("policy, expected", [
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
])
def test_policy_in_numa_maps(runtime, make_bundle, policy, expected):
    bundle = make_bundle(args=["sh", "-c", "head -1 /proc/self/numa_maps"])
    bundle.config["linux"]["memoryPolicy"] = policy
    bundle.write()

    result = runtime("run", "-b", bundle.path, "numa")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == expected


def test_parse_nodes_ranges():
    assert parse_nodes("0-2,5") == {0, 1, 2, 5}


def test_parse_nodes_reversed_range():
    with pytest.raises(SpecError, match="reversed"):
        parse_nodes("3-1")
