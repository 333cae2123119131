"""Fixtures for the cgroup library tests: real processes in real cgroups.

Every cgroup the tests make lives below a session parent named
/navio-test-<pid> (see v1/conftest.py and v2/conftest.py) that the session
removes at the end, also after failures.
"""

import pytest

import cgroup_testlib


@pytest.fixture
def children():
    """Start processes for a test. Teardown kills and reaps the ones still running."""
    tracker = cgroup_testlib.Children()
    yield tracker
    tracker.cleanup()


@pytest.fixture
def make_manager(session_parent):
    """Return a factory of managers for /navio-test-<pid>/<name>. Teardown kills and removes them."""
    managers = []

    def factory(name, create=True):
        manager = cgroup_testlib.open_test_manager(session_parent, name, create=False)
        managers.append(manager)
        if create:
            manager.create()
        return manager

    yield factory
    for manager in reversed(managers):
        cgroup_testlib.destroy_quietly(manager)
