"""Typed errors raised by the library.

Every error carries enough context for an operator to act: the failing path or
value and, for system calls, the errno. The CLI prints `str(error)` and exits 1.
"""

import errno as _errno
import os


class NavioError(Exception):
    """Base class of every error the runtime reports to its caller."""


class SpecError(NavioError):
    """The bundle or its config.json is invalid.

    `problems` lists navio_runtime.spec.validate.Problem objects (JSON path,
    message, fix), one per finding.
    """

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class StateError(NavioError):
    """A lifecycle operation is not valid for the container's current state."""


class ContainerNotFound(StateError):
    def __init__(self, container_id, root):
        super().__init__(f"container {container_id!r} not found in {root}")
        self.container_id = container_id


class ContainerExists(StateError):
    def __init__(self, container_id, root):
        super().__init__(f"container {container_id!r} already exists in {root}")
        self.container_id = container_id


class SyscallError(NavioError, OSError):
    """A system call failed. The message names the call, its target and the errno."""

    def __init__(self, call, errnum, target=""):
        name = _errno.errorcode.get(errnum, str(errnum))
        where = f" {target}" if target else ""
        message = f"{call}{where}: {os.strerror(errnum)} ({name})"
        OSError.__init__(self, errnum, message)
        self.call = call
        self.target = target

    def __str__(self):
        return self.strerror


class InitError(NavioError):
    """The container's init process failed during setup; the message comes from the init."""


class CgroupError(NavioError):
    """A cgroup could not be created, configured, read or removed."""


class ProcessAttributeError(NavioError):
    """A process attribute (capability sets, seccomp filter, rlimit, LSM label, scheduler, ...) could not be applied.

    The message names the attribute, the requested value and, for a failed system call, the errno.
    """


class ArchiveError(NavioError):
    """A root filesystem archive could not be extracted.

    The message names the archive and, when one is involved, the member.
    `archive` and `member` ("" when the failure is not about one member) keep both.
    """

    def __init__(self, archive, member, message):
        where = f"{archive}: member {member!r}" if member else str(archive)
        super().__init__(f"{where}: {message}")
        self.archive = str(archive)
        self.member = member


class UnsafeMemberError(ArchiveError):
    """An archive member would be written outside the root filesystem or through a link that leaves it."""


class ArchiveLimitError(ArchiveError):
    """An archive exceeds the configured maximum of uncompressed bytes or members."""
