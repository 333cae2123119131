"""Session setup of the cgroup v2 tests, which skip on a host that is not cgroup v2 only."""

import os

import pytest

import cgroup_testlib
from navio_runtime.cgroups import detect_mode


@pytest.fixture(scope="session")
def v2_session_parent():
    if detect_mode() != "unified":
        pytest.skip("cgroup v2 tests need a host with only the unified hierarchy (run scripts/run-v2-tests)")
    parent = cgroup_testlib.make_session_parent()
    # The session created this parent, so it may hand every controller to the test cgroups below it.
    available = cgroup_testlib.read(os.path.join(parent.path, "cgroup.controllers")).split()
    with open(os.path.join(parent.path, "cgroup.subtree_control"), "w") as handle:
        handle.write(" ".join(f"+{name}" for name in available))
    yield parent
    cgroup_testlib.destroy_quietly(parent)


@pytest.fixture
def session_parent(v2_session_parent):
    return v2_session_parent
