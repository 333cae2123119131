"""cgroup v1 rdma controller: rdma.max, with the same file format as cgroup v2."""

from navio_runtime.cgroups.v2.rdma import apply, requested, stats  # noqa: F401
