"""The cgroup commands of the command line: pause, resume, ps, events, update and features.

`navio_runtime.cli` calls `register(command)` while it builds its parser.
Handlers import their library module when they run, so the other commands
do not pay for it.
"""

import argparse
import json
import os
import sys

# Resource flags of `update`, as in `runc update`: (option strings, metavar, help text).
# navio_runtime.container.update.FLAG_FIELDS maps each flag to its linux.resources field.
_UPDATE_FLAGS = (
    (("--memory",), "BYTES", "memory limit in bytes; suffixes k, m, g, t and p (1024-based) are accepted, -1 removes it"),
    (("--memory-reservation",), "BYTES", "memory soft limit (reservation) in bytes, with the same suffixes"),
    (("--memory-swap",), "BYTES", "limit of memory plus swap in bytes, with the same suffixes; -1 allows unlimited swap"),
    (("--kernel-memory",), "BYTES", "accepted for runc compatibility and ignored with a warning (Linux deprecated kernel memory limits in 5.4)"),
    (("--kernel-memory-tcp",), "BYTES", "accepted for runc compatibility and ignored with a warning"),
    (("--cpu-shares", "--cpu-share"), "N", "relative CPU weight (cgroup v1 cpu.shares; converted to cpu.weight on v2)"),
    (("--cpu-quota",), "USEC", "CPU time in microseconds that the container may use per period; -1 removes the limit"),
    (("--cpu-period",), "USEC", "length of the CFS period in microseconds"),
    (("--cpu-burst",), "USEC", "CPU time in microseconds that the container may borrow above its quota"),
    (("--cpu-rt-period",), "USEC", "real-time scheduling period in microseconds (cgroup v1 only)"),
    (("--cpu-rt-runtime",), "USEC", "real-time CPU time in microseconds per real-time period (cgroup v1 only)"),
    (("--cpu-idle",), "0|1", "1 makes the container an idle scheduling group with the lowest CPU priority, 0 restores it"),
    (("--cpuset-cpus",), "LIST", "CPUs the container may run on, such as 0-3,6"),
    (("--cpuset-mems",), "LIST", "memory nodes the container may allocate from, such as 0-1"),
    (("--pids-limit",), "N", "maximum number of processes and threads; -1 removes the limit, 0 forbids new ones"),
    (("--blkio-weight",), "N", "relative block I/O weight from 10 to 1000"),
)


def _cmd_pause(args):
    from navio_runtime.container.pause import pause

    pause(args.container_id, root=args.root)
    return 0


def _cmd_resume(args):
    from navio_runtime.container.pause import resume

    resume(args.container_id, root=args.root)
    return 0


def _cmd_ps(args):
    from navio_runtime.container import ps

    if args.format == "json":
        print(json.dumps(ps.container_pids(args.container_id, root=args.root)))
        return 0
    ps_args = args.ps_args[1:] if args.ps_args[:1] == ["--"] else args.ps_args
    print(ps.ps_table(args.container_id, ps_args, root=args.root))
    return 0


def _print_event(event):
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _cmd_events(args):
    from navio_runtime.container import events

    try:
        if args.stats:
            _print_event(events.stats_event(args.container_id, root=args.root))
            return 0
        interval = events.parse_duration(args.interval)
        events.watch_events(args.container_id, _print_event, interval=interval, root=args.root)
    except BrokenPipeError:
        # The reader went away (for example `events ID | head -1`), which ends the stream normally.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _cmd_update(args):
    from navio_runtime.container import update
    from navio_runtime.errors import NavioError

    flags = {}
    for option_strings, _, _ in _UPDATE_FLAGS:
        name = option_strings[0][2:]
        value = getattr(args, name.replace("-", "_"))
        if value is not None:
            flags[name] = value

    if args.resources is not None:
        if flags:
            flag_list = ", ".join(f"--{name}" for name in flags)
            raise NavioError(f"--resources cannot be combined with {flag_list}; put those values into the JSON instead")
        resources = update.load_resources(args.resources, stdin=sys.stdin)
    elif flags:
        resources = update.resources_from_flags(flags)
    else:
        raise NavioError("nothing to update: pass --resources FILE or a flag such as --memory or --pids-limit")

    update.update(args.container_id, resources, root=args.root)
    return 0


def _cmd_features(args):
    from navio_runtime.container.features import features_document

    print(json.dumps(features_document(), indent=2))
    return 0


def register(command):
    """Add the cgroup commands with `command(name, handler, help_text)`, which returns an argparse subparser."""
    sub = command("pause", _cmd_pause, "suspend every process of a running container (freezes its cgroup)")
    sub.add_argument("container_id", metavar="ID")

    sub = command("resume", _cmd_resume, "resume every process of a paused container")
    sub.add_argument("container_id", metavar="ID")

    sub = command("ps", _cmd_ps, "list the processes of a container, by host PID")
    sub.add_argument("--format", "-f", choices=("table", "json"), default="table",
                     help="table: the host's ps output for the container's processes; json: an array of host PIDs")
    sub.add_argument("container_id", metavar="ID")
    sub.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS_ARGS",
                     help="options for ps(1) in table format (default: -ef); they must print a PID column")

    sub = command("events", _cmd_events,
                  "print the container's resource statistics and OOM kills as JSON lines until it stops")
    sub.add_argument("--stats", action="store_true", help="print the statistics once and exit")
    sub.add_argument("--interval", default="5s",
                     help="time between two statistics events, such as 5s, 500ms or 1m (default: 5s)")
    sub.add_argument("container_id", metavar="ID")

    sub = command("update", _cmd_update, "change the resource limits of a container")
    sub.add_argument("--resources", "-r", metavar="FILE",
                     help="read a linux.resources JSON object from FILE, or from standard input when FILE is -")
    for option_strings, metavar, help_text in _UPDATE_FLAGS:
        sub.add_argument(*option_strings, dest=option_strings[0][2:].replace("-", "_"), metavar=metavar, help=help_text)
    sub.add_argument("container_id", metavar="ID")

    command("features", _cmd_features, "print the OCI features document of this runtime and host as JSON")
