"""Command line of navio-runtime, compatible with the runc commands that podman and containerd call.

Each subcommand is a small function that calls one library operation. Library
modules are imported inside those functions, so `state` or `kill` never pay for
schema validation or ctypes.
"""

import json
import os
import sys

from navio_runtime import __version__
from navio_runtime.log import get_logger

log = get_logger("navio_runtime.cli")


def _cmd_create(args):
    from navio_runtime.container.create import create

    create(args.container_id, args.bundle_path or args.bundle, root=args.root, pid_file=args.pid_file,
           no_pivot=args.no_pivot, preserve_fds=args.preserve_fds, systemd_cgroup=args.systemd_cgroup,
           console_socket=args.console_socket)
    return 0


def _cmd_start(args):
    from navio_runtime.container.start import start

    start(args.container_id, root=args.root)
    return 0


def _cmd_run(args):
    from navio_runtime.container.run import run

    return run(args.container_id, args.bundle, root=args.root, pid_file=args.pid_file, detach=args.detach,
               no_pivot=args.no_pivot, preserve_fds=args.preserve_fds, systemd_cgroup=args.systemd_cgroup,
               console_socket=args.console_socket, keep=args.keep)


def _cmd_exec(args):
    from navio_runtime.container.exec import build_exec_process, exec_process
    from navio_runtime.container.state import state_record

    record = state_record(args.container_id, root=args.root)
    process = build_exec_process(
        record.config.get("process"), args=args.command, process_file=args.process, cwd=args.cwd,
        env=args.env, user=args.user, additional_gids=args.additional_gids, tty=args.tty,
        no_new_privileges=args.no_new_privs, apparmor=args.apparmor,
    )
    return exec_process(args.container_id, process, root=args.root, detach=args.detach, pid_file=args.pid_file,
                        console_socket=args.console_socket, preserve_fds=args.preserve_fds,
                        ignore_paused=args.ignore_paused, extra_capabilities=args.cap)


def _cmd_state(args):
    from navio_runtime.container.state import state

    sys.stdout.write(json.dumps(state(args.container_id, root=args.root), indent=2) + "\n")
    return 0


def _cmd_kill(args):
    from navio_runtime.container.kill import kill, parse_signal

    kill(args.container_id, parse_signal(args.signal), all_processes=args.all, root=args.root)
    return 0


def _cmd_delete(args):
    from navio_runtime.container.delete import delete

    delete(args.container_id, force=args.force, root=args.root)
    return 0


