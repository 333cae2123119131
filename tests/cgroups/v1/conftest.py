"""Session setup of the cgroup v1 tests, which skip on a host with only cgroup v2."""

import pytest

import cgroup_testlib
from navio_runtime.cgroups import detect_mode


@pytest.fixture(scope="session")
def v1_session_parent():
    if detect_mode() == "unified":
        pytest.skip("cgroup v1 tests need a legacy or hybrid host")
    parent = cgroup_testlib.make_session_parent()
    yield parent
    cgroup_testlib.destroy_quietly(parent)


@pytest.fixture
def session_parent(v1_session_parent):
    return v1_session_parent
