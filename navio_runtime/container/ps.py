"""`ps`: the processes of a container, as host PIDs or as lines of the host's ps(1)."""

import os
import subprocess

from navio_runtime.errors import NavioError, StateError
from navio_runtime.state_store import StateStore

# ps(1) options that `ps` uses when the caller passes none, as runc does.
DEFAULT_PS_ARGS = ("-ef",)


def open_container_cgroup(state):
    """Return the cgroup Manager recorded in a container's state; raise StateError when none is recorded."""
    if not state.cgroup:
        raise StateError(f"container {state.id} has no cgroup recorded in its state (its create did not finish)")

    from navio_runtime.cgroups import manager_from_dict

    return manager_from_dict(state.cgroup)


def container_pids(container_id, root=None):
    """Return the sorted host PIDs of every process in the container's cgroup, child cgroups included.

    The list of a stopped container whose cgroup still exists is empty, unless
    processes outlived its init, which only happens without a PID namespace.
    Raises StateError when the cgroup no longer exists.
    """
    store = StateStore(root) if root else StateStore()
    state = store.load(container_id)
    manager = open_container_cgroup(state)
    if not any(os.path.isdir(directory) for directory in manager.directories()):
        raise StateError(f"container {container_id} is not running: its cgroup {manager.cgroup_path} does not exist")
    return manager.pids()


def ps_table(container_id, ps_args=(), root=None):
    """Run the host's ps(1) and return its header line and the lines of the container's processes.

    `ps_args` are passed to ps (default "-ef"). The lines are selected by the
    column titled PID, so the options must print that column. Raises
    NavioError when ps is missing, fails or prints no PID column.
    """
    pids = set(container_pids(container_id, root=root))
    args = list(ps_args) or list(DEFAULT_PS_ARGS)
    command = " ".join(["ps", *args])
    try:
        result = subprocess.run(["ps", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise NavioError("cannot run ps: the command is not installed (Debian package procps)") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise NavioError(f"{command} failed with exit status {result.returncode}: {output}")

    lines = result.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        header = lines[0] if lines else ""
        raise NavioError(f"{command} printed no PID column (header {header!r}); pass ps options that print PID")
    pid_index = titles.index("PID")

    selected = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise NavioError(f"{command} printed {fields[pid_index]!r} in its PID column: {line!r}") from None
        if pid in pids:
            selected.append(line)
    return "\n".join(selected)