def _cmd_list(args):
    from navio_runtime.container.state import list_containers

    containers = list_containers(root=args.root)
    if args.quiet:
        for container in containers:
            print(container["id"])
    elif args.format == "json":
        print(json.dumps(containers))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        for c in containers:
            rows.append((c["id"], str(c["pid"]), c["status"], c["bundle"], c.get("created", ""), c.get("owner", "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("   ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    return 0


def _cmd_spec(args):
    from navio_runtime.container.default_spec import default_config

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise SystemExit(f"navio-runtime: {path} already exists; remove it first")
    with open(path, "w") as config_file:
        json.dump(default_config(), config_file, indent=2)
        config_file.write("\n")
    return 0


def _cmd_check(args):
    from navio_runtime.errors import SpecError
    from navio_runtime.spec.validate import find_problems, load_config

    try:
        config = load_config(args.bundle)
    except SpecError as error:
        print(f"{args.bundle}: {error}", file=sys.stderr)
        return 1
    from navio_runtime.spec.semantics import host_path_problems

    problems = find_problems(config, args.bundle, for_create=True)
    problems += list(host_path_problems(config, args.bundle))
    if not problems:
        print(f"{os.path.join(args.bundle, 'config.json')}: valid")
        return 0
    for problem in problems:
        line = f"{problem.path or '(root)'}: {problem.message}"
        if problem.fix:
            line += f" (fix: {problem.fix})"
        print(line)
    print(f"{len(problems)} problem(s) found", file=sys.stderr)
    return 1


def _cmd_plan(args):
    from navio_runtime.container.create import load_spec
    from navio_runtime.plan import build_plan, format_plan

    operations = build_plan(load_spec(args.bundle), args.bundle, no_pivot=args.no_pivot)
    if args.format == "json":
        print(json.dumps([operation.to_dict() for operation in operations], indent=2))
    else:
        print(format_plan(operations))
    return 0


def _add_bundle(parser):
    parser.add_argument("--bundle", "-b", default=".", help="path to the bundle directory (default: the current directory)")


# Every subcommand, so that main() can build the parser of the one it runs only.
COMMANDS = (
    "create", "run", "start", "exec", "state", "kill", "delete", "list", "spec", "check", "plan",
    "pause", "resume", "ps", "events", "update", "features",
)

# Global options that take a value, for finding the subcommand in argv.
_GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--log", "--log-format", "--rootless", "--criu")


class _SkippedParser:
    """Stand-in for the subparser of a command that this call does not run."""

    def add_argument(self, *args, **kwargs):
        return None

    def set_defaults(self, **kwargs):
        return None


def _requested_command(argv):
    """Return the subcommand named in `argv`, or None when there is none or it is unknown."""
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg in _GLOBAL_OPTIONS_WITH_VALUE:
            skip_value = True
        elif arg.startswith("-"):
            continue
        else:
            return arg if arg in COMMANDS else None
    return None


def build_parser(only=None):
    """Build the argument parser; with `only`, define just that subcommand (about 3 ms less per call)."""
    import argparse

    class _VersionAction(argparse.Action):
        """Print the runtime and spec versions on separate lines, as runc does (argparse's action reflows them)."""

        def __call__(self, parser, namespace, values, option_string=None):
            from navio_runtime import OCI_VERSION

            print(f"navio-runtime version {__version__}\nspec: {OCI_VERSION}")
            parser.exit()

    parser = argparse.ArgumentParser(prog="navio-runtime", description="An OCI container runtime.")
    parser.add_argument("--root", default="/run/navio", help="directory for container state (default: /run/navio)")
    parser.add_argument("--log", help="append log records to this file instead of stderr")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="format of log records")
    parser.add_argument("--debug", action="store_true", help="log debug records")
    parser.add_argument("--systemd-cgroup", action="store_true",
                        help="read cgroupsPath as slice:prefix:name and place the container under systemd")
    parser.add_argument("--rootless", default="auto", help="accepted for runc compatibility; ignored")
    parser.add_argument("--criu", help=argparse.SUPPRESS)
    parser.add_argument("--version", "-v", action=_VersionAction, nargs=0, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name, handler, help_text):
        if only is not None and name != only:
            return _SkippedParser()
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def container_options(sub, with_bundle_arg=False):
        _add_bundle(sub)
        sub.add_argument("--pid-file", help="write the container init's host PID to this file")
        sub.add_argument("--no-pivot", action="store_true", help="use chroot instead of pivot_root")
        sub.add_argument("--console-socket", help="unix socket to receive the terminal's master fd")
        sub.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds (3 .. 3+N-1) to the container")
        sub.add_argument("--no-new-keyring", action="store_true", help="accepted for runc compatibility")
        sub.add_argument("container_id", metavar="ID")
        if with_bundle_arg:
            sub.add_argument("bundle_path", nargs="?", metavar="BUNDLE", help="bundle directory (same as --bundle)")

    sub = command("create", _cmd_create, "create a container and leave it waiting for start")
    container_options(sub, with_bundle_arg=True)

    sub = command("run", _cmd_run, "create and start a container, then wait for it unless detached")
    container_options(sub)
    sub.add_argument("--detach", "-d", action="store_true", help="return once the container runs")
    sub.add_argument("--keep", action="store_true", help="do not delete the container after it exits")

    sub = command("start", _cmd_start, "start a created container")
    sub.add_argument("container_id", metavar="ID")

    sub = command("exec", _cmd_exec, "run a new process inside a created or running container")
    sub.add_argument("--process", "-p", help="JSON file (or - for stdin) with the process object to run")
    sub.add_argument("--cwd", help="working directory inside the container")
    sub.add_argument("--env", "-e", action="append", default=[], help="add NAME=VALUE to the environment")
    sub.add_argument("--user", "-u", help="numeric uid[:gid] to run as")
    sub.add_argument("--additional-gids", "-g", action="append", type=int, default=[], help="extra group id")
    sub.add_argument("--tty", "-t", action="store_true", help="allocate a terminal (needs --console-socket)")
    sub.add_argument("--console-socket", help="unix socket to receive the terminal's master fd")
    sub.add_argument("--detach", "-d", action="store_true", help="return once the process runs")
    sub.add_argument("--pid-file", help="write the process's host PID to this file")
    sub.add_argument("--no-new-privs", action="store_true", help="set noNewPrivileges for the process")
    sub.add_argument("--apparmor", help="AppArmor profile for the process")
    sub.add_argument("--process-label", help="SELinux label for the process")
    sub.add_argument("--cap", "-c", action="append", default=[],
                     help="add a capability to the bounding, effective and permitted sets (never inheritable)")
    sub.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds (3 .. 3+N-1) to the process")
    sub.add_argument("--ignore-paused", action="store_true",
                     help="accepted for runc compatibility, but exec into a paused container is rejected")
    sub.add_argument("container_id", metavar="ID")
    sub.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")

    sub = command("state", _cmd_state, "print the OCI state of a container as JSON")
    sub.add_argument("container_id", metavar="ID")

    sub = command("kill", _cmd_kill, "send a signal to a container's init process")
    sub.add_argument("--all", "-a", action="store_true", help="signal every process in the container's cgroup")
    sub.add_argument("container_id", metavar="ID")
    sub.add_argument("signal", nargs="?", default="TERM", help="name (TERM, SIGTERM) or number (15); default TERM")

    sub = command("delete", _cmd_delete, "delete a stopped container")
    sub.add_argument("--force", "-f", action="store_true", help="kill the container first if it still runs")
    sub.add_argument("container_id", metavar="ID")

    sub = command("list", _cmd_list, "list containers")
    sub.add_argument("--format", "-f", choices=("table", "json"), default="table")
    sub.add_argument("--quiet", "-q", action="store_true", help="print container ids only")

    sub = command("spec", _cmd_spec, "write a default config.json into the bundle")
    _add_bundle(sub)
    sub.add_argument("--rootless", action="store_true", help=argparse.SUPPRESS)

    sub = command("check", _cmd_check, "validate a bundle and print every problem with its JSON path")
    _add_bundle(sub)

    sub = command("plan", _cmd_plan, "print the operations create would carry out, without doing them")
    _add_bundle(sub)
    sub.add_argument("--no-pivot", action="store_true", help="plan chroot instead of pivot_root")
    sub.add_argument("--format", choices=("text", "json"), default="text")

    _add_extra_commands(command)
    return parser


def _add_extra_commands(command):
    """Register the cgroup commands (pause, resume, ps, events, update, features) when present."""
    try:
        from navio_runtime import cli_cgroups
    except ImportError:
        return
    cli_cgroups.register(command)


class _FastArgs:
    """Parsed arguments of a plain lifecycle call, with the attributes argparse would set."""

    def __init__(self):
        self.root = "/run/navio"
        self.log = None
        self.log_format = "text"
        self.debug = False
        self.systemd_cgroup = False
        self.force = False
        self.all = False
        self.signal = "TERM"


_FAST_GLOBAL_OPTIONS = {"--root": "root", "--log": "log", "--log-format": "log_format"}


def _parse_fast(argv):
    """Parse `[globals] state|start|delete|kill ...` without argparse; return None for anything else.

    podman and containerd call these for every container, and argparse costs
    about 4 ms of every call. Any option this parser does not know, or a
    malformed call, goes to argparse, which also produces the error messages.
    """
    args = _FastArgs()
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, has_value, value = argv[index].partition("=")
        if option in _FAST_GLOBAL_OPTIONS:
            if not has_value:
                if index + 1 >= len(argv):
                    return None
                index += 1
                value = argv[index]
            setattr(args, _FAST_GLOBAL_OPTIONS[option], value)
        elif argv[index] == "--debug":
            args.debug = True
        elif argv[index] == "--systemd-cgroup":
            args.systemd_cgroup = True
        else:
            return None
        index += 1
    if args.log_format not in ("text", "json") or index >= len(argv):
        return None

    command, operands = argv[index], argv[index + 1:]
    if command == "delete" and operands[:1] in (["--force"], ["-f"]):
        args.force = True
        operands = operands[1:]
    if any(operand.startswith("-") for operand in operands):
        return None

    handlers = {"state": _cmd_state, "start": _cmd_start, "delete": _cmd_delete, "kill": _cmd_kill}
    if command not in handlers or not 1 <= len(operands) <= (2 if command == "kill" else 1):
        return None
    args.command = command
    args.handler = handlers[command]
    args.container_id = operands[0]
    if len(operands) == 2:
        args.signal = operands[1]
    return args


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    args = _parse_fast(argv)
    if args is None:
        parser = build_parser(only=_requested_command(argv))
        args = parser.parse_args(argv)

    from navio_runtime import log as log_setup

    try:
        log_setup.configure(args.log, args.log_format, args.debug)
    except OSError as error:
        print(f"navio-runtime: --log {args.log}: cannot open the log file: {error.strerror}", file=sys.stderr)
        return 1

    from navio_runtime.errors import NavioError

    try:
        return args.handler(args)
    except NavioError as error:
        if args.log:
            log.error("%s", error)
        print(f"navio-runtime: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): stop quietly, as other CLIs do.
        sys.stdout = open(os.devnull, "w")
        return 1
    except OSError as error:
        # An unexpected system error still gets one line naming the file, not a traceback.
        where = f": {error.filename}" if error.filename else ""
        message = f"{error.strerror or error}{where}"
        if args.log:
            log.error("%s", message)
        print(f"navio-runtime: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
